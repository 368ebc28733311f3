"""The decoder alone: each VAE beside the exact NLL of its own decoder trained with no latent.

    python examples/decoder_alone.py            # ~10 minutes on 2 cores
    python examples/decoder_alone.py --quick    # a smoke run

Text, on He et al.'s synthetic data with the demo's model (embedding 50, hidden 50, z = 2,
AdamW 3e-3, batch 32): the LSTM language model (`TextLMModel`), the text VAE trained with
the ELBO, the text VAE whose decoder starts from the trained language model
(`TextVAEModel.from_decoder`, Li et al. 2019), and that VAE trained aggressively (He et al.).
Images, on scikit-learn's 8×8 digits (dynamically binarized): the Gated PixelCNN
(`PixelCNNModel`), the PixelCNN-VAE with a standard prior, and the δ-VAE (AR(1) prior,
δ = 2 nats). Every row is trained by `vaehub.recipes.train.train_and_record` with the baseline
named, so its results hold `baseline_nll` and `delta_nll` = IW-NLL − exact NLL of the
decoder alone on the same held-out examples. A finished row is kept in `results.json`
and skipped on the next run. Writes `table.md`.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

# The sibling script's results files, resumable row by row.
from inference_table import read_results, write_results  # examples/ is on the path
from transformers import set_seed

from vaehub import (
    DeltaVAEConfig,
    DeltaVAEModel,
    PixelCNNConfig,
    PixelCNNModel,
    TextLMConfig,
    TextLMModel,
    TextVAEConfig,
    TextVAEModel,
    build_tokenizer,
)
from vaehub.data.images import ImageCollator
from vaehub.data.sources import DATASET_NAMES, IMAGE_DATASET_NAMES, load_images
from vaehub.data.synthetic import synthetic_corpus
from vaehub.data.text import TextCollator, tokenize_corpus
from vaehub.recipes.train import train_and_record
from vaehub.training.arguments import VAETrainingArguments

TEXT_ROWS = ("lstm_lm", "vae", "vae_from_lm", "vae_from_lm_aggressive")
IMAGE_ROWS = ("pixelcnn", "pixelcnn_vae", "delta_vae")
LABELS = {
    "lstm_lm": "LSTM-LM (exact)",
    "vae": "VAE",
    "vae_from_lm": "VAE, decoder from the LM",
    "vae_from_lm_aggressive": "VAE, decoder from the LM + aggressive",
    "pixelcnn": "PixelCNN (exact)",
    "pixelcnn_vae": "PixelCNN-VAE (standard prior)",
    "delta_vae": "δ-VAE (AR(1), δ = 2)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="examples/results/decoder_alone")
    parser.add_argument("--sentences", type=int, default=12000)
    parser.add_argument("--text-epochs", type=float, default=4)
    parser.add_argument("--image-epochs", type=float, default=40)
    parser.add_argument("--iw-samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, to see it run")
    args = parser.parse_args()
    if args.quick:
        args.sentences, args.text_epochs, args.image_epochs, args.iw_samples = 600, 0.5, 1, 5
        args.output_dir = args.output_dir.rstrip("/") + "_quick"

    os.makedirs(args.output_dir, exist_ok=True)
    results_path = os.path.join(args.output_dir, "results.json")
    results = read_results(results_path)
    run_text(args, results, results_path)
    run_images(args, results, results_path)
    table = render_table(results)
    with open(os.path.join(args.output_dir, "table.md"), "w", encoding="utf-8") as handle:
        handle.write(table)
    print(table)


def settings(args: argparse.Namespace, folder: str, epochs: float, **extra) -> VAETrainingArguments:
    return VAETrainingArguments(
        output_dir=folder, num_train_epochs=epochs, per_device_train_batch_size=32,
        learning_rate=3e-3, lr_scheduler_type="constant", max_grad_norm=5.0,
        logging_steps=100, save_strategy="no", report_to="none", use_cpu=True,
        seed=args.seed, disable_tqdm=True, eval_iw_nll=True, iw_samples=args.iw_samples,
        per_device_eval_batch_size=100, **extra,
    )  # fmt: skip


def run_text(args: argparse.Namespace, results: dict, results_path: str) -> None:
    corpus = synthetic_corpus(args.sentences, seed=args.seed).train_test_split(
        test_size=0.1, seed=args.seed
    )
    tokenizer = build_tokenizer(corpus["train"]["text"])
    data = tokenize_corpus(
        corpus, tokenizer, TextVAEConfig.from_preset("synthetic").max_sequence_length
    )
    splits = {"train": data["train"], "validation": data["test"]}
    lm_folder = os.path.join(args.output_dir, "models", "lstm_lm")

    def build(row: str):
        if row == "lstm_lm":
            model = TextLMModel(TextLMConfig.from_preset("synthetic", vocab_size=len(tokenizer)))
            model.tokenizer = tokenizer
            return model
        if row == "vae":
            model = TextVAEModel(TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer)))
            model.tokenizer = tokenizer
            return model
        config = TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer))
        return TextVAEModel.from_decoder(TextLMModel.from_pretrained(lm_folder), config)

    objectives = {"vae_from_lm_aggressive": {"objective": "aggressive"}}
    for row in TEXT_ROWS:
        train_row(
            row, build, args, results, results_path, splits, TextCollator(),
            DATASET_NAMES["synthetic"], args.text_epochs, objectives.get(row, {}),
            baseline_folder=None if row == "lstm_lm" else lm_folder, baseline_class=TextLMModel,
        )  # fmt: skip


def run_images(args: argparse.Namespace, results: dict, results_path: str) -> None:
    splits = {s: load_images("digits", None, s) for s in ("train", "validation", "test")}
    splits["validation"] = splits["test"]  # the held-out images the table reports
    pixelcnn_folder = os.path.join(args.output_dir, "models", "pixelcnn")
    decoder = dict(image_size=8, decoder_channels=32, decoder_layers=4)

    def build(row: str):
        if row == "pixelcnn":
            return PixelCNNModel(PixelCNNConfig(**decoder))
        if row == "pixelcnn_vae":
            return DeltaVAEModel(DeltaVAEConfig(**decoder, encoder_type="resnet", latent_size=8))
        return DeltaVAEModel(
            DeltaVAEConfig(**decoder, prior="ar1", committed_rate=2.0, latent_size=2)
        )

    for row in IMAGE_ROWS:
        train_row(
            row, build, args, results, results_path, splits, ImageCollator(),
            IMAGE_DATASET_NAMES["digits"], args.image_epochs, {},
            baseline_folder=None if row == "pixelcnn" else pixelcnn_folder,
            baseline_class=PixelCNNModel,
        )  # fmt: skip


def train_row(
    row, build, args, results, results_path, splits, collator, dataset, epochs, training,
    baseline_folder, baseline_class,
) -> None:  # fmt: skip
    folder = os.path.join(args.output_dir, "models", row)
    if row in results and os.path.isfile(os.path.join(folder, "model.safetensors")):
        print(f"{row}: done before ({results[row]['train_seconds']:.0f} s), kept")
        return
    set_seed(args.seed)
    model = build(row)
    baseline = baseline_class.from_pretrained(baseline_folder) if baseline_folder else None
    print(f"{row}: training")
    start = time.time()
    train_and_record(
        model, settings(args, folder, epochs, **training), splits, collator, dataset, baseline
    )
    metrics = model.evaluation_results["validation"]["metrics"]
    results[row] = {
        "label": LABELS[row],
        **{k: metrics.get(k) for k in ("nll", "ppl", "bits_per_dim", "kl", "mi",
                                        "active_units", "baseline_nll", "delta_nll")},
        "exact": bool(metrics.get("exact")),
        "train_seconds": time.time() - start,
        "epochs": epochs,
        "train_examples": len(splits["train"]),
        "eval_examples": int(metrics["num_examples"]),
        "iw_samples": args.iw_samples,
    }  # fmt: skip
    write_results(results_path, results)
    print(f"{row}: {results[row]['train_seconds']:.0f} s, NLL {metrics['nll']:.3f}")


def render_table(results: dict) -> str:
    """The Markdown tables of every finished row, numbers from `results.json`."""

    def fmt(value, digits=2):
        return "–" if value is None else f"{value:.{digits}f}"

    lines = []
    for rows, unit, title in ((TEXT_ROWS, "ppl", "Synthetic text"),
                              (IMAGE_ROWS, "bits_per_dim", "8×8 digits")):  # fmt: skip
        done = [r for r in rows if r in results]
        if not done:
            continue
        first = results[done[0]]
        lines += [
            f"**{title}** ({first['train_examples']} training and {first['eval_examples']} "
            f"held-out examples, {first['epochs']:g} epochs, IW-NLL K = {first['iw_samples']})",
            "",
            f"| row | NLL | {'PPL' if unit == 'ppl' else 'bits/dim'} | ΔNLL vs decoder alone "
            "| KL | MI | AU | train s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in done:
            r = results[row]
            lines.append(
                f"| {r['label']} | {fmt(r['nll'])} | {fmt(r[unit], 3)} | "
                f"{'–' if r['exact'] else fmt(r['delta_nll'])} | "
                f"{'–' if r['exact'] else fmt(r['kl'])} | {'–' if r['exact'] else fmt(r['mi'])} | "
                f"{'–' if r['exact'] else int(r['active_units'])} | {r['train_seconds']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    torch.set_num_threads(min(2, torch.get_num_threads()))
    main()
