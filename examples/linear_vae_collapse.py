"""Lucas et al. (2019), "Don't blame the ELBO!", on MNIST: the linear VAE finds the pPCA
maximum-likelihood solution, and posterior collapse follows the observation noise σ².

    python examples/linear_vae_collapse.py            # ≈ 15 min on 2 CPU cores
    python examples/linear_vae_collapse.py --quick    # a smoke run, seconds
    python examples/linear_vae_collapse.py --threads 1   # on a machine busy with other work

Data: the first `--subset` MNIST training images, flattened to 784 values in [0, 1]
(`vaehub.data.images.load_mnist`); every number is measured on those same images, the data whose
sample covariance defines the pPCA solution.

(a) `ppca_vs_vae`: a linear VAE (k = `--latent-size`, σ² learned) trained with
    `VAETrainer` (objective elbo, its closed-form ELBO) against the closed-form pPCA
    maximum-likelihood solution: over training, the ELBO and the exact log p(x) of the
    VAE's decoder approach the pPCA optimum, and the column space of W aligns with the
    top-k principal subspace (mean cosine of the principal angles) → `ppca_vs_vae.png`.
(b) `sweep`: for σ² fixed on a grid placed in the widest gaps of the spectrum (and one
    above λ₁), the linear VAE's collapsed dimensions (KL per dimension < 0.01 nats)
    against #{i ≤ k: λ_i ≤ σ²}, and the same for a deep VAE (`--deep-hidden`, MLP encoder
    and decoder, the same N(f(z), σ²I) decoder) → `collapse.png`.

Each finished part (the training of (a), each σ² of each sweep) is written to
`results.json` at once and skipped by the next run with the same settings, so an
interrupted run resumes. `table.md` summarises both parts.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import TrainerCallback, set_seed  # noqa: E402

from vaehub.data.images import load_mnist  # noqa: E402
from vaehub.evaluation.metrics import AU_THRESHOLD, evaluate_vae  # noqa: E402
from vaehub.models.linear.modeling_linear_vae import (  # noqa: E402
    LinearVAEConfig,
    LinearVAEModel,
    VectorCollator,
)
from vaehub.models.linear.ppca import collapsed_dimensions_expected, ppca_log_marginal, ppca_mle  # noqa: E402
from vaehub.training.arguments import VAETrainingArguments  # noqa: E402
from vaehub.training.trainer import VAETrainer  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
# KL per latent dimension (nats) below which a dimension counts as collapsed; the same
# 0.01 as the active-units threshold.
COLLAPSE_THRESHOLD = AU_THRESHOLD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--output-dir", default=None, help="default examples/results/linear_vae")
    parser.add_argument("--subset", type=int, default=5000, help="MNIST training images used")
    parser.add_argument("--latent-size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=60, help="epochs of part (a)")
    parser.add_argument("--sweep-epochs", type=float, default=30, help="epochs per σ² in (b)")
    parser.add_argument("--grid-points", type=int, default=6, help="σ² values in (b)")
    parser.add_argument("--deep-hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's own); these matrices are tiny, so on a "
        "machine busy with other work 1 thread is much faster than several",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.subset, args.epochs, args.sweep_epochs = 500, 20, 15
        args.grid_points, args.deep_hidden, args.latent_size = 2, [32], 4
    output = Path(args.output_dir or "examples/results/linear_vae" + ("/quick" * args.quick))
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.json"
    settings = {k: getattr(args, k) for k in (
        "subset", "latent_size", "epochs", "sweep_epochs", "grid_points", "deep_hidden",
        "batch_size", "seed",
    )}  # fmt: skip
    results = read_results(results_path, settings)

    x = load_images(args.data_dir, args.subset)
    x64 = x.double()
    spectrum = ppca_mle(x64, args.latent_size).eigenvalues
    grid = sigma2_grid(spectrum, args.latent_size, args.grid_points)
    parts = ["ppca_vs_vae"] + [f"{kind}/{s:.6g}" for kind in ("linear", "deep") for s in grid]
    for index, part in enumerate(parts, start=1):
        prefix = f"[{index}/{len(parts)}] {part}"
        if part in results["parts"]:
            print(f"{prefix}: done before, kept")
            continue
        start = time.time()
        if part == "ppca_vs_vae":
            record = run_ppca_vs_vae(x, args)
            summary = (
                f"ELBO {record['final_elbo']:.1f}, log p(x) {record['final_log_px']:.1f}, "
                f"pPCA {record['ppca_log_px']:.1f} nats; alignment {record['final_alignment']:.3f}"
            )
        else:
            kind, sigma2 = part.split("/")[0], float(part.split("/")[1])
            record = run_collapse(x, args, kind, sigma2, spectrum)
            summary = (
                f"σ²={sigma2:.4g}: {record['collapsed']} collapsed of {args.latent_size} "
                f"(pPCA: {record['expected']})"
            )
        record["seconds"] = time.time() - start
        results["parts"][part] = record
        write_results(results_path, results)
        print(f"{prefix}: {summary} ({record['seconds']:.0f} s)", flush=True)

    plot_ppca_vs_vae(results["parts"]["ppca_vs_vae"], output / "ppca_vs_vae.png")
    plot_collapse(results["parts"], grid, spectrum, args.latent_size, output / "collapse.png")
    table = render_table(results, grid)
    (output / "table.md").write_text(table, encoding="utf-8")
    print(table)


# --- data and the σ² grid -----------------------------------------------------------------


def load_images(data_dir: str, subset: int) -> torch.Tensor:
    """The first `subset` MNIST training images, `(subset, 784)` float32 in [0, 1]."""
    if subset < 2:
        raise ValueError(f"--subset must be at least 2, got {subset}.")
    images = load_mnist(data_dir, "train").with_format("numpy")
    pixels = images.select(range(min(subset, len(images))))["pixel_values"]
    return torch.tensor(np.array(pixels), dtype=torch.float32).flatten(1)


def sigma2_grid(eigenvalues: torch.Tensor, latent_size: int, points: int) -> list[float]:
    """σ² values in the widest relative gaps λ_i/λ_{i+1} (i ≤ k) of the spectrum, at their
    geometric middle, plus 1.5·λ₁ (every dimension collapses): no grid point sits close to
    an eigenvalue, where the optimum is degenerate and training settles slowly."""
    top = eigenvalues[: latent_size + 1].tolist()
    gaps = sorted(range(latent_size), key=lambda i: top[i] / top[i + 1], reverse=True)
    chosen = [math.sqrt(top[i] * top[i + 1]) for i in gaps[: max(points - 1, 1)]]
    return sorted(chosen + [1.5 * top[0]])


# --- training -----------------------------------------------------------------------------


def training_arguments(args: argparse.Namespace, folder: str, epochs: float, lr: float):
    return VAETrainingArguments(
        output_dir=folder, objective="elbo", num_train_epochs=epochs,
        per_device_train_batch_size=args.batch_size, learning_rate=lr,
        lr_scheduler_type="linear", save_strategy="no", report_to="none", use_cpu=True,
        disable_tqdm=True, logging_steps=10_000, seed=args.seed, per_device_eval_batch_size=500,
    )  # fmt: skip


class ProbeCallback(TrainerCallback):
    """Every `every` steps (and at the start and the end): the mean closed-form ELBO, the
    exact log p(x) and the alignment of span(W) with the principal subspace, in float64."""

    def __init__(self, model: LinearVAEModel, x64: torch.Tensor, basis: torch.Tensor, every: int):
        self.model, self.x64, self.basis, self.every = model, x64, basis, every
        self.history: list[dict[str, float]] = []

    def probe(self, step: int) -> None:
        copy64 = copy.deepcopy(self.model).double().eval()
        with torch.no_grad():
            self.history.append({
                "step": step,
                "elbo": copy64.elbo(self.x64).mean().item(),
                "log_px": copy64.log_marginal(self.x64).mean().item(),
                "sigma2": copy64.observation_variance.item(),
                "alignment": subspace_alignment(copy64.decoder_weight, self.basis),
            })  # fmt: skip

    def on_train_begin(self, args, state, control, **kwargs):
        self.probe(0)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.probe(state.global_step)


def principal_cosines(weight: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Cosines `(k,)` of the principal angles between span(W) `(D, k)` and the span of the
    orthonormal `basis` `(D, k)`, largest first."""
    q, _ = torch.linalg.qr(weight)
    return torch.linalg.svdvals(basis.T @ q).clamp(max=1)


def subspace_alignment(weight: torch.Tensor, basis: torch.Tensor) -> float:
    """Mean cosine of the principal angles: 1 when the two subspaces are the same. Where
    λ_k ≈ λ_{k+1} the k-th direction is barely determined by the likelihood, and its
    angle stays wide without costing log p(x) much."""
    return principal_cosines(weight, basis).mean().item()


def train(
    model: LinearVAEModel,
    x: torch.Tensor,
    args: argparse.Namespace,
    epochs: float,
    lr: float,
    callbacks: tuple[TrainerCallback, ...] = (),
) -> None:
    """`VAETrainer` with the ELBO on `x` `(n, D)`; nothing is saved (no checkpoints)."""
    data = Dataset.from_dict({"inputs": x.numpy()})
    with tempfile.TemporaryDirectory(prefix="linear-vae-") as folder:
        trainer = VAETrainer(
            model=model, args=training_arguments(args, folder, epochs, lr), train_dataset=data,
            data_collator=VectorCollator(), callbacks=list(callbacks),
        )  # fmt: skip
        trainer.train()


def run_ppca_vs_vae(x: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    """Part (a): train a linear VAE with σ² learned and follow it towards pPCA's optimum."""
    x64, k = x.double(), args.latent_size
    solution = ppca_mle(x64, k)
    ppca_log_px = ppca_log_marginal(x64, solution.weight, solution.mean, solution.sigma2)
    set_seed(args.seed)
    config = LinearVAEConfig(
        input_size=x.shape[1], latent_size=k, observation_variance=0.1,
        learn_observation_variance=True,
    )  # fmt: skip
    model = LinearVAEModel(config)
    steps = math.ceil(len(x) / args.batch_size) * args.epochs
    probe = ProbeCallback(model, x64, solution.eigenvectors[:, :k], max(1, round(steps / 60)))
    train(model, x, args, args.epochs, 1e-2, (probe,))
    final = probe.history[-1]
    return {
        "history": probe.history,
        "ppca_log_px": ppca_log_px.mean().item(),
        "ppca_sigma2": solution.sigma2,
        "final_elbo": final["elbo"],
        "final_log_px": final["log_px"],
        "final_sigma2": final["sigma2"],
        "final_alignment": final["alignment"],
        "final_principal_cosines": principal_cosines(
            model.decoder_weight.detach().double(), solution.eigenvectors[:, :k]
        ).tolist(),
        "eigenvalues": solution.eigenvalues[: k + 1].tolist(),
    }


def run_collapse(
    x: torch.Tensor,
    args: argparse.Namespace,
    kind: str,
    sigma2: float,
    spectrum: torch.Tensor,
) -> dict[str, Any]:
    """Part (b), one point: train at fixed σ², count the dimensions whose KL is < 0.01."""
    set_seed(args.seed)
    hidden = [] if kind == "linear" else list(args.deep_hidden)
    config = LinearVAEConfig(
        input_size=x.shape[1], latent_size=args.latent_size, observation_variance=sigma2,
        hidden_sizes=hidden,
    )  # fmt: skip
    model = LinearVAEModel(config)
    lr = 1e-2 if kind == "linear" else 1e-3
    train(model, x, args, args.sweep_epochs, lr)
    batches = [{"inputs": x[i : i + 500]} for i in range(0, len(x), 500)]
    torch.manual_seed(args.seed)
    metrics = evaluate_vae(model, batches)
    kl_per_dim = metrics["kl_per_dim"]
    return {
        "kind": kind,
        "sigma2": sigma2,
        "hidden_sizes": hidden,
        "expected": collapsed_dimensions_expected(spectrum, args.latent_size, sigma2),
        "collapsed": sum(value < COLLAPSE_THRESHOLD for value in kl_per_dim),
        "kl_per_dim": kl_per_dim,
        "neg_elbo": metrics["neg_elbo"],
        "active_units": metrics["active_units"],
    }


# --- results, plots and the table ---------------------------------------------------------


def read_results(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    if path.is_file():
        results = json.loads(path.read_text(encoding="utf-8"))
        if results.get("settings") == settings:
            return results
        print(f"{path} holds results for other settings; starting afresh")
    return {"settings": settings, "parts": {}}


def write_results(path: Path, results: dict[str, Any]) -> None:
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(results, indent=2), encoding="utf-8")
    os.replace(partial, path)  # an interrupted write never leaves half a file


def plot_ppca_vs_vae(record: dict[str, Any], path: Path) -> None:
    history = record["history"]
    steps = [h["step"] for h in history]
    best = record["ppca_log_px"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    # Distances to the pPCA optimum on a log axis: the approach spans orders of magnitude.
    for key, label in (("elbo", "ELBO"), ("log_px", "exact log p(x)")):
        gaps = [max(best - h[key], 1e-6) for h in history]
        left.plot(steps, gaps, label=f"pPCA log p(x) − {label}")
    left.set(yscale="log", xlabel="training step", ylabel="nats per image",
             title="linear VAE → pPCA maximum likelihood")  # fmt: skip
    left.legend()
    left.grid(alpha=0.3)
    right.plot(steps, [h["alignment"] for h in history], color="tab:green")
    right.set(xlabel="training step", ylabel="mean cos(principal angles)", ylim=(0, 1.02),
              title="span(W) vs top-k principal subspace")  # fmt: skip
    right.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_collapse(
    parts: dict[str, Any], grid: list[float], spectrum: torch.Tensor, k: int, path: Path
) -> None:
    figure, axis = plt.subplots(figsize=(6, 4))
    # The pPCA count as the step function of σ² it is, not only at the grid points.
    fine = np.geomspace(min(grid) / 1.5, max(grid) * 1.2, 400)
    counts = [collapsed_dimensions_expected(spectrum, k, float(s)) for s in fine]
    axis.plot(fine, counts, color="black", drawstyle="steps-post",
              label="pPCA: #{i ≤ k: λ_i ≤ σ²}")  # fmt: skip
    for kind, marker in (("linear", "o"), ("deep", "s")):
        points = [parts[f"{kind}/{s:.6g}"]["collapsed"] for s in grid]
        axis.plot(grid, points, marker, label=f"{kind} VAE", alpha=0.8, markersize=8)
    axis.set(xscale="log", xlabel="observation noise σ²", ylabel=f"collapsed of k = {k}",
             title="collapsed dimensions (KL per dim < 0.01 nats)")  # fmt: skip
    axis.yaxis.get_major_locator().set_params(integer=True)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def render_table(results: dict[str, Any], grid: list[float]) -> str:
    parts, s = results["parts"], results["settings"]
    a = parts["ppca_vs_vae"]
    lines = [
        "## (a) linear VAE vs pPCA (σ² learned)",
        "",
        "| | log p(x) | ELBO | σ² | alignment |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| pPCA (closed form) | {a['ppca_log_px']:.2f} | {a['ppca_log_px']:.2f} "
        f"| {a['ppca_sigma2']:.4g} | 1 |",
        f"| linear VAE (trained) | {a['final_log_px']:.2f} | {a['final_elbo']:.2f} "
        f"| {a['final_sigma2']:.4g} | {a['final_alignment']:.4f} |",
        "",
        "## (b) collapsed dimensions vs σ²",
        "",
        "| σ² | pPCA #{λ_i ≤ σ²} | linear VAE | deep VAE |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for sigma2 in grid:
        linear, deep = parts[f"linear/{sigma2:.6g}"], parts[f"deep/{sigma2:.6g}"]
        lines.append(
            f"| {sigma2:.4g} | {linear['expected']} | {linear['collapsed']} | {deep['collapsed']} |"
        )
    lines += [
        "",
        f"MNIST, first {s['subset']} training images flattened to [0, 1]; k = {s['latent_size']};"
        f" nats per image, measured on those images. (a): {s['epochs']:g} epochs; (b): "
        f"{s['sweep_epochs']:g} epochs per σ², deep VAE hidden sizes {s['deep_hidden']}. "
        f"VAETrainer, objective elbo, Adam, batch {s['batch_size']}, seed {s['seed']}. A "
        "dimension is collapsed when its KL is below 0.01 nats.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
