"""`vaehub card`: write a model folder's card without pushing."""

from __future__ import annotations

import argparse
import os

from vaehub import hub


def card(args: argparse.Namespace) -> int:
    """`vaehub card`: write a model folder's card without pushing."""
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
    carding.set_defaults(run=card)
