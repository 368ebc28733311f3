"""The δ-VAE on binarized MNIST: the same Gated PixelCNN decoder with a standard prior (He
et al.'s PixelCNN-VAE baseline) and with committed-rate AR(1) latents.

    python examples/delta_vae_mnist.py --data-dir ../shared/data/mnist --output-dir mnist-dvae

Without `--data-dir` it runs on scikit-learn's bundled 8×8 digits, no files needed. Each
model folder gets `eval_test.json` and `training.json` (for `vaehub card`), and
`samples.png`, a grid of images generated from prior samples.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from transformers import set_seed

from vaehub import DeltaVAEConfig, DeltaVAEModel, hub, save_image_grid
from vaehub.data.images import ImageCollator, image_batches, load_digits, load_mnist
from vaehub.evaluation.metrics import evaluate_vae
from vaehub.training.arguments import VAETrainingArguments
from vaehub.training.trainer import VAETrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST's folder; digits when absent")
    parser.add_argument("--output-dir", default="mnist-dvae")
    parser.add_argument("--priors", nargs="+", default=["standard", "ar1"])
    parser.add_argument(
        "--committed-rate", type=float, default=10.0, help="δ in nats per image for the AR(1) prior"
    )
    parser.add_argument("--latent-size", type=int, default=2, help="latent channels per pixel")
    parser.add_argument("--train-images", type=int, default=20000)
    parser.add_argument("--test-images", type=int, default=500)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--iw-samples", type=int, default=50)
    parser.add_argument("--samples", type=int, default=16, help="images in samples.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()

    if args.data_dir:
        train, test = load_mnist(args.data_dir, "train"), load_mnist(args.data_dir, "test")
        dataset = {"name": "MNIST, dynamically binarized", "type": "mnist"}
    else:
        train, test = load_digits("train"), load_digits("test")
        dataset = {"name": "scikit-learn digits 8x8", "type": "custom"}
    train = train.select(range(min(args.train_images, len(train))))
    test = test.select(range(min(args.test_images, len(test))))
    validation = test.select(range(min(200, len(test))))
    size = int(train[0]["pixel_values"].shape[-1])
    print(f"{dataset['name']}: {len(train)} training, {len(test)} test images of {size}×{size}.")

    table = {}
    for prior in args.priors:
        set_seed(args.seed)
        family = {"prior": prior}
        if prior == "ar1":
            family["committed_rate"] = args.committed_rate
        config = DeltaVAEConfig(image_size=size, latent_size=args.latent_size, **family)
        model = DeltaVAEModel(config)
        folder = os.path.join(args.output_dir, prior)
        training_args = VAETrainingArguments(
            output_dir=folder,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_grad_norm=5.0,
            logging_steps=25,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=args.seed,
            disable_tqdm=True,
        )
        trainer = VAETrainer(
            model=model,
            args=training_args,
            train_dataset=train,
            eval_dataset=validation,
            data_collator=ImageCollator(),
        )
        start = time.time()
        trainer.train()
        seconds = time.time() - start
        torch.manual_seed(args.seed)
        metrics = evaluate_vae(
            model,
            image_batches(test, 100, seed=args.seed),
            iw_samples=args.iw_samples,
            show_progress=True,
        )
        metrics.update(committed_rate=model.committed_rate, train_seconds=seconds)
        model.evaluation_results["test"] = {
            "split": "test",
            "iw_samples": args.iw_samples,
            "metrics": metrics,
            "dataset": dataset,
        }
        model.training_summary = hub.training_summary(training_args, trainer.state, dataset["name"])
        model.save_pretrained(folder)
        generator = torch.Generator().manual_seed(0)
        images = model.generate(num_samples=args.samples, generator=generator)
        save_image_grid(images, os.path.join(folder, "samples.png"))
        table[prior] = metrics
        print(
            f"{prior}: δ {model.committed_rate:.2f}, KL {metrics['kl']:.2f}, "
            f"NLL {metrics['nll']:.2f} ({metrics['bits_per_dim']:.4f} bits/dim), {seconds:.0f} s"
        )

    print(
        f"\n{dataset['name']} test ({len(test)} images), NLL importance-weighted with "
        f"K={args.iw_samples}:"
    )
    print(
        f"  {'prior':<10}{'δ':>7}{'KL':>8}{'MI':>8}{'AU':>6}{'NLL':>9}{'bits/dim':>10}"
        f"{'train s':>9}"
    )
    for prior, m in table.items():
        print(
            f"  {prior:<10}{m['committed_rate']:>7.2f}{m['kl']:>8.2f}{m['mi']:>8.2f}"
            f"{m['active_units']:>6d}{m['nll']:>9.2f}{m['bits_per_dim']:>10.4f}"
            f"{m['train_seconds']:>9.0f}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {p: {k: v for k, v in m.items() if k != "au_variance"} for p, m in table.items()},
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
