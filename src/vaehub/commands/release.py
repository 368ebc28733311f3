"""`vaehub release`: a trained model folder as a checkpoint with a card anyone can check."""

from __future__ import annotations

import argparse
import sys


def release(args: argparse.Namespace) -> int:
    """`vaehub release`: a trained model folder as a checkpoint with a checkable card."""
    from vaehub.recipes.release import release as release_checkpoint

    folder = release_checkpoint(
        args.model_dir, args.name, args.data, output_dir=args.output_dir,
        organization=args.organization, split=args.split, first=args.examples,
        seed=args.seed, iw_samples=args.iw_samples, batch_size=args.batch_size,
        dtype=args.dtype, baseline=args.baseline, about=_about(args.about),
        split_iw_samples=args.split_iw_samples,
        show_progress=not args.no_progress and sys.stderr.isatty(),
    )  # fmt: skip
    print(f"wrote {folder}; push it with: vaehub push {folder} {args.organization}/{args.name}")
    return 0


def _about(value: str | None) -> str | None:
    """--about: Markdown text, or @FILE to read it from a file."""
    if value is None or not value.startswith("@"):
        return value
    with open(value[1:], encoding="utf-8") as handle:
        return handle.read()


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub release` and its flags."""
    releasing = commands.add_parser(
        "release",
        help="make a trained model folder a checkpoint with a card anyone can check",
        description="Write OUTPUT_DIR/NAME, ready for `vaehub push`: the model (optionally "
        "stored in float16 or bfloat16), its results, a verification slice (the first N "
        "examples of the card's split) measured on the stored weights, and the card.",
    )
    releasing.add_argument("model_dir", help="a folder written by vaehub train")
    releasing.add_argument("--name", required=True, help="the checkpoint's name on the Hub")
    releasing.add_argument(
        "--data", required=True,
        help="the slice's dataset: synthetic, digits, or a PTB, MNIST, Omniglot or Frey Faces "
        "folder, a sentence file or a .npy/.npz file of vectors (linear_vae)",
    )  # fmt: skip
    releasing.add_argument("--output-dir", default="model_cards")
    releasing.add_argument("--organization", default="vaehub")
    releasing.add_argument("--split", default=None, help="default: test where there is one")
    releasing.add_argument("--examples", type=int, default=200, help="size of the slice")
    releasing.add_argument("--iw-samples", type=int, default=100, help="K on the slice")
    releasing.add_argument("--batch-size", type=int, default=64)
    releasing.add_argument("--seed", type=int, default=0)
    releasing.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    releasing.add_argument(
        "--split-iw-samples", type=int, default=None,
        help="with --dtype float16/bfloat16: K of the card split's measurement on the stored "
        "weights (default: the K the run's results were measured with)",
    )  # fmt: skip
    releasing.add_argument(
        "--baseline",
        default=None,
        help="text VAE: an LSTM-LM folder or Hub id under which the generation report "
        "measures the prior samples' perplexity",
    )
    releasing.add_argument(
        "--about",
        default=None,
        help="Markdown opening the card: what the checkpoint is for, its recipe, the command "
        "that trained it (@FILE reads it from a file)",
    )
    releasing.add_argument(
        "--no-progress", action="store_true",
        help="no progress bar over the split's measurement (shown in a terminal)",
    )  # fmt: skip
    releasing.set_defaults(run=release)
