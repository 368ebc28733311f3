"""`vaehub generate`: samples from a model's prior, printed (text) or drawn as a grid (images)."""

from __future__ import annotations

import argparse

from vaehub.commands.flags import add_decoding_flags, decoding_options
from vaehub.commands.loading import is_image_model, load_for_inference


def generate(args: argparse.Namespace) -> int:
    """`vaehub generate`: samples from the prior, printed (text) or drawn as a grid (images)."""
    model = load_for_inference(args)
    if is_image_model(model):
        from vaehub.models.image.modeling_delta_vae import save_image_grid

        images = model.generate(num_samples=args.num_samples, greedy=args.greedy)
        path = save_image_grid(images, args.output or "samples.png")
        print(f"wrote {args.num_samples} samples of {args.model} to {path}")
        return 0
    for sentence in model.generate_sentences(
        num_samples=args.num_samples, **decoding_options(args, model)
    ):
        print(sentence)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub generate` and its flags."""
    generating = commands.add_parser(
        "generate",
        help="sample from a model's prior: sentences, or a grid of images",
        description="Decode latents drawn from the prior of a saved model (a folder or Hub "
        "id): a text VAE prints one sentence per line, a δ-VAE writes a PNG grid.",
    )
    generating.add_argument("model", help="a folder saved by vaehub, or a Hub id")
    generating.add_argument("--num_samples", type=int, default=8)
    generating.add_argument("--output", default=None, help="δ-VAE: PNG path (samples.png)")
    add_decoding_flags(generating)
    generating.set_defaults(run=generate)
