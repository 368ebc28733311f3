"""`vaehub verify`: a checkpoint's verification slice measured again and compared with its card."""

from __future__ import annotations

import argparse
import sys

from vaehub import hub
from vaehub.commands.flags import add_timeout_flag


def verify(args: argparse.Namespace) -> int:
    """`vaehub verify`: the card's verification slice measured again."""
    from vaehub.recipes.release import verify as verify_checkpoint
    from vaehub.utils import network

    network.set_hub_timeout(args.timeout)
    checks = verify_checkpoint(args.model, data=args.data)
    print(f"{'metric':<16}{'card':>12}{'measured':>12}{'within':>10}")
    for check in checks:
        measured = "missing" if check.measured is None else hub.fixed(check.measured, 4)
        print(
            f"{check.metric:<16}{hub.fixed(check.card, 4):>12}{measured:>12}"
            f"{hub.fixed(check.tolerance, 4):>10}  {'ok' if check.ok else 'DIFFERS'}"
        )
    wrong = [check.metric for check in checks if not check.ok]
    if wrong:
        print(
            f"vaehub verify: the card of {args.model} does not match its weights: "
            f"{', '.join(wrong)} differ beyond tolerance.",
            file=sys.stderr,
        )
        return 1
    print(f"{args.model}: every number of the card's verification slice agrees.")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub verify` and its flags."""
    verifying = commands.add_parser(
        "verify",
        help="measure a checkpoint's verification slice again and compare with its card",
        description="Read the card of a folder or Hub repository, measure the verification "
        "slice it names on the weights beside it, and compare each number within its "
        "tolerance; exits 1 when any differs.",
    )
    verifying.add_argument("model", help="a checkpoint folder or a Hub id")
    verifying.add_argument(
        "--data",
        default=None,
        help="where the slice's dataset lies: a PTB, MNIST, Omniglot or Frey Faces folder, or "
        "the sentence or vector file (not for synthetic, digits)",
    )
    add_timeout_flag(verifying)
    verifying.set_defaults(run=verify)

    # Listed for --help only: `main` hands `vaehub app ...` to vaehub.app.launch unparsed.
