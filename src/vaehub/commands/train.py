"""`vaehub train`: every `TrainingArguments` flag, plus the model, data and objective flags
(`HfArgumentParser`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def train(argv: Sequence[str]) -> int:
    """`vaehub train`: train a text VAE, δ-VAE or linear VAE with any objective, save it and its
    evaluation (`vaehub.recipes.train.train_with_flags`)."""
    from vaehub.recipes.train import train_with_flags

    return train_with_flags(argv)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub train` for `--help`; `main` hands its flags to `HfArgumentParser`."""
    commands.add_parser(
        "train",
        help="train a text VAE, an image δ-VAE, either's decoder alone, or a linear VAE of "
        "vectors (see `vaehub train --help`)",
        add_help=False,
        description="Every TrainingArguments flag works, plus the model, data and objective flags.",
    ).set_defaults(run=None)
