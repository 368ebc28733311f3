"""The validation curves of the flagship PTB run (`examples/ptb_flagships.sh`): NLL or
negative ELBO, KL and MI against epochs for every stage, read from each stage's newest
checkpoint (`trainer_state.json`).

    python examples/flagship_curves.py RUNS_DIR [--output examples/results/flagships]

Writes `curves.json` (the numbers) and `curves.png` (the figure) into the output folder.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

STAGES = ("lstm-lm", "ae", "vae", "high-rate")
# Runs a stage tried before its recipe was settled, kept beside the stages as tried-<name>.
TRIED_PREFIX = "tried-"


def stage_curve(folder: str) -> list[dict[str, float]]:
    """The evaluations a stage logged while training: epoch, loss, KL, MI."""
    states = sorted(
        glob.glob(os.path.join(folder, "checkpoint-*", "trainer_state.json")),
        key=lambda path: int(path.split("checkpoint-")[1].split(os.sep)[0]),
    )
    if not states:
        return []
    with open(states[-1], encoding="utf-8") as handle:
        history = json.load(handle)["log_history"]
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
    curves = {s: stage_curve(os.path.join(args.runs, s)) for s in (*STAGES, *tried)}
    curves = {s: c for s, c in curves.items() if c}
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "curves.json"), "w", encoding="utf-8") as handle:
        json.dump(curves, handle, indent=1)
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    # Each stage continues on the epoch axis where the one it starts from ended: the
    # autoencoder from the LM, both VAEs from the autoencoder.
    end = {stage: curve[-1]["epoch"] for stage, curve in curves.items()}
    lm_end = end.get("lstm-lm", 0.0)
    after_ae = lm_end + end.get("ae", 0.0)
    start = {"lstm-lm": 0.0, "ae": lm_end, "vae": after_ae, "high-rate": after_ae}
    # A tried run started from the autoencoder when its name says so, else from the LM.
    start.update({n: after_ae if "-ae-" in n else lm_end for n in tried})
    for stage, curve in curves.items():
        epochs = [start[stage] + point["epoch"] for point in curve]
        for axis, key in zip(axes, ("loss", "kl", "mi"), strict=True):
            axis.plot(epochs, [p[key] for p in curve], marker="o", label=stage)
    for axis, title in zip(
        axes, ("validation NLL (LM) / −ELBO (VAE), nats", "KL, nats", "MI, nats"), strict=True
    ):
        axis.set_title(title)
        axis.set_xlabel("epochs of the whole pipeline")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    path = os.path.join(args.output, "curves.png")
    figure.savefig(path, dpi=110)
    print(f"wrote {path} and curves.json")


if __name__ == "__main__":
    main()
