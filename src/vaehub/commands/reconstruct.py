"""`vaehub reconstruct`: each sentence, then the decoding of its posterior."""

from __future__ import annotations

import argparse

from vaehub.commands.flags import add_decoding_flags, decoding_options
from vaehub.commands.loading import load_for_inference


def reconstruct(args: argparse.Namespace) -> int:
    """`vaehub reconstruct`: each sentence, then the decoding of its posterior."""
    model = load_for_inference(args)
    if model.main_input_name != "input_ids" or not getattr(model, "has_latent", True):
        raise ValueError(f"{args.model} is not a text VAE: it has no posterior to decode.")
    decoded = model.reconstruct(
        args.sentences, sample=args.sample, refine=False if args.no_refine else None,
        **decoding_options(args, model),
    )  # fmt: skip
    for sentence, output in zip(args.sentences, decoded, strict=True):
        print(f"  {sentence}\n→ {output}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub reconstruct` and its flags."""
    reconstructing = commands.add_parser(
        "reconstruct",
        help="encode sentences and decode them again",
        description="Print each sentence and the decoding of its posterior mean (or a "
        "sample, with --sample) under a text VAE; a model trained with SVI refinement "
        "(SA-VAE) refines its posterior first unless --no_refine.",
    )
    reconstructing.add_argument("model", help="a folder saved by vaehub, or a Hub id")
    reconstructing.add_argument("sentences", nargs="+", help="one or more sentences")
    reconstructing.add_argument(
        "--sample", action="store_true", help="decode a sample of q(z|x) instead of its mean"
    )
    reconstructing.add_argument(
        "--no_refine", action="store_true", help="the bare encoder's posterior"
    )
    add_decoding_flags(reconstructing)
    reconstructing.set_defaults(run=reconstruct)
