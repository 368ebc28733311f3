# Set-up and the two everyday jobs. Each target builds .venv from scratch when it is missing.
# `make test` also builds the documentation site (mkdocs.yml, docs/) into site/ with --strict,
# so a broken link, a missing page or a stale API name fails it.
# torch is pinned to the CPU build so that no multi-GB CUDA wheel is ever pulled; every other
# package comes at the version recorded in constraints.txt, the set the suite last passed with.
PYTHON      ?= python3.11
VENV        ?= .venv
TORCH       ?= torch==2.13.0
CONSTRAINTS ?= constraints.txt
LATEST      ?= .venv-latest

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c $(CONSTRAINTS) "$(TORCH)" -e ".[test]"
	touch $@

.PHONY: demo test lint lock
demo: $(VENV)/.installed
	$(VENV)/bin/vaehub demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q
	$(VENV)/bin/mkdocs build --strict --site-dir site

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# The newest releases pyproject.toml's ranges allow, in a venv of their own: ruff, the whole
# suite and the strict docs build run there, and only when all pass is constraints.txt
# rewritten from it.
lock:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --upgrade pip
	$(LATEST)/bin/pip install --quiet "$(TORCH)" -e ".[test]"
	$(LATEST)/bin/ruff check .
	$(LATEST)/bin/python -m pytest -q -p no:cacheprovider
	$(LATEST)/bin/mkdocs build --strict --site-dir site
	$(LATEST)/bin/pip freeze --exclude-editable | grep -v '^torch==' > $(CONSTRAINTS)
	@echo "constraints.txt now holds the versions above; commit it."
