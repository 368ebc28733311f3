"""`vaehub pull`: download a model repository and check that it loads."""

from __future__ import annotations

import argparse

from vaehub import hub
from vaehub.commands.flags import add_timeout_flag


def pull(args: argparse.Namespace) -> int:
    """`vaehub pull`: download a model repository and check that it loads."""
    from transformers import AutoModel

    from vaehub.utils import network

    network.set_hub_timeout(args.timeout)
    path = hub.pull(
        args.repo_id, revision=args.revision, local_dir=args.output_dir, force=args.force
    )
    model = AutoModel.from_pretrained(path)
    latent = getattr(model.config, "latent_size", None)
    print(
        f"pulled {args.repo_id}{f' ({args.revision})' if args.revision else ''} to {path}: "
        f"a {model.config.model_type} model, "
        + (f"latent size {latent}, " if latent is not None else "no latent, ")
        + f"{model.num_parameters():,} parameters."
    )
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub pull` and its flags."""
    pulling = commands.add_parser(
        "pull",
        help="download a model from the Hub and check it",
        description="Download a vaehub model repository.",
    )
    pulling.add_argument("repo_id", help="org/name")
    pulling.add_argument("--revision", default=None)
    pulling.add_argument(
        "--output-dir", default=None, help="a folder to place the files in (default: the Hub cache)"
    )
    pulling.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty --output-dir as a whole (refused without it)",
    )
    add_timeout_flag(pulling)
    pulling.set_defaults(run=pull)
