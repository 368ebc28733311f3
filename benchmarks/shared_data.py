"""Where the benchmarks read Penn Treebank: `$VAEHUB_SHARED_DATA/ptb`, or else the
`shared/data/ptb` folder beside the repository's checkout. Standard library only, so that a
benchmark's reference script can import it without importing torch or vaehub."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    shared = os.environ.get("VAEHUB_SHARED_DATA")
    root = Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root / "ptb"
