"""Figures people would rather look at than read."""

from __future__ import annotations

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
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return os.fspath(path)
