"""The validation curves of the flagship PTB run (`examples/ptb_flagships.sh`): NLL or
negative ELBO, KL and MI against epochs for every stage, read from each stage's newest
checkpoint (`trainer_state.json`), with the validation-MI checks that decided when
aggressive training stopped.

    python examples/flagship_curves.py RUNS_DIR [--output examples/results/flagships]

Writes `curves.json` (the numbers) and `curves.png` (the figure) into the output folder.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

STAGES = ("lstm-lm", "ae", "vae", "high-rate")
# Runs a stage tried before its recipe was settled, kept beside the stages as tried-<name>;
# they started from the language model's checkpoint of this epoch.
TRIED_PREFIX = "tried-"
TRIED_FROM_EPOCH = 6.0


def stage_history(folder: str) -> list[dict[str, float]]:
    """What a stage logged while training, from its newest checkpoint."""
    states = sorted(
        glob.glob(os.path.join(folder, "checkpoint-*", "trainer_state.json")),
        key=lambda path: int(path.split("checkpoint-")[1].split(os.sep)[0]),
    )
    if not states:
        return []
    with open(states[-1], encoding="utf-8") as handle:
        return json.load(handle)["log_history"]


def mi_checks(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The validation-MI checks of aggressive training: epoch, MI, still aggressive after."""
    return [
        {"epoch": e["epoch"], "mi": e["validation_mi"], "aggressive": e.get("aggressive", 0)}
        for e in history
        if "validation_mi" in e and "eval_loss" not in e
    ]


def stage_curve(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The evaluations a stage logged while training: epoch, loss, KL, MI."""
    return [
        {
            "epoch": entry["epoch"],
            "loss": entry["eval_loss"],
            "kl": entry.get("eval_kl", 0.0),
            "mi": entry.get("eval_mi", 0.0),
            "active_units": entry.get("eval_active_units", 0),
        }
        for entry in history
        if "eval_loss" in entry
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs")
    parser.add_argument("--output", default="examples/results/flagships")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tried = sorted(n for n in os.listdir(args.runs) if n.startswith(TRIED_PREFIX))
    histories = {s: stage_history(os.path.join(args.runs, s)) for s in (*STAGES, *tried)}
    curves = {s: stage_curve(h) for s, h in histories.items() if stage_curve(h)}
    checks = {s: mi_checks(h) for s, h in histories.items() if mi_checks(h)}
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "curves.json"), "w", encoding="utf-8") as handle:
        json.dump({**curves, "aggressive_mi_checks": checks}, handle, indent=1)
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    lm = curves.get("lstm-lm", [])
    axes[0].plot([p["epoch"] for p in lm], [p["loss"] for p in lm], marker="o", label="lstm-lm")
    axes[0].set_title("language model: validation NLL, nats")
    axes[0].set_xlabel("epochs")
    # The VAE stages on their own axis, from the LM they start from: the high-rate model
    # continues where the VAE ended (after the autoencoder, when there is one); each tried
    # run from its own start.
    end = {stage: curve[-1]["epoch"] for stage, curve in curves.items()}
    start = {"ae": 0.0, "vae": end.get("ae", 0.0),
             "high-rate": end.get("ae", 0.0) + end.get("vae", 0.0)}  # fmt: skip
    start.update({n: 0.0 for n in tried})
    for stage, curve in curves.items():
        if stage == "lstm-lm":
            continue
        epochs = [start[stage] + point["epoch"] for point in curve]
        for axis, key in zip(axes[1:], ("loss", "kl", "mi"), strict=True):
            axis.plot(epochs, [p[key] for p in curve], marker="o", label=stage)
    for stage, points in checks.items():
        axes[3].plot([start[stage] + p["epoch"] for p in points], [p["mi"] for p in points],
                     marker=".", linestyle=":", label=f"{stage}: aggressive MI checks")  # fmt: skip
    for axis, title in zip(
        axes[1:], ("VAEs: validation −ELBO, nats", "KL, nats", "MI, nats"), strict=True
    ):
        axis.set_title(title)
        axis.set_xlabel(f"epochs from the LM (tried runs: its epoch {TRIED_FROM_EPOCH:g})")
    for axis in axes:
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    axes[3].legend(fontsize=7)
    figure.tight_layout()
    path = os.path.join(args.output, "curves.png")
    figure.savefig(path, dpi=110)
    print(f"wrote {path} and curves.json")


if __name__ == "__main__":
    main()
