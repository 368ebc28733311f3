"""`vaehub card`: write a model folder's card without pushing."""

from __future__ import annotations

import argparse
import os

from vaehub import hub


def card(args: argparse.Namespace) -> int:
    """`vaehub card`: write a model folder's card without pushing."""
    if args.baseline:
        metrics = hub.attach_baseline(args.model_dir, args.baseline, split=args.split)
        print(
            f"{args.model_dir}: the decoder reads {hub.fixed(metrics['nats_read'], 2)} of the "
            f"{hub.fixed(metrics['kl'], 2)} nats it pays for (beside {args.baseline})"
        )
    model_card = hub.render_model_card(args.model_dir, repo_id=args.repo_id, split=args.split)
    output = args.output or os.path.join(args.model_dir, "README.md")
    from vaehub.utils.safe_io import write_text

    write_text(output, str(model_card))
    print(f"wrote {output}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub card` and its flags."""
    carding = commands.add_parser(
        "card",
        help="write a model folder's card (README.md)",
        description="Render the model card from the folder's "
        "config, evaluation results and training "
        "summary, without pushing.",
    )
    carding.add_argument("model_dir")
    carding.add_argument("--repo-id", default=None, help="the Hub name the usage snippet loads")
    carding.add_argument("--split", default=None, help="which evaluation to report")
    carding.add_argument("--output", default=None, help="default MODEL_DIR/README.md")
    carding.add_argument(
        "--baseline",
        default=None,
        help="the decoder trained alone (e.g. model_cards/ptb-lstm-lm), evaluated exactly on "
        "the same split: its NLL goes beside the VAE's results, with the nats the decoder "
        "reads from z, before the card is written",
    )
    carding.set_defaults(run=card)
