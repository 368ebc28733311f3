"""The validation curves of the family's stages (`examples/ptb_family.sh`): reconstruction
term, KL and MI against epochs, read from each stage's newest checkpoint
(`trainer_state.json`), beside the language model's exact validation NLL (the line the
reconstruction term must fall below for the decoder to read anything from z).

    python examples/family_curves.py RUNS_DIR LM_VALIDATION_JSON [--output examples/results/family]

LM_VALIDATION_JSON is `vaehub evaluate model_cards/ptb-lstm-lm --data PTB --split validation
--output ...`'s record. Writes `curves.json` (the numbers) and `curves.png` (the figure).
"""

from __future__ import annotations

import argparse
import json
import os

# The newest checkpoint's log, read as the flagships' curves read theirs (run as a script,
# this folder is on the path).
from flagship_curves import stage_history

STAGES = ("ae", "recon-90", "lm-grade", "cap-60", "cap-30", "cap-15")


def stage_curve(folder: str) -> list[dict[str, float]]:
    """The evaluations a stage logged while training, from its newest checkpoint."""
    history = stage_history(folder)
    return [
        {
            "epoch": entry["epoch"],
            "step": entry["step"],
            "loss": entry["eval_loss"],
            "reconstruction": entry["eval_reconstruction"],
            "kl": entry["eval_kl"],
            "mi": entry["eval_mi"],
            "active_units": entry["eval_active_units"],
        }
        for entry in history
        if "eval_loss" in entry
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs")
    parser.add_argument("lm_validation")
    parser.add_argument("--output", default="examples/results/family")
    args = parser.parse_args()
    with open(args.lm_validation, encoding="utf-8") as handle:
        lm = json.load(handle)["metrics"]
    curves = {
        name: curve
        for name in STAGES
        if (curve := stage_curve(os.path.join(args.runs, name)))
    }
    os.makedirs(args.output, exist_ok=True)
    record = {"lm_validation_nll": lm["nll"], "lm_examples": lm["num_examples"], "stages": curves}
    with open(os.path.join(args.output, "curves.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 3.8))
    offset = 0.0
    for name, curve in curves.items():
        # Stages that continue the autoencoder are drawn after its epochs.
        start = offset if name != "ae" else 0.0
        epochs = [start + point["epoch"] for point in curve]
        left.plot(epochs, [p["reconstruction"] for p in curve], marker="o", label=name)
        middle.plot(epochs, [p["kl"] for p in curve], marker="o", label=name)
        right.plot(epochs, [p["mi"] for p in curve], marker="o", label=name)
        if name == "ae":
            offset = curve[-1]["epoch"]
    left.axhline(lm["nll"], color="black", linestyle="--", label="ptb-lstm-lm (no z)")
    left.set(title="validation reconstruction E_q[−log p(x|z)]", xlabel="epoch",
             ylabel="nats per sentence")  # fmt: skip
    middle.set(title="validation KL", xlabel="epoch", ylabel="nats", yscale="log")
    right.set(title="validation MI", xlabel="epoch", ylabel="nats")
    for axis in (left, middle, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(os.path.join(args.output, "curves.png"), dpi=120)
    print(f"wrote curves.json and curves.png in {args.output}")


if __name__ == "__main__":
    main()
