"""A family of released text VAEs along the rate axis, read from their cards' results files:
each model's rate, distortion and the nats its decoder reads from z, with what its
generation report measured, as a table and as Alemi et al. (2018)'s figure.

A folder's results must hold the decoder alone's NLL beside its own (`baseline_nll`,
written by a run or release with `--baseline`, or by `vaehub card --baseline`); its
generation report (`generation.json`) gives the reconstruction and interpolation columns
where there is one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from vaehub.models.results import MissingResultsError, read_generation_report, read_results
from vaehub.utils.formatting import fixed

# (key of a family row, column heading, digits)
FAMILY_COLUMNS = (
    ("rate", "rate (KL)", 2),
    ("nats_read", "nats read from z", 2),
    ("rate_unread", "KL paid unread", 2),
    ("distortion", "distortion (reconstruction)", 2),
    ("nll", "IW-NLL", 2),
    ("iw_samples", "K", 0),
    ("mi", "MI", 2),
    ("bleu", "reconstruction BLEU", 1),
    ("exact_match", "exact match", 2),
    ("endpoint_bleu", "endpoint BLEU", 1),
    ("distinct_sentences", "distinct on a 5-point path", 1),
    ("ended_fraction", "samples ending", 2),
    ("distinct_2", "distinct-2", 3),
    ("baseline_ppl", "samples' PPL under the LM", 1),
)


# How far the decoder-alone NLLs beside the rows may differ for one line to stand for them:
# the same baseline measured by two runs (float32 arithmetic on its bfloat16 weights, in
# other batches) agrees to a few thousandths of a nat.
BASELINE_AGREEMENT = 0.05


def family_row(folder: str | os.PathLike, split: str = "test") -> dict[str, Any]:
    """One model of the family: its `split` results and generation report as one row
    (`None` where a number was not measured)."""
    from vaehub.evaluation.metrics import latent_use

    name = os.path.basename(os.path.normpath(folder))
    record = read_results(folder).get(split)
    if record is None:
        raise MissingResultsError(f"{folder} holds no {split} results (eval_{split}.json).")
    metrics = record["metrics"]
    if "baseline_nll" not in metrics:
        raise MissingResultsError(
            f"{folder}'s {split} results hold no decoder-alone NLL to measure what its decoder "
            f"reads from z: write it with `vaehub card {folder} --baseline BASELINE_FOLDER`."
        )
    report = read_generation_report(folder) or {}
    reconstruction = report.get("reconstruction", {})
    interpolation = report.get("interpolation", {})
    samples = report.get("samples", {})
    use = latent_use(metrics["baseline_nll"], metrics["reconstruction"], metrics["kl"])
    return {
        "name": name,
        "examples": metrics.get("num_examples"),
        "rate": metrics["kl"],
        "distortion": metrics["reconstruction"],
        "baseline_nll": metrics["baseline_nll"],
        **use,
        "nll": metrics.get("nll"),
        "iw_samples": record.get("iw_samples", metrics.get("iw_samples")),
        "mi": metrics.get("mi"),
        "bleu": reconstruction.get("bleu"),
        "exact_match": reconstruction.get("exact_match"),
        "endpoint_bleu": interpolation.get("endpoint_bleu"),
        "distinct_sentences": interpolation.get("distinct_sentences"),
        "ended_fraction": samples.get("ended_fraction"),
        "distinct_2": samples.get("distinct_2"),
        "baseline_ppl": samples.get("baseline_ppl"),
    }


def family_rows(folders: Sequence[str | os.PathLike], split: str = "test") -> list[dict]:
    """The family's rows, by rate."""
    return sorted((family_row(f, split) for f in folders), key=lambda row: row["rate"])


def family_table(folders: Sequence[str | os.PathLike], split: str = "test") -> str:
    """The family as a Markdown table, one row a model, by rate (blank where a number was
    not measured)."""
    heads = ["checkpoint", "test sentences", *(head for _, head, _ in FAMILY_COLUMNS)]
    lines = [
        "| " + " | ".join(heads) + " |\n",
        "| --- |" + " ---: |" * (len(heads) - 1) + "\n",
    ]
    for row in family_rows(folders, split):
        cells = [f"`{row['name']}`", _cell(row["examples"], 0)]
        cells += [_cell(row[key], digits) for key, _, digits in FAMILY_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |\n")
    return "".join(lines)


def plot_family(
    folders: Sequence[str | os.PathLike], path: str | os.PathLike, split: str = "test"
) -> str:
    """The family's rate–distortion figure (`vaehub.evaluation.plots.plot_rate_distortion`),
    with the decoder alone's NLL the rows share; returns the path written.

    Raises:
        ValueError: the rows were measured beside decoders alone of different NLLs (other
            data or another baseline): one line cannot stand for them all.
    """
    from vaehub.evaluation.plots import plot_rate_distortion

    rows = family_rows(folders, split)
    if not rows:
        raise ValueError("plot_family needs at least one model folder.")
    baselines = sorted(row["baseline_nll"] for row in rows)
    if baselines[-1] - baselines[0] > BASELINE_AGREEMENT:
        raise ValueError(
            f"the family's rows sit beside decoder-alone NLLs {baselines}: measure them on "
            "the same data beside the same baseline."
        )
    return plot_rate_distortion(rows, rows[0]["baseline_nll"], path)


def _cell(value: Any, digits: int) -> str:
    return "" if value is None else fixed(value, digits)
