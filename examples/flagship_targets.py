"""The flagship PTB checkpoints against the targets they were trained for, read from their
cards' results (`eval_test.json`, `generation.json` in `model_cards/`):

- `ptb-vae`, the best likelihood with a used latent: test IW-NLL (K = 500) at or below
  102.1 nats (the LSTM-VAE bound published with texar, PPL 105.5) and within 0.5 nats of
  `ptb-lstm-lm`'s exact NLL; KL ≥ 8, MI ≥ 4, at least 16 active units;
- `ptb-vae-high-rate`, for reconstruction and interpolation: KL ≥ 25 at an NLL within 3
  nats of the language model's, reconstruction BLEU ≥ 25;
- `ptb-vae`, also: its decoder reads at least 3 nats from z (the language model's exact NLL
  minus its reconstruction term, `docs/formulas.md`);
- `ptb-vae-recon`, the reconstruction flagship of the rate–distortion family
  (`docs/results/family.md`): reconstruction BLEU ≥ 40, its decoder reads ≥ 30 nats from z,
  5-step interpolations that start and end at decodings with BLEU ≥ 40 against their inputs
  and pass ≥ 4 distinct sentences, prior samples that end (≥ 95 %) with distinct-2 ≥ 0.3.

    python examples/flagship_targets.py [--model-cards model_cards]
        [--output examples/results/flagships/targets.json]

Prints the Markdown table that docs/results/flagships.md holds (a test checks it is this
one) and writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

LM, VAE, HIGH_RATE, RECON = "ptb-lstm-lm", "ptb-vae", "ptb-vae-high-rate", "ptb-vae-recon"

# (checkpoint, what, the measured number's key, comparison, target)
TARGETS = (
    (VAE, "test NLL, nats", "nll", "<=", 102.1),
    (VAE, "NLL above the language model's, nats", "nll_above_lm", "<=", 0.5),
    (VAE, "KL, nats", "kl", ">=", 8.0),
    (VAE, "MI, nats", "mi", ">=", 4.0),
    (VAE, "active units", "active_units", ">=", 16),
    (HIGH_RATE, "KL, nats", "kl", ">=", 25.0),
    (HIGH_RATE, "NLL above the language model's, nats", "nll_above_lm", "<=", 3.0),
    (HIGH_RATE, "reconstruction BLEU", "bleu", ">=", 25.0),
    (VAE, "nats the decoder reads from z", "nats_read", ">=", 3.0),
    (RECON, "reconstruction BLEU", "bleu", ">=", 40.0),
    (RECON, "nats the decoder reads from z", "nats_read", ">=", 30.0),
    (RECON, "interpolation start: BLEU against the first input", "start_bleu", ">=", 40.0),
    (RECON, "interpolation end: BLEU against the second input", "end_bleu", ">=", 40.0),
    (RECON, "distinct sentences on a 5-point path", "distinct_sentences", ">=", 4.0),
    (RECON, "prior samples that end", "ended_fraction", ">=", 0.95),
    (RECON, "distinct-2 of the samples", "distinct_2", ">=", 0.3),
)


def measured(model_cards: Path) -> dict[str, dict[str, Any]]:
    """Each flagship's numbers: its card's test metrics, its reconstruction BLEU, and its
    NLL minus the language model's (all from the results files of the card folders)."""

    def read(name: str, file: str) -> dict[str, Any]:
        path = model_cards / name / file
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    lm_nll = read(LM, "eval_test.json").get("metrics", {}).get("nll")
    numbers = {}
    for name in (VAE, HIGH_RATE, RECON):
        metrics = read(name, "eval_test.json").get("metrics", {})
        if not metrics:
            continue
        report = read(name, "generation.json")
        numbers[name] = {
            **{key: metrics.get(key) for key in ("nll", "kl", "mi", "active_units")},
            "iw_samples": metrics.get("iw_samples"),
            "nll_above_lm": None if lm_nll is None else metrics["nll"] - lm_nll,
            "nats_read": metrics.get("nats_read"),
            "bleu": report.get("reconstruction", {}).get("bleu"),
            **{key: report.get("interpolation", {}).get(key)
               for key in ("start_bleu", "end_bleu", "distinct_sentences")},
            **{key: report.get("samples", {}).get(key)
               for key in ("ended_fraction", "distinct_2")},
        }  # fmt: skip
    return numbers


def target_rows(model_cards: Path) -> list[dict[str, Any]]:
    """One row per target: the checkpoint, what is measured, the target, the value, met."""
    numbers = measured(model_cards)
    rows = []
    for name, what, key, comparison, target in TARGETS:
        value = numbers.get(name, {}).get(key)
        if value is None:
            met = None
        else:
            met = value <= target if comparison == "<=" else value >= target
        rows.append({"checkpoint": name, "what": what, "target": f"{comparison} {target:g}",
                     "value": value, "met": met})  # fmt: skip
    return rows


def targets_table(model_cards: Path) -> str:
    """The rows as the Markdown table of the flagships results page."""
    lines = ["| checkpoint | measured | target | value | met |",
             "| --- | --- | ---: | ---: | --- |"]  # fmt: skip
    for row in target_rows(model_cards):
        value = row["value"]
        if value is None:
            shown = "–"
        else:
            shown = f"{value:.0f}" if isinstance(value, int) else f"{value:.2f}"
        met = {True: "yes", False: "**no**", None: "not released"}[row["met"]]
        target = row["target"].replace("<=", "≤").replace(">=", "≥")
        lines.append(f"| `{row['checkpoint']}` | {row['what']} | {target} | {shown} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-cards", default="model_cards")
    parser.add_argument("--output", default="examples/results/flagships/targets.json")
    args = parser.parse_args()
    cards = Path(args.model_cards)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump({"measured": measured(cards), "targets": target_rows(cards)}, handle, indent=1)
    print(targets_table(cards))


if __name__ == "__main__":
    main()
