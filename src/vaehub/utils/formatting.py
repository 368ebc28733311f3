"""Numbers as cards, tables and command output print them: counts as whole numbers, other
values with a fixed number of digits."""

from __future__ import annotations

from typing import Any


def _short(value: Any) -> Any:
    # Six significant digits: 9.99999999999992 from a solver reads as the 10 it is.
    return float(f"{value:.6g}") if isinstance(value, float) else value


COUNTS = ("active_units", "num_examples")  # whole numbers, even when a Trainer logs floats


def _format(value: Any, key: str = "") -> str:
    if key in COUNTS or isinstance(value, int):
        return str(round(value))
    # Image models' bits/dim can differ only in the third decimal.
    return fixed(value, 3 if key == "bits_per_dim" else 2)


def fixed(value: float, digits: int) -> str:
    """`value` to `digits` decimals, never "-0.00" for a tiny negative estimate."""
    text = f"{float(value):.{digits}f}"
    return f"{0.0:.{digits}f}" if float(text) == 0 else text
