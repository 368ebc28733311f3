"""Speed and memory of the image δ-VAE in the MNIST setting, on the CPU.

    .venv/bin/python benchmarks/bench_delta_vae.py            # MNIST-sized, ~5 minutes
    .venv/bin/python benchmarks/bench_delta_vae.py --quick    # 8x8, seconds

Prints one table: training images/s (forward, backward, optimizer step) and the training
peak memory; IW-NLL images/s at K = 500, samples and images going through the decoder
together in chunks of `max_units` pixel values; and sampling images/s, where each of the
H·W decoder passes re-runs only the masked stack on the rows so far (the conditioning map
is computed once per latent). Peak memory is the growth of the process's resident high-
water mark during a phase (Linux `ru_maxrss`), measured in a fresh process per phase.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time

import torch

from vaehub import DeltaVAEConfig, DeltaVAEModel
from vaehub.evaluation.metrics import importance_weighted_log_likelihood


def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, size, size, generator=generator) > 0.7).float()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _phase(name: str, settings: dict, queue: multiprocessing.Queue) -> None:
    torch.set_num_threads(settings["threads"])
    torch.manual_seed(0)
    config = DeltaVAEConfig(
        image_size=settings["size"], prior="ar1", committed_rate=settings["committed_rate"]
    )
    model = DeltaVAEModel(config)
    baseline = _rss_mib()
    if name == "train":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        batch = _images(settings["batch"], settings["size"])
        model.train()

        def step() -> None:
            loss = model(batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step()
        start = time.perf_counter()
        for _ in range(settings["steps"]):
            step()
        rate = settings["steps"] * settings["batch"] / (time.perf_counter() - start)
    elif name == "iw":
        model.eval()
        batch = {"pixel_values": _images(settings["iw_images"], settings["size"])}
        importance_weighted_log_likelihood(model, batch, 2, settings["max_units"])
        start = time.perf_counter()
        importance_weighted_log_likelihood(
            model, batch, settings["iw_samples"], settings["max_units"]
        )
        rate = settings["iw_images"] / (time.perf_counter() - start)
    else:
        model.eval()
        start = time.perf_counter()
        model.generate(num_samples=settings["samples"], generator=torch.Generator().manual_seed(0))
        rate = settings["samples"] / (time.perf_counter() - start)
    queue.put((rate, _rss_mib() - baseline))


def measure(name: str, settings: dict) -> tuple[float, float]:
    """Run a phase in a fresh process; returns (images/s, peak memory growth in MiB)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_phase, args=(name, settings, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8×8 images, tiny counts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    settings = dict(
        size=28,
        batch=64,
        steps=10,
        iw_images=16,
        iw_samples=500,
        max_units=65536,
        samples=8,
        committed_rate=10.0,
        threads=args.threads,
    )
    if args.quick:
        settings.update(size=8, steps=3, iw_images=4, iw_samples=20, samples=2)
    config = DeltaVAEConfig(
        image_size=settings["size"], prior="ar1", committed_rate=settings["committed_rate"]
    )
    parameters = DeltaVAEModel(config).num_parameters()
    print(
        f"δ-VAE benchmark — {'quick' if args.quick else 'MNIST setting'}: "
        f"{settings['size']}×{settings['size']} binary images, AR(1) latents "
        f"({config.latent_size} channels per pixel), Gated PixelCNN {config.decoder_layers} "
        f"layers × {config.decoder_channels} channels, {parameters:,} parameters; "
        f"torch {torch.__version__}, {args.threads} threads"
    )
    rows = {}
    for name, label in (
        ("train", f"training, batch {settings['batch']}"),
        ("iw", f"IW-NLL, K = {settings['iw_samples']}"),
        ("sample", "sampling (one pass per pixel)"),
    ):
        rows[name] = measure(name, settings)
        print(f"  {label:<34}{rows[name][0]:>10.2f} images/s   peak +{rows[name][1]:,.0f} MiB")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "settings": settings,
                    "images_per_second": {k: v[0] for k, v in rows.items()},
                    "peak_mib": {k: v[1] for k, v in rows.items()},
                },
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
