"""Inference beyond the amortised Gaussian on He et al.'s synthetic data (the demo's
setting): elbo, SA-VAE, SA-VAE + anneal, aggressive and an IAF posterior, each with NLL,
KL, MI, active units and the approximation and amortisation gaps.

    python examples/inference_table.py

Every row trains the demo's model (embedding 50, hidden 50, latent 2, AdamW 3e-3, batch
32, `--epochs` epochs on `--sentences` sentences, seed 0) and is measured on the held-out
10%: IW-NLL with `--iw-samples`, and the gaps on the first `--gap-examples` sentences
(`vaehub.evaluation.gaps`). SA-VAE rows are evaluated with their refined posterior, as Kim et
al. do. A finished row's results are kept in `results.json` and skipped on the next run,
so an interrupted table resumes. Writes `table.md`, `results.json`, `gaps.png` (the gaps
of every row) and `posterior_contours.png` (the true posterior of four sentences against
the amortised, optimal Gaussian and flow posteriors, for the aggressive and SA-VAE rows).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from transformers import set_seed  # noqa: E402

from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer  # noqa: E402
from vaehub.data.batching import iterate_batches  # noqa: E402
from vaehub.data.sources import DATASET_NAMES  # noqa: E402
from vaehub.data.synthetic import synthetic_corpus  # noqa: E402
from vaehub.data.text import TextCollator, tokenize_corpus  # noqa: E402
from vaehub.evaluation.gaps import GapSettings, amortisation_gaps, posterior_grids  # noqa: E402
from vaehub.evaluation.plots import plot_posterior_contours  # noqa: E402
from vaehub.recipes.train import train_and_record  # noqa: E402
from vaehub.training.arguments import VAETrainingArguments  # noqa: E402

# Row name → (training arguments beyond the shared ones, model config overrides).
ROWS = {
    "elbo": ({"objective": "elbo"}, {}),
    "sa_vae": ({"objective": "sa_vae"}, {}),
    "sa_vae_anneal": ({"objective": "sa_vae", "beta_schedule": "linear"}, {}),
    "aggressive": ({"objective": "aggressive"}, {}),
    "iaf": ({"objective": "elbo"}, {"posterior": "iaf"}),
}
LABELS = {
    "elbo": "VAE (elbo)",
    "sa_vae": "SA-VAE",
    "sa_vae_anneal": "SA-VAE + anneal",
    "aggressive": "aggressive",
    "iaf": "VAE, IAF posterior",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="examples/results/inference_synthetic")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--sentences", type=int, default=12000)
    parser.add_argument("--epochs", type=float, default=4)
    parser.add_argument("--sa-vae-steps", type=int, default=10, help="SVI steps K of SA-VAE")
    parser.add_argument("--anneal-epochs", type=float, default=2, help="β 0.1 → 1 over these")
    parser.add_argument("--iw-samples", type=int, default=200)
    parser.add_argument("--gap-examples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--recompute-gaps", action="store_true",
        help="measure the gaps of rows already trained again (their saved models)",
    )  # fmt: skip
    args = parser.parse_args()

    os.makedirs(args.output_dir, exist_ok=True)
    results_path = os.path.join(args.output_dir, "results.json")
    results = read_results(results_path)
    corpus = synthetic_corpus(args.sentences, seed=args.seed).train_test_split(
        test_size=0.1, seed=args.seed
    )
    tokenizer = build_tokenizer(corpus["train"]["text"])
    config = TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer))
    data = tokenize_corpus(corpus, tokenizer, config.max_sequence_length)
    splits = {"train": data["train"], "validation": data["test"]}
    models = {}
    for row in args.rows:
        folder = os.path.join(args.output_dir, "models", row)
        if row in results and os.path.isfile(os.path.join(folder, "model.safetensors")):
            print(f"{row}: done before ({results[row]['train_seconds']:.0f} s), kept")
            models[row] = TextVAEModel.from_pretrained(folder).eval()
            if args.recompute_gaps:
                results[row]["gaps"], results[row]["gap_seconds"] = measure_gaps(
                    models[row], data["test"], args
                )
                write_results(results_path, results)
                print(f"{row}: gaps measured again ({results[row]['gap_seconds']:.0f} s)")
            continue
        training, overrides = ROWS[row]
        set_seed(args.seed)
        model = TextVAEModel(TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer),
                                                       **overrides))  # fmt: skip
        model.tokenizer = tokenizer
        settings = dict(
            output_dir=folder, num_train_epochs=args.epochs, per_device_train_batch_size=32,
            learning_rate=3e-3, lr_scheduler_type="constant", max_grad_norm=5.0,
            logging_steps=100, save_strategy="no", report_to="none", use_cpu=True,
            seed=args.seed, disable_tqdm=True, eval_iw_nll=True, iw_samples=args.iw_samples,
            per_device_eval_batch_size=100, sa_vae_steps=args.sa_vae_steps,
        )  # fmt: skip
        if training.get("beta_schedule"):
            settings["anneal_epochs"] = args.anneal_epochs
        print(f"{row}: training ({', '.join(f'{k}={v}' for k, v in training.items())})")
        start = time.time()
        trainer = train_and_record(
            model,
            VAETrainingArguments(**settings, **training),
            splits,
            TextCollator(),
            DATASET_NAMES["synthetic"],
        )
        seconds = time.time() - start
        model.eval()
        gaps, gap_seconds = measure_gaps(model, data["test"], args)
        metrics = model.evaluation_results["validation"]["metrics"]
        results[row] = {
            "label": LABELS[row],
            "training": {**training, **overrides},
            "nll": metrics["nll"],
            "kl": metrics["kl"],
            "mi": metrics["mi"],
            "active_units": int(metrics["active_units"]),
            "refine_steps": int(metrics.get("refine_steps", 0)),
            "gaps": gaps,
            "train_seconds": seconds,
            "gap_seconds": gap_seconds,
            "epochs": args.epochs,
            "sentences": len(data["train"]),
            "iw_samples": args.iw_samples,
            "aggressive_epochs": len(trainer.aggressive.mi_history) or None,
        }
        write_results(results_path, results)
        models[row] = model
        print(f"{row}: {seconds:.0f} s, {json.dumps({k: results[row][k] for k in ('nll', 'kl')})}")

    table = render_table(results, args)
    with open(os.path.join(args.output_dir, "table.md"), "w", encoding="utf-8") as handle:
        handle.write(table)
    print(table)
    plot_gaps(results, os.path.join(args.output_dir, "gaps.png"))
    contour_rows = [r for r in ("aggressive", "sa_vae_anneal") if r in models]
    test = data["test"].select(range(4))
    for row in contour_rows:
        torch.manual_seed(args.seed)
        grids = posterior_grids(models[row], next(iter(iterate_batches(test, 4, 0))), examples=4)
        plot_posterior_contours(
            grids,
            os.path.join(args.output_dir, f"posterior_contours_{row}.png"),
            title=f"{LABELS[row]}: true posterior p(z|x) and three approximations",
        )


def measure_gaps(model: TextVAEModel, test, args: argparse.Namespace) -> tuple[dict, float]:
    """The gaps' summary on the first `--gap-examples` held-out sentences, and its seconds."""
    torch.manual_seed(args.seed)
    batches = list(iterate_batches(test.select(range(args.gap_examples)), 32, 0))
    start = time.time()
    return amortisation_gaps(model, batches, GapSettings()).summary(), time.time() - start


def render_table(results: dict, args: argparse.Namespace) -> str:
    """The Markdown table of every finished row, numbers from `results.json`."""
    lines = [
        "| row | NLL | KL | MI | AU | log p(x) − ELBO | approximation | amortisation "
        "| approx., flow | train s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in ROWS:
        if row not in results:
            continue
        r, g = results[row], results[row]["gaps"]
        flow = g.get("approximation_gap_flow", math.nan)
        lines.append(
            f"| {r['label']} | {r['nll']:.2f} | {r['kl']:.2f} | {r['mi']:.2f} | "
            f"{r['active_units']} | {g['gap']:.2f} | {g['approximation_gap']:.2f} | "
            f"{g['amortisation_gap']:.2f} | {flow:.2f} | {r['train_seconds']:.0f} |"
        )
    any_row = next(iter(results.values()))
    lines += [
        "",
        f"Synthetic data (He et al. 2019), {any_row['sentences']} training sentences, "
        f"{any_row['epochs']:g} epochs; NLL importance-weighted (K = {any_row['iw_samples']}) "
        "on the held-out sentences, nats per sentence; SA-VAE with K = "
        f"{args.sa_vae_steps} SVI steps, evaluated with its refined posterior. Gaps on "
        f"{any_row['gaps']['examples']} held-out sentences, log p(x) with K = "
        f"{any_row['gaps']['iw_samples']}; the flow column is the approximation gap of a "
        "per-sentence planar flow of 8 steps.",
    ]
    return "\n".join(lines) + "\n"


def plot_gaps(results: dict, path: str) -> None:
    rows = [r for r in ROWS if r in results]
    approximation = [results[r]["gaps"]["approximation_gap"] for r in rows]
    amortisation = [results[r]["gaps"]["amortisation_gap"] for r in rows]
    figure, axis = plt.subplots(figsize=(1.4 * len(rows) + 2, 3.4))
    positions = range(len(rows))
    axis.bar(positions, approximation, color="tab:green", label="approximation gap")
    axis.bar(positions, amortisation, bottom=approximation, color="tab:blue",
             label="amortisation gap")  # fmt: skip
    axis.set_xticks(list(positions), [LABELS[r] for r in rows], rotation=15)
    axis.set(ylabel="nats per sentence", title="log p(x) − ELBO, split (Cremer et al.)")
    axis.legend()
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def read_results(path: str) -> dict:
    """The finished rows in a results file, or none."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_results(path: str, results: dict) -> None:
    """Replace a results file in one step, so an interruption leaves the last good one."""
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, allow_nan=False)
    os.replace(partial, path)


if __name__ == "__main__":
    main()
