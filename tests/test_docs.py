"""The README stays a front page: the lab notebook of runs lives in docs/results/, whose
tables tests/test_reproduction.py and tests/test_flagships.py check against their files;
`mkdocs build --strict` (in `make test`) checks the site's links and API names."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_is_at_most_300_lines():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail into docs/"


def test_every_results_figure_is_a_file_the_runs_wrote():
    figures = sorted((REPO / "docs" / "results" / "figures").iterdir())
    assert figures
    for figure in figures:
        assert figure.resolve().is_file(), f"{figure.name} points at nothing"
        assert (REPO / "examples" / "results") in figure.resolve().parents, figure.name
