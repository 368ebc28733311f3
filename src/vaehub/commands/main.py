"""The `vaehub` command: one module of this folder per subcommand (`demo`, `reproduce`,
`train`, `evaluate`, `diagnose`, `push`, `pull`, `generate`, `interpolate`, `reconstruct`,
`card`, `release`, `verify`, `app`), each declaring its flags (`add_parser`) and running it.

`vaehub train` parses `ModelArguments`, `DataArguments` and `VAETrainingArguments` with
`HfArgumentParser`, so every `TrainingArguments` flag works (`--learning_rate`,
`--num_train_epochs`, `--bf16`, `--resume_from_checkpoint`, ...). The command modules import
what a command runs only when it runs, so that `vaehub --help` loads no model code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vaehub import hub
from vaehub.commands import (
    app,
    card,
    demo,
    diagnose,
    evaluate,
    generate,
    interpolate,
    pull,
    push,
    reconstruct,
    release,
    reproduce,
    train,
    verify,
)
from vaehub.commands.flags import FlagParser
from vaehub.utils.allocator import keep_freed_memory
from vaehub.utils.safe_io import terminate_as_exit

# In the order `vaehub --help` lists them.
COMMANDS = (
    demo, reproduce, train, evaluate, diagnose, push, pull, generate, interpolate, reconstruct,
    card, release, verify, app,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The `vaehub` parser, with every command's subparser."""
    parser = FlagParser(
        prog="vaehub", description="Variational autoencoders whose latent code is used."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `vaehub ARGV`; a bad input is printed as one line and gives exit status 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    keep_freed_memory()
    try:
        with terminate_as_exit():  # a kill cleans up as Ctrl-C does
            if command == "train":  # HfArgumentParser parses its flags
                return train.train(argv[1:])
            if command == "app":  # imported only here: the core commands never need gradio
                from vaehub.app.launch import main as app_main

                return app_main(argv[1:])
            args = build_parser().parse_args(argv)
            return args.run(args)
    except SystemExit:  # --help and argparse's own errors: nothing more to load
        raise
    except (ValueError, OSError, hub.HubError) as error:
        print(f"vaehub {command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
