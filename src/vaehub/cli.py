"""The `vaehub` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from vaehub.demo import run_demo

    run_demo(
        output_dir=args.output_dir,
        num_sentences=args.num_sentences,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaehub",
        description="Variational autoencoders whose latent code is used.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train a small text VAE on the embedded synthetic corpus (a few minutes)",
        description="Train a small text VAE on He et al.'s synthetic corpus, generated here, "
        "then sample, interpolate and save it.",
    )
    demo.add_argument("--output-dir", default="vaehub-demo", help="where to save the model")
    demo.add_argument(
        "--num-sentences",
        type=int,
        default=12000,
        help="synthetic sentences to generate (10%% held out)",
    )
    demo.add_argument("--epochs", type=float, default=8, help="training epochs")
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as error:
        print(f"vaehub {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
