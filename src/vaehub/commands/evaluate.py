"""`vaehub evaluate`: IW-NLL, PPL, KL, MI and active units of a saved model (and the linear
VAE's exact NLL), and with `--generation` its generation report.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vaehub import hub
from vaehub.commands.flags import corpus_options
from vaehub.commands.loading import load_model
from vaehub.latent.refinement import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_MAX_GRAD_NORM,
    DEFAULT_MOMENTUM,
    REFINEMENT_DEFAULTS,
    Refinement,
)

TABLE_ROWS = (
    ("nll", "NLL (nats/{unit})"),
    ("exact_nll", "exact NLL (nats/{unit})"),
    ("ppl", "PPL"),
    ("bits_per_dim", "bits/dim"),
    ("neg_elbo", "−ELBO"),
    ("reconstruction", "reconstruction"),
    ("kl", "KL"),
    ("mi", "MI"),
    ("active_units", "active units"),
    ("baseline_nll", "decoder-alone NLL"),
    ("delta_nll", "ΔNLL vs decoder alone"),
    ("nats_read", "nats the decoder reads from z"),
    ("rate_unread", "KL paid but not read"),
)


def evaluate(args: argparse.Namespace) -> int:
    """`vaehub evaluate`: the collapse metrics of a saved model on a corpus."""
    import torch

    from vaehub.data.sources import evaluation_data
    from vaehub.evaluation.metrics import evaluate_vae

    # Asked before measuring, and again with the results: a released or fuller record, or
    # one of other data, is never replaced silently.
    target = args.output or os.path.join(args.model_dir, f"{hub.EVAL_PREFIX}{args.split}.json")
    # A Hub id (no such path here) is recorded as given.
    local = args.data not in ("synthetic", "digits") and os.path.exists(args.data)
    data = os.path.abspath(args.data) if local else args.data
    hub.check_results_target(target, None, data, overwrite=args.overwrite)
    model = load_model(args.model_dir)
    refinement = resolve_refinement(args, model)
    stats: dict[str, Any] = {}
    batches, unit, dataset, total = evaluation_data(
        model, args.data, args.split, args.batch_size, args.max_examples, args.seed, stats,
        **corpus_options(args),
    )  # fmt: skip
    torch.manual_seed(args.seed)
    results = evaluate_vae(
        model,
        batches,
        iw_samples=args.iw_samples or None,
        show_progress=not args.no_progress and sys.stderr.isatty(),
        total=total,
        refinement=refinement,
        baseline=load_model(args.baseline) if args.baseline else None,
    )
    refined = f", {refinement.describe()}" if refinement.steps else ""
    print(
        f"{args.model_dir} on {args.data} ({args.split}, {results['num_examples']} {unit}"
        f"{f', K={args.iw_samples}' if args.iw_samples else ''}{refined}):"
    )
    rows = [
        (label.format(unit=unit[:-1]), key) for key, label in TABLE_ROWS if key in results
    ]
    width = max(25, *(len(label) + 1 for label, _ in rows)) if rows else 25
    for label, key in rows:
        value = results[key]
        shown = str(round(value)) if key in hub.COUNTS else hub.fixed(value, 3)
        print(f"  {label:<{width}}{shown:>10}")
    if unit == "examples":
        # Said, not left for the reader to wonder: the image models print bits/dim.
        print("  (no bits/dim: a density of continuous values depends on their scale)")
    extra = {"iw_samples": args.iw_samples or None, "data": data, **stats}
    hub.check_results_target(target, dataset, data, results, overwrite=args.overwrite)
    if args.generation:
        extra["generation"] = generation(args, model)
    output = hub.write_results(
        args.model_dir, args.split, results, dataset, path=args.output, **extra
    )
    print(f"wrote {output}")
    return 0


def resolve_refinement(args: argparse.Namespace, model: Any) -> Refinement:
    """The refinement to measure with: each setting given on the command line, the model's
    own for the others (an SA-VAE is used with the refinement it trained with) unless
    --no_refine, else none."""
    own = model.inference_refinement if hasattr(model, "inference_refinement") else None
    if args.no_refine:
        if args.refine_steps:
            raise ValueError("--no_refine measures the bare encoder: drop --refine_steps.")
        own = None
    given = {key: getattr(args, key) for key in ("refine_steps", *REFINEMENT_DEFAULTS)}
    return Refinement.from_record(
        {key: (own or {}).get(key) if value is None else value for key, value in given.items()}
    )


def generation(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """`--generation`: the generation report on the evaluated sentences, printed."""
    from vaehub.data.sources import evaluation_sentences
    from vaehub.evaluation.generation_report import generation_report

    if model.main_input_name != "input_ids" or not getattr(model, "has_latent", True):
        raise ValueError("--generation reports on a text VAE's decodings; this model is not one.")
    sentences, _ = evaluation_sentences(args.data, args.split, args.max_examples or 200)
    baseline = load_model(args.baseline) if args.baseline else None
    report = generation_report(model, sentences["text"], seed=args.seed, baseline=baseline)
    print("generation report (default decoding):")
    for part in ("reconstruction", "samples", "interpolation"):
        for key, value in report[part].items():
            if isinstance(value, (int, float)):
                print(f"  {part + ' ' + key:<34}{hub.fixed(value, 3):>10}")
    for sentence in report["shown"]["samples"]:
        print(f"  sample: {sentence}")
    return report


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub evaluate` and its flags."""
    evaluation = commands.add_parser(
        "evaluate",
        help="IW-NLL, PPL, KL, MI and active units of a saved model",
        description="Evaluate a saved text model on a corpus, or an image model on an image "
        "set, or a linear VAE on vectors; prints a table and writes JSON. A model without a "
        "latent (text_lm, pixelcnn) gets its exact NLL; the linear VAE gets its exact NLL "
        "beside the IW-NLL.",
    )
    evaluation.add_argument("model_dir", help="a folder saved by vaehub")
    evaluation.add_argument(
        "--data",
        "--dataset_name",
        dest="data",
        required=True,
        help="a PTB folder (with --split), 'synthetic' (He et al.'s corpus, splits train and "
        "validation), a txt (one sentence per line), csv, json, jsonl or parquet file, a "
        "dataset folder, a save_to_disk folder or a dataset id on the Hub (with --split); "
        "for a δ-VAE, 'digits' or an MNIST or Omniglot folder; for a linear VAE, a Frey "
        "Faces or MNIST folder or a .npy/.npz file of vectors (with --split)",
    )
    evaluation.add_argument(
        "--text_column", default="text", help="the column holding the text (csv, json, ...)"
    )
    evaluation.add_argument(
        "--dataset_config_name", default=None, help="the configuration of a Hub dataset"
    )
    evaluation.add_argument("--cache_dir", default=None, help="datasets' cache folder")
    evaluation.add_argument(
        "--validation_split_percentage",
        type=float,
        default=5,
        help="a dataset without a validation split: the percentage of train cut as one, "
        "as vaehub train cuts it",
    )
    evaluation.add_argument(
        "--validation_split_seed", type=int, default=0, help="the seed of that cut"
    )
    evaluation.add_argument("--split", default="test", help="train, validation or test")
    evaluation.add_argument(
        "--iw-samples", type=int, default=500, help="K of the importance-weighted NLL; 0 skips it"
    )
    evaluation.add_argument("--batch-size", type=int, default=64)
    evaluation.add_argument(
        "--refine_steps",
        type=int,
        default=None,
        help="SVI steps refining each posterior from the encoder's before measuring "
        "(Kim et al.): how much of the gap is the encoder's. Default: a model trained with "
        "SVI refinement (SA-VAE) is measured with its own; others with none",
    )
    evaluation.add_argument(
        "--refine_lr",
        type=float,
        default=None,
        help=f"step size η of those SVI steps, per example (default: the model's own, else "
        f"{DEFAULT_LEARNING_RATE:g}, Kim et al.'s)",
    )
    evaluation.add_argument(
        "--refine_momentum",
        type=float,
        default=None,
        help=f"momentum of those SVI steps (default: the model's own, else {DEFAULT_MOMENTUM:g}, "
        "Kim et al.'s)",
    )
    evaluation.add_argument(
        "--refine_max_grad_norm",
        type=float,
        default=None,
        help="norm at which those SVI steps' gradients are clipped (default: the model's own, "
        f"else {DEFAULT_MAX_GRAD_NORM:g}, Kim et al.'s)",
    )
    evaluation.add_argument(
        "--no_refine",
        action="store_true",
        help="measure the bare encoder's posterior, even for a model trained with SVI refinement",
    )
    evaluation.add_argument(
        "--generation",
        action="store_true",
        help="text VAE: also the generation report (reconstruction BLEU and token accuracy "
        "on the first 200 sentences or --max_examples, prior samples, interpolations), saved "
        "in the results under 'generation'",
    )
    evaluation.add_argument(
        "--max_examples",
        "--max_sentences",
        type=int,
        default=None,
        help="evaluate the first N sentences or images only",
    )
    evaluation.add_argument(
        "--baseline",
        default=None,
        help="a text_lm or pixelcnn model (the decoder trained alone): its exact NLL on the "
        "same examples is printed and saved beside the IW-NLL, with their difference",
    )
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown in a terminal)"
    )
    evaluation.add_argument(
        "--output", default=None, help="JSON path (default MODEL_DIR/eval_<split>.json)"
    )
    evaluation.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a released record, or one measured on other data (never a fuller one)",
    )
    evaluation.set_defaults(run=evaluate)
