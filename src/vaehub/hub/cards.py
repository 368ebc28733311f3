"""Model cards carrying measured results, never numbers typed by hand.

`render_model_card` turns a folder's results (`vaehub.models.results`: `eval_<split>.json`,
`training.json`, `generation.json`) and its verification slice into a
`huggingface_hub.ModelCard` whose `model-index` holds the measured numbers, and refuses,
naming them, when results it needs are missing. What each model type's card shows (task,
tags, metrics) comes from the registry, `vaehub.models.auto`. `checkpoint_table` is the
summary table of released checkpoints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import resources
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from vaehub.latent.refinement import changed_refinement
from vaehub.models.auto import MODEL_TYPES, model_types
from vaehub.models.results import (
    TRAINING_FILE,
    MissingResultsError,
    check_finite_metrics,
    read_generation_report,
    read_results,
)
from vaehub.utils.formatting import COUNTS, _format, _short, fixed
from vaehub.utils.version import __version__

LIBRARY_NAME = "vaehub"


LICENSE = "apache-2.0"


VERIFICATION_TEMPLATE = "verification_section.md"  # appended when a folder has a slice


ABOUT_FILE = "about.md"  # what a released checkpoint is for, its recipe and command


SAMPLES_FILE = "samples.png"  # a grid of generated images, shown in the card when present


CONFIG_NOT_IN_CARD = (
    "architectures", "transformers_version", "dtype", "_name_or_path", "use_cache"
)  # fmt: skip


# What a card needs, per model type: (key in eval metrics, metric type, display name).
CARD_METRICS: dict[str, tuple[tuple[str, str, str], ...]] = {
    name: declared.card_metrics for name, declared in MODEL_TYPES.items()
}


# Reported when the results hold them: the decoder alone beside a VAE (`--baseline`).
BASELINE_METRICS = (
    ("baseline_nll", "nll", "decoder-alone NLL (exact)"),
    ("delta_nll", "delta_nll", "ΔNLL vs decoder alone"),
    ("nats_read", "nats_read", "nats the decoder reads from z"),
    ("rate_unread", "rate_unread", "KL paid but not read (KL − nats read)"),
)


# The baseline rows a verification slice reports (measured beside the decoder alone): not
# the baseline's own NLL, whose metric type `nll` is the VAE's on the same slice.
SLICE_BASELINE_METRICS = tuple(row for row in BASELINE_METRICS if row[1] != "nll")


# Reported when the results hold it: the exact −log p(x) of a model that has one (the linear
# VAE), beside its IW-NLL. Its metric type is its key, so `vaehub verify` checks it too.
EXACT_METRICS = (("exact_nll", "exact_nll", "exact NLL (nats/example)"),)


# The task each model's evaluation results are filed under in the card's model-index.
TASKS = {name: declared.card_task for name, declared in MODEL_TYPES.items()}
TAGS = {name: list(declared.card_tags) for name, declared in MODEL_TYPES.items()}
NO_LATENT = model_types(has_latent=False)  # the exact baselines: no KL, no objective to name


# What weighs or refines the KL: nothing a model without a latent was trained with.
_LATENT_ONLY_PREFIXES = (
    "beta", "anneal_", "free_bits", "aggressive_", "sa_vae_", "objective", "capacity",
)  # fmt: skip


def card_training(training: dict[str, Any], has_latent: bool = True) -> dict[str, Any]:
    """The rows of `training.json` that describe this run, for the card's Training table.

    `training.json` keeps every setting; the card leaves out those the run did not use
    (the aggressive loop's settings under `elbo`, an annealing schedule's under a constant
    β, `num_train_epochs` when `max_steps` decided), which would read as part of the recipe.
    """
    objective = training.get("objective")
    schedule = training.get("beta_schedule", "constant")

    def used(key: str, value: Any) -> bool:
        if value is None:
            return False
        if not has_latent and key.startswith(_LATENT_ONLY_PREFIXES):
            return False
        if key.startswith("aggressive_"):
            return objective == "aggressive"
        if key.startswith("sa_vae_"):
            return objective == "sa_vae"
        if key.startswith("capacity"):
            return objective == "capacity"
        if key.startswith("anneal_"):
            if schedule == "constant":
                return False
            return schedule == "cyclical" or key not in ("anneal_cycles", "anneal_ramp_ratio")
        if key == "free_bits":
            return value > 0
        if key == "num_train_epochs":
            return not training.get("max_steps", -1) > 0
        return True

    return {key: value for key, value in training.items() if used(key, value)}


def render_model_card(
    folder: str | os.PathLike, repo_id: str | None = None, split: str | None = None
) -> ModelCard:
    """The model card of a saved vaehub model, from its config, results and training.

    Args:
        folder: a folder written by `save_pretrained` (plus `vaehub evaluate`/`train`).
        repo_id: the Hub name the usage snippet loads; the folder path when `None`.
        split: which evaluation to report; `test` when there is one, else the only one.
    Raises:
        MissingResultsError: no evaluation, or one lacking metrics the card reports;
            the message names what is missing and how to measure it.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"{folder} is not a folder: give the folder a vaehub model was saved to.")
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise ValueError(f"{folder} holds no config.json: not a saved vaehub model.")
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    model_type = config.get("model_type")
    if model_type not in CARD_METRICS:
        raise ValueError(
            f"{config_path} describes a {model_type!r} model; vaehub writes cards "
            f"for {', '.join(map(repr, CARD_METRICS))}."
        )
    results = read_results(folder)
    how_to = _how_to_measure(folder)
    split = reported_split(folder, results, split)
    record = results[split]
    metrics = record.get("metrics", {})
    check_finite_metrics(metrics, f"the {split} results in {folder}")
    wanted = CARD_METRICS[model_type]
    missing = [label for key, _, label in wanted if metrics.get(key) is None]
    if missing:
        raise MissingResultsError(
            f"the {split} results in {folder} lack {', '.join(missing)}; {how_to}"
            + (
                " with --iw-samples > 0"
                if any(
                    k in ("nll", "ppl", "bits_per_dim") and metrics.get(k) is None
                    for k, _, _ in wanted
                )
                else ""
            )
            + "."
        )
    wanted = wanted + tuple(
        row for row in EXACT_METRICS + BASELINE_METRICS if metrics.get(row[0]) is not None
    )
    training = {}
    training_path = os.path.join(folder, TRAINING_FILE)
    if os.path.isfile(training_path):
        with open(training_path, encoding="utf-8") as handle:
            training = json.load(handle)

    dataset = record.get("dataset") or {}
    dataset_type = dataset.get("type", "custom")
    dataset_name = dataset.get("name", dataset_type)
    name = repo_id.split("/")[-1] if repo_id else os.path.basename(os.path.abspath(folder))
    dataset_fields = {
        "task_type": TASKS[model_type],
        "dataset_type": dataset_type,
        "dataset_name": dataset_name,
    }
    eval_results = _eval_results(metrics, wanted, dataset_split=split, **dataset_fields)
    verification = _verification_results(folder, model_type, dataset_fields)
    if verification is not None:
        eval_results += verification["eval_results"]
    card_data = ModelCardData(
        library_name=LIBRARY_NAME,
        license=LICENSE,
        model_name=name,
        tags=TAGS[model_type]
        + (
            [f"objective-{training['objective']}"]
            if training.get("objective") and model_type not in NO_LATENT
            else []
        ),
        datasets=[dataset_type] if dataset_type != "custom" else None,
        eval_results=eval_results,
        # No pipeline_tag: it promises `transformers.pipeline(tag, model=...)`, whose
        # text-generation contract (the output continues the prompt) a VAE does not keep.
    )
    templates = resources.files("vaehub.hub").joinpath("card_templates")
    template = templates.joinpath(f"{model_type}.md").read_text(encoding="utf-8")
    if verification is not None:
        template += templates.joinpath(VERIFICATION_TEMPLATE).read_text(encoding="utf-8")
    return ModelCard.from_template(
        card_data,
        template_str=template,
        verification=verification,
        model_name=name,
        repo_id=repo_id or os.fspath(folder),
        config=config,
        split=split,
        dataset_name=dataset_name,
        iw_samples=record.get("iw_samples"),
        num_examples=_format(metrics["num_examples"], "num_examples")
        if metrics.get("num_examples") is not None
        else None,
        results=[(label, _format(metrics[key], key)) for key, _, label in wanted],
        metrics=metrics,
        config_table={
            key: _short(value)
            for key, value in config.items()
            if key not in CONFIG_NOT_IN_CARD and value is not None
        },
        samples_image=SAMPLES_FILE if os.path.isfile(os.path.join(folder, SAMPLES_FILE)) else None,
        generation=read_generation_report(folder),
        about=_read_about(folder),
        training={
            key: _short(value)
            for key, value in card_training(training, model_type not in NO_LATENT).items()
        },
        vaehub_version=__version__,
        refine_flags="".join(f" --{k} {v:g}" for k, v in changed_refinement(metrics).items()),
    )


def attach_baseline(
    folder: str | os.PathLike, baseline: str | os.PathLike, split: str | None = None
) -> dict[str, Any]:
    """Put the decoder alone's exact NLL beside a VAE's results on the same split, with the
    nats its decoder reads from z (`vaehub.evaluation.metrics.compare_to_baseline`), and
    save them in the VAE's `eval_<split>.json`; returns the new metrics.

    Both numbers come from results files runs wrote: the VAE's record of `split` and the
    baseline's exact evaluation of it (`exact` true, the same dataset and number of
    examples), so a card released without `--baseline` can say what its decoder reads
    without measuring either model again.

    Raises:
        ValueError: the baseline is not exact, or was measured on other data; nothing is
            written.
    """
    from vaehub.evaluation.metrics import compare_to_baseline
    from vaehub.models.results import write_results

    results = read_results(folder)
    split = reported_split(folder, results, split)
    record = results[split]
    others = read_results(baseline)
    if split not in others:
        raise MissingResultsError(
            f"{baseline} holds no results for split {split!r}: evaluate it there with "
            f"`vaehub evaluate {baseline} --data ... --split {split}`."
        )
    theirs = others[split]
    if not theirs.get("metrics", {}).get("exact"):
        raise ValueError(
            f"{baseline}'s {split} results are not an exact NLL: the baseline is the "
            "decoder trained alone (text_lm, pixelcnn)."
        )
    if (theirs.get("dataset") or {}) != (record.get("dataset") or {}):
        raise ValueError(
            f"{baseline} was evaluated on {theirs.get('dataset')}, {folder} on "
            f"{record.get('dataset')}: compare them on the same data."
        )
    metrics = compare_to_baseline(record["metrics"], theirs["metrics"])
    extra = {k: v for k, v in record.items() if k not in ("split", "dataset", "metrics")}
    write_results(folder, split, metrics, record.get("dataset"), **extra)
    return metrics


def _read_about(folder: str | os.PathLike) -> str | None:
    path = os.path.join(folder, ABOUT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip() or None


def _how_to_measure(folder: str | os.PathLike) -> str:
    return (
        f"measure them with `vaehub evaluate {folder} --data ...` (it writes "
        f"eval_<split>.json there)"
    )


def reported_split(
    folder: str | os.PathLike, results: dict[str, dict[str, Any]], split: str | None = None
) -> str:
    """The split a card reports from a folder's `results`: `split`, or `test` where there
    is one, else the first. Raises `MissingResultsError` naming what is missing."""
    if not results:
        raise MissingResultsError(
            f"{folder} holds no evaluation results (eval_<split>.json); {_how_to_measure(folder)}."
        )
    if split is None:
        split = "test" if "test" in results else sorted(results)[0]
    if split not in results:
        raise MissingResultsError(
            f"{folder} holds no results for split {split!r} (it has "
            f"{', '.join(sorted(results))}); {_how_to_measure(folder)}."
        )
    return split


def _card_value(key: str, value: float) -> float | int:
    """A metric as the model-index holds it: counts whole, the rest to 4 decimals."""
    return round(value) if key in COUNTS else round(float(value), 4)


def _eval_results(
    metrics: dict[str, Any], wanted: Sequence[tuple[str, str, str]], **fields: Any
) -> list[EvalResult]:
    """The model-index results of `wanted` (key, metric type, label) rows of `metrics`."""
    return [
        EvalResult(
            metric_type=metric_type,
            metric_name=label,
            metric_value=_card_value(key, metrics[key]),
            **fields,
        )
        for key, metric_type, label in wanted
    ]


def _verification_results(
    folder: str | os.PathLike, model_type: str, dataset_fields: dict[str, str]
) -> dict[str, Any] | None:
    """The card's part for a folder's verification slice (`vaehub.verification`): its
    model-index results and what the template shows; `None` when the folder has none."""
    from vaehub.hub.verification import read_verification, tolerance

    found = read_verification(os.fspath(folder))
    if found is None:
        return None
    piece, metrics = found
    wanted = [
        row
        for row in CARD_METRICS[model_type] + EXACT_METRICS + SLICE_BASELINE_METRICS
        if metrics.get(row[0]) is not None
    ]
    rows = []
    for key, _, label in wanted:
        value = _card_value(key, metrics[key])
        within = tolerance(key, value)
        if key in COUNTS:
            rows.append((label, str(value), str(round(within))))
        else:
            rows.append((label, fixed(value, 4), fixed(within, 4)))
    return {
        "slice": piece,
        "refinement": _refinement_words(changed_refinement(piece.card_args())),
        "eval_results": _eval_results(
            metrics,
            wanted,
            dataset_split=piece.split_name,
            dataset_args=piece.card_args(),
            **dataset_fields,
        ),
        "rows": rows,
    }


def _refinement_words(changed: dict[str, float]) -> str:
    """How a card names the SVI settings that are not Kim et al.'s: " with η = 0.03125,
    momentum 0.9", or nothing."""
    words = {"refine_lr": "η = {:g}", "refine_momentum": "momentum {:g}",
             "refine_max_grad_norm": "gradients clipped at norm {:g}"}  # fmt: skip
    named = [words[key].format(value) for key, value in changed.items()]
    return f" with {', '.join(named)}" if named else ""


def checkpoint_table(folders: Sequence[str | os.PathLike]) -> str:
    """A Markdown table of released text checkpoints: the test numbers of their cards and
    what their generation reports measured (blank where a model has none)."""
    header = (
        "| checkpoint | test sentences | NLL | PPL | KL | MI | AU | reconstruction BLEU | "
        "samples ending with `</s>` | distinct-2 | distinct sentences on a 5-point path |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    rows = []
    for folder in folders:
        metrics = read_results(folder).get("test", {}).get("metrics", {})
        report = read_generation_report(folder) or {}

        def cell(value: Any, digits: int) -> str:
            return "" if value is None else fixed(value, digits)

        samples = report.get("samples", {})
        cells = [
            f"`{os.path.basename(os.path.normpath(folder))}`",
            cell(metrics.get("num_examples"), 0),
            cell(metrics.get("nll"), 2), cell(metrics.get("ppl"), 1),
            *(
                ["–"] * 3  # the exact baseline: no latent
                if metrics.get("exact")
                else [cell(metrics.get("kl"), 2), cell(metrics.get("mi"), 2),
                      cell(metrics.get("active_units"), 0)]
            ),
            cell(report.get("reconstruction", {}).get("bleu"), 1),
            cell(samples.get("ended_fraction"), 2), cell(samples.get("distinct_2"), 3),
            cell(report.get("interpolation", {}).get("distinct_sentences"), 1),
        ]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |\n")
    return header + "".join(rows)
