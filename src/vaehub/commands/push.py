"""`vaehub push`: upload a model folder with its card."""

from __future__ import annotations

import argparse

from vaehub import hub
from vaehub.commands.flags import add_timeout_flag


def push(args: argparse.Namespace) -> int:
    """`vaehub push`: upload a model folder with its card."""
    from vaehub.utils import network

    network.set_hub_timeout(args.timeout)
    url = hub.push_folder(
        args.model_dir,
        args.repo_id,
        private=args.private or None,
        revision=args.revision,
        commit_message=args.commit_message,
        card=not args.no_card,
    )
    print(f"pushed {args.model_dir} to {args.repo_id}: {url}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub push` and its flags."""
    pushing = commands.add_parser(
        "push",
        help="upload a model folder and its card to the Hub",
        description="Upload a saved model folder (weights, config, tokenizer, generation "
        "config, results) with a model card rendered from its evaluation results. "
        "The local folder is only read.",
    )
    pushing.add_argument("model_dir")
    pushing.add_argument("repo_id", help="org/name")
    pushing.add_argument("--private", action="store_true")
    pushing.add_argument("--revision", default=None, help="branch to push to (created)")
    pushing.add_argument("--commit-message", default=None)
    pushing.add_argument("--no-card", action="store_true", help="push without a model card")
    add_timeout_flag(pushing)
    pushing.set_defaults(run=push)
