"""Figures people would rather look at than read."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curves(log_history: Sequence[dict], path: str | os.PathLike) -> str:
    """Reconstruction and KL (nats per sentence) against the training step, as a PNG.

    Args:
        log_history: `trainer.state.log_history`, whose training entries carry
            `reconstruction` and `kl`.
    Returns:
        the path written.
    """
    entries = [e for e in log_history if "reconstruction" in e and "kl" in e]
    if not entries:
        raise ValueError("log_history holds no entry with reconstruction and kl to plot.")
    steps = [e["step"] for e in entries]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(steps, [e["reconstruction"] for e in entries], color="tab:blue")
    left.set(title="reconstruction −log p(x|z)", xlabel="step", ylabel="nats per sentence")
    right.plot(steps, [e["kl"] for e in entries], color="tab:red")
    right.set(title="KL(q(z|x) ‖ p(z))", xlabel="step", ylabel="nats per sentence")
    right.set_ylim(bottom=0)
    for axis in (left, right):
        axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_posterior_mean_space(
    means: dict[str, tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]],
    path: str | os.PathLike,
) -> str:
    """He et al.'s posterior mean space: for each x, the mean of the amortised q(z|x)
    (x-axis) against the mean of the model posterior p(z|x) (y-axis), per latent dim.

    Args:
        means: one entry per trained model: `(inference means, model-posterior means)`,
            each `(examples, 2)`.
    Returns:
        the path written.
    """
    if not means:
        raise ValueError("nothing to plot: give at least one model's posterior means.")
    rows = len(means)
    figure, axes = plt.subplots(rows, 2, figsize=(8, 3.8 * rows), squeeze=False)
    for row, (name, (inference, model)) in enumerate(means.items()):
        for dim in range(2):
            axis = axes[row][dim]
            x = [point[dim] for point in inference]
            y = [point[dim] for point in model]
            bound = max(1.0, *map(abs, x), *map(abs, y)) * 1.05
            axis.plot([-bound, bound], [-bound, bound], color="0.6", lw=1, zorder=0)
            axis.scatter(x, y, s=8, alpha=0.6, color="tab:blue" if dim == 0 else "tab:orange")
            axis.set(
                xlim=(-bound, bound),
                ylim=(-bound, bound),
                aspect="equal",
                title=f"{name}: z{dim + 1}",
                xlabel="mean of q(z|x) (inference)",
                ylabel="mean of p(z|x) (model)",
            )
            axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_kl_per_dim(
    kl_per_dim: Sequence[float], path: str | os.PathLike, committed: float | None = None
) -> str:
    """KL(q‖p) of each latent dimension (nats per example) as bars, with the committed
    rate per dimension drawn across when there is one."""
    if not kl_per_dim:
        raise ValueError("nothing to plot: kl_per_dim is empty.")
    figure, axis = plt.subplots(figsize=(max(4, 0.3 * len(kl_per_dim) + 2), 3.2))
    axis.bar(range(1, len(kl_per_dim) + 1), kl_per_dim, color="tab:red")
    if committed:
        axis.axhline(committed, color="0.3", ls="--", lw=1, label="committed rate δ / d")
        axis.legend(loc="upper right")
    axis.set(xlabel="latent dimension", ylabel="KL (nats per example)", title="KL per dimension")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3, axis="y")
    return _save(figure, path)


# Colours of the posteriors drawn over the true one (filled) by plot_posterior_contours.
POSTERIOR_COLOURS = {"amortised": "tab:blue", "optimal": "tab:green", "flow": "tab:red"}
POSTERIOR_LABELS = {
    "amortised": "amortised q(z|x)",
    "optimal": "optimal Gaussian q*",
    "flow": "optimal planar flow",
}


def plot_posterior_contours(
    grids: Sequence[dict], path: str | os.PathLike, title: str | None = None
) -> str:
    """Cremer et al.'s figure for a 2-d latent, one panel per example: the true posterior
    p(z|x) filled, the amortised, optimal Gaussian and flow posteriors as contour lines.

    Args:
        grids: from `vaehub.evaluation.gaps.posterior_grids`.
    """
    if not grids:
        raise ValueError("nothing to plot: give at least one example's grids.")
    figure, axes = plt.subplots(1, len(grids), figsize=(3.3 * len(grids), 3.5), squeeze=False)
    for axis, grid in zip(axes[0], grids, strict=True):
        axis.contourf(grid["x"], grid["y"], grid["true"], levels=8, cmap="Greys")
        for name, colour in POSTERIOR_COLOURS.items():
            if name in grid:
                axis.contour(
                    grid["x"], grid["y"], grid[name], levels=4, colors=colour, linewidths=1
                )
        axis.set(xlabel="z1", ylabel="z2", aspect="equal")
    handles = [plt.Line2D([], [], color="0.5", lw=6, label="true p(z|x)")] + [
        plt.Line2D([], [], color=c, label=POSTERIOR_LABELS[n])
        for n, c in POSTERIOR_COLOURS.items()
        if n in grids[0]
    ]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    return _save(figure, path, layout=False)


def plot_collapse_table(table: dict, path: str | os.PathLike) -> str:
    """For each row with a latent, KL and MI (nats) against its ΔNLL to the exact
    baseline: collapsed rows sit at KL = MI = 0, the cures above them, and how far right
    a row lies is what its code costs in likelihood.

    Args:
        table: `vaehub.recipes.reproduce.collect`'s dict; each row's `kl`, `mi` and
            `delta_nll` hold a `mean` (and `sd` over seeds, drawn as error bars).
    Returns:
        the path written.
    """
    rows = [
        (row["label"], row)
        for row in table["rows"].values()
        if not row["exact"] and row["delta_nll"]["mean"] is not None
    ]
    if not rows:
        raise ValueError("the table holds no row with a latent and a ΔNLL to plot.")
    # Points are numbered and the legend names them: many rows sit together at KL ≈ 0,
    # where their full labels would print over each other.
    legend_rows = math.ceil(len(rows) / 3)
    height = 4.2 + 0.22 * legend_rows
    figure, axes = plt.subplots(1, 2, figsize=(11, height), sharex=True)
    for axis, key, title in ((axes[0], "kl", "KL(q(z|x) ‖ p(z))"),
                             (axes[1], "mi", "mutual information I(x; z)")):  # fmt: skip
        for index, (label, row) in enumerate(rows):
            colour = plt.cm.tab20(index % 20)
            axis.errorbar(
                row["delta_nll"]["mean"], row[key]["mean"],
                xerr=row["delta_nll"]["sd"], yerr=row[key]["sd"],
                fmt="o", color=colour, label=f"{index + 1}  {label}", capsize=3,
            )  # fmt: skip
            axis.annotate(str(index + 1), (row["delta_nll"]["mean"], row[key]["mean"]),
                          fontsize=7, xytext=(4, 3), textcoords="offset points")  # fmt: skip
        axis.axvline(0, color="grey", lw=0.8, ls="--")
        axis.set(title=title, xlabel="ΔNLL to the exact baseline (nats)", ylabel="nats")
        axis.set_ylim(bottom=min(0, axis.get_ylim()[0]))
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle(f"{table['dataset']}: {table['max_steps']} updates per row")
    figure.tight_layout(rect=(0, 0.22 * legend_rows / height + 0.02, 1, 1))
    return _save(figure, path, layout=False)


def _save(figure: plt.Figure, path: str | os.PathLike, layout: bool = True) -> str:
    if layout:
        figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return os.fspath(path)


def plot_rate_distortion(
    points: Sequence[dict], baseline_nll: float, path: str | os.PathLike
) -> str:
    """Alemi et al. (2018)'s rate–distortion plane for a family of models, as a PNG: rate
    R = KL against distortion D = E_q[−log p(x|z)] (left), with the decoder alone at
    (0, NLL_baseline) and the line D = NLL_baseline − R on which a model's bound equals
    the baseline's NLL; and reconstruction BLEU against rate (right).

    Args:
        points: one dict per model: `name`, `rate`, `distortion` (nats per example) and
            `bleu` (0–100, or `None` where it was not measured).
        baseline_nll: the decoder alone's exact NLL on the same data.
    Returns:
        the path written.
    """
    if not points:
        raise ValueError("nothing to plot: give at least one model's rate and distortion.")
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    top = max(max(p["rate"] for p in points), 1.0) * 1.1
    left.plot([0, top], [baseline_nll, baseline_nll - top], color="grey", linestyle="--",
              label="D = NLL(decoder alone) − R")  # fmt: skip
    left.scatter([0], [baseline_nll], marker="s", color="black", zorder=3,
                 label="decoder alone (R = 0)")  # fmt: skip
    for point in points:
        left.scatter(point["rate"], point["distortion"], zorder=3)
        left.annotate(point["name"], (point["rate"], point["distortion"]), fontsize=7,
                      xytext=(4, 4), textcoords="offset points")  # fmt: skip
    left.set(title="rate–distortion (Alemi et al. 2018)", xlabel="rate R = KL (nats)",
             ylabel="distortion D = E_q[−log p(x|z)] (nats)", xlim=(-1, top))  # fmt: skip
    left.legend(fontsize=7)
    measured = [p for p in points if p.get("bleu") is not None]
    for point in measured:
        right.scatter(point["rate"], point["bleu"], zorder=3)
        right.annotate(point["name"], (point["rate"], point["bleu"]), fontsize=7,
                       xytext=(4, 4), textcoords="offset points")  # fmt: skip
    right.set(title="reconstruction of posterior means", xlabel="rate R = KL (nats)",
              ylabel="corpus BLEU (0–100)", xlim=(-1, top), ylim=(0, 100))  # fmt: skip
    for axis in (left, right):
        axis.grid(alpha=0.3)
    return _save(figure, path)
