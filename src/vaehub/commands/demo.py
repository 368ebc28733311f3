"""`vaehub demo`: the flagship's sentences, then posterior collapse and its cure on He et al.'s
synthetic corpus.
"""

from __future__ import annotations

import argparse

from vaehub.recipes.demo_recipes import DEFAULT_RECIPES, FLAGSHIP, RECIPES


def demo(args: argparse.Namespace) -> int:
    from vaehub.recipes.demo import run_demo, show_flagship

    if args.flagship != "none":
        show_flagship(args.flagship, seed=args.seed)
    run_demo(
        output_dir=args.output_dir,
        num_sentences=args.num_sentences,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        iw_samples=args.iw_samples,
        recipes=tuple(args.recipes),
    )
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub demo` and its flags."""
    parser = commands.add_parser(
        "demo",
        help="posterior collapse (ELBO) and its cure (free bits) on the embedded corpus",
        description="Train a small text VAE on He et al.'s synthetic corpus, generated here, "
        "with the ELBO and with free bits (or the recipes given); compare, sample, plot, save.",
    )
    parser.add_argument("--output-dir", default="vaehub-demo", help="where to save the models")
    parser.add_argument(
        "--num-sentences",
        type=int,
        default=12000,
        help="synthetic sentences to generate (10%% held out)",
    )
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=list(DEFAULT_RECIPES),
        choices=list(RECIPES),
        help="what to train, the reference first (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=float, default=10, help="training epochs per recipe")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--iw-samples", type=int, default=100, help="importance samples K of the validation NLL"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--flagship",
        default=FLAGSHIP,
        help="the released text VAE whose sentences the demo shows first ('none' to skip)",
    )
    parser.set_defaults(run=demo)
