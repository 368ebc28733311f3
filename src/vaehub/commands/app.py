"""`vaehub app`: listed for `--help`; `main` hands `vaehub app ...` to `vaehub.app.launch`
unparsed.
"""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub app` (its flags are the launcher's own)."""
    commands.add_parser(
        "app", add_help=False, help="open the latent explorer (a Gradio page; vaehub[app])"
    )
