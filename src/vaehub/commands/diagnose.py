"""`vaehub diagnose`: did a model collapse, and why (a report with figures)."""

from __future__ import annotations

import argparse
import os
import sys

from vaehub import hub
from vaehub.commands.loading import load_model


def diagnose(args: argparse.Namespace) -> int:
    """`vaehub diagnose`: did a model collapse, and why (a report with figures)."""
    from vaehub.data.sources import evaluation_data
    from vaehub.evaluation.diagnose import diagnose as run_diagnosis
    from vaehub.evaluation.gaps import GapSettings

    model = load_model(args.model)
    baseline = load_model(args.baseline) if args.baseline else None
    batches, unit, _, total = evaluation_data(
        model, args.data, args.split, args.batch_size, args.max_examples, args.seed
    )
    name = os.path.basename(os.path.normpath(args.model))
    output = args.output_dir or (
        os.path.join(args.model, "diagnosis") if os.path.isdir(args.model) else f"diagnosis-{name}"
    )
    report = run_diagnosis(
        model,
        list(batches),
        output,
        name,
        iw_samples=args.iw_samples,
        gap_examples=args.gap_examples,
        gap_settings=GapSettings(iw_samples=args.gap_iw_samples, flow=not args.no_flow),
        seed=args.seed,
        show_progress=not args.no_progress and sys.stderr.isatty(),
        baseline=baseline,
    )
    state = "collapsed" if report["verdict"]["collapsed"] else "not collapsed"
    print(f"{args.model} on {args.data} ({args.split}, {total} {unit}): {state}")
    print(f"  {report['verdict']['why']}")
    metrics = report["metrics"]
    rate = hub.fixed(report["committed_rate"], 3)
    print(
        f"  KL {hub.fixed(metrics['kl'], 3)} (committed rate {rate}),"
        f" MI {hub.fixed(metrics['mi'], 3)}, active units {metrics['active_units']}"
    )
    if report["gaps"] is not None:
        gaps = report["gaps"]
        print(
            f"  gaps on {gaps['examples']} {unit}: approximation "
            f"{hub.fixed(gaps['approximation_gap'], 3)}, amortisation "
            f"{hub.fixed(gaps['amortisation_gap'], 3)} nats"
        )
    print(f"wrote {os.path.join(output, 'report.md')} and diagnosis.json with its figures")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub diagnose` and its flags."""
    diagnosis = commands.add_parser(
        "diagnose",
        help="did a model collapse, and why: a report with KL per dimension, AU, MI, gaps",
        description="Measure a saved model (a folder or a Hub id) on data and write a "
        "Markdown report, its figures and the numbers as JSON: KL per dimension, active "
        "units, MI, KL against the committed rate, the approximation and amortisation "
        "gaps, and for 2-d latents the posterior figures.",
    )
    diagnosis.add_argument("model", help="a folder saved by vaehub, or a Hub repository id")
    diagnosis.add_argument(
        "--data",
        required=True,
        help="as for evaluate: a PTB folder, a one-sentence-per-line file, 'digits' or an "
        "MNIST or Omniglot folder",
    )
    diagnosis.add_argument("--split", default="test")
    diagnosis.add_argument(
        "--baseline",
        help="the model's decoder trained alone (e.g. model_cards/ptb-lstm-lm): its exact NLL "
        "on the same data says how many nats the decoder reads from z",
    )
    diagnosis.add_argument("--max_examples", type=int, default=1000, help="examples measured")
    diagnosis.add_argument(
        "--gap_examples",
        type=int,
        default=32,
        help="examples the gaps are measured on (each costs hundreds of SVI steps); 0 skips",
    )
    diagnosis.add_argument("--iw-samples", type=int, default=500, help="K of the IW-NLL; 0 skips")
    diagnosis.add_argument(
        "--gap_iw_samples", type=int, default=1000, help="K of log p(x) in the gaps"
    )
    diagnosis.add_argument("--no_flow", action="store_true", help="skip the optimal flow fit")
    diagnosis.add_argument("--batch-size", type=int, default=64)
    diagnosis.add_argument("--seed", type=int, default=0)
    diagnosis.add_argument("--output_dir", default=None, help="default MODEL/diagnosis")
    diagnosis.add_argument("--no-progress", action="store_true")
    diagnosis.set_defaults(run=diagnose)
