# Set-up and the two everyday jobs. Each target builds .venv from scratch when it is missing.
# torch is pinned to the CPU build so that no multi-GB CUDA wheel is ever pulled.
PYTHON ?= python3.11
VENV   ?= .venv
TORCH  ?= torch==2.13.0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet "$(TORCH)" -e ".[test]"
	touch $@

.PHONY: demo test lint
demo: $(VENV)/.installed
	$(VENV)/bin/vaehub demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
