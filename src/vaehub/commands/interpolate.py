"""`vaehub interpolate`: decode the path between the posterior means of two sentences or two
images.
"""

from __future__ import annotations

import argparse

from vaehub.commands.flags import add_decoding_flags, decoding_options
from vaehub.commands.loading import is_image_model, load_for_inference
from vaehub.data.sources import image_dataset_kind, load_images


def interpolate(args: argparse.Namespace) -> int:
    """`vaehub interpolate`: decode the path between the posterior means of two inputs."""
    model = load_for_inference(args)
    if not getattr(model, "has_latent", True):
        raise ValueError(
            f"{args.model} is a {model.config.model_type} model, with no latent to interpolate in."
        )
    if is_image_model(model):
        import torch

        from vaehub.data.images import image_batches
        from vaehub.models.image.modeling_delta_vae import save_image_grid

        if args.data is None:
            raise ValueError(
                "a δ-VAE interpolates between two images: give --data (digits or a folder of "
                "MNIST or Omniglot files) and two test-image indices."
            )
        kind = image_dataset_kind(args.data)
        images = load_images(kind, None if kind == "digits" else args.data, "test")
        indices = []
        for given in (args.a, args.b):
            if not given.isdigit() or int(given) >= len(images):
                raise ValueError(
                    f"{given!r} is not an image index: give two of 0..{len(images) - 1}."
                )
            indices.append(int(given))
        pair = next(image_batches(images.select(indices), 2, seed=args.seed))["pixel_values"]
        path_images = model.interpolate(
            pair[0], pair[1], args.steps, args.seed, args.greedy, method=args.method
        )
        row = torch.cat([pair[:1], path_images, pair[1:]])
        path = save_image_grid(row, args.output or "interpolation.png", columns=args.steps + 2)
        print(f"wrote image {indices[0]}, {args.steps} steps and image {indices[1]} to {path}")
        return 0
    path = model.interpolate(
        args.a, args.b, args.steps, method=args.method, refine=False if args.no_refine else None,
        **decoding_options(args, model),
    )  # fmt: skip
    print(f"a     {path.inputs[0]}")
    for t, sentence in zip(path.t, path, strict=True):
        print(f"{t:.2f}  {sentence}")
    print(f"b     {path.inputs[1]}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub interpolate` and its flags."""
    interpolating = commands.add_parser(
        "interpolate",
        help="decode the path between two sentences (or two images)",
        description="Decode z(t) = (1 − t)·z_a + t·z_b between the posterior means of two "
        "sentences (text VAE) or of two test images given by index with --data (δ-VAE, "
        "written as a PNG row).",
    )
    interpolating.add_argument("model", help="a folder saved by vaehub, or a Hub id")
    interpolating.add_argument("a", help="the first sentence (δ-VAE: a test-image index)")
    interpolating.add_argument("b", help="the second sentence (δ-VAE: a test-image index)")
    interpolating.add_argument("--steps", type=int, default=5, help="points on the path, >= 2")
    interpolating.add_argument("--data", default=None, help="δ-VAE: digits, or a folder")
    interpolating.add_argument(
        "--method",
        default="lerp",
        choices=("lerp", "slerp"),
        help="the path: straight (lerp) or along the great circle (slerp)",
    )
    interpolating.add_argument(
        "--no_refine",
        action="store_true",
        help="text: the bare encoder's posterior, even for a model trained with SVI refinement",
    )
    interpolating.add_argument("--output", default=None, help="δ-VAE: PNG path (interpolation.png)")
    add_decoding_flags(interpolating)
    interpolating.set_defaults(run=interpolate)
