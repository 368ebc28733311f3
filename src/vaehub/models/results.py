"""What a model folder holds besides its weights: the numbers measured on it.

- `eval_<split>.json`: what `vaehub evaluate` or `vaehub train` measured on a split
  (`{"split", "dataset", "iw_samples", "metrics": {...}}`); a weaker record never replaces a
  fuller one, and other data gets a name of its own;
- `training.json`: how the model was trained (objective, schedule, budget);
- `generation.json`: a text model's generation report (`vaehub.evaluation.generation_report`).

Models save and load these with their weights; the cards of `vaehub.hub` are rendered from
them."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

from vaehub.utils import safe_io

TRAINING_FILE = "training.json"


EVAL_PREFIX = "eval_"


GENERATION_FILE = "generation.json"  # a text model's generation report, shown in its card


class MissingResultsError(ValueError):
    """A model card was asked for results the model folder does not hold."""


def write_results(
    folder: str | os.PathLike,
    split: str,
    metrics: dict[str, Any],
    dataset: dict[str, str] | None = None,
    path: str | os.PathLike | None = None,
    **extra: Any,
) -> str:
    """Save what was measured on `split` as `eval_<split>.json` (or at `path`); returns the
    path.

    The file is replaced whole (`safe_io.write_json`): a full disk or a crash leaves the
    previous record as it was.

    Raises:
        ValueError: a metric is NaN or infinite, nested ones included (named as
            `kl_per_dim[3]`); nothing is written.
        safe_io.DiskFullError: the disk is full; the previous record is intact.
    """
    check_finite_metrics(metrics, f"the {split} results")
    record = {"split": split, "dataset": dataset or {}, **extra, "metrics": metrics}
    if path is None:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{EVAL_PREFIX}{split}.json")
    return safe_io.write_json(path, record, f"the {split} results")


def check_results_target(
    path: str | os.PathLike,
    dataset: dict[str, str] | None,
    data: str | None,
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Refuse to replace the evaluation record at `path` when that would lose something.

    - The record describes other data (another dataset or file): the card would name the
      new data as the dataset of numbers measured on the old. Refused unless `overwrite`.
    - The folder is released (it holds `verification.json` and a card rendered from its
      results): refused unless `overwrite`.
    - The new `metrics` lack the NLL the record has: refused even with `overwrite` (a
      card cannot be rendered from them); write them elsewhere.
    - They cover fewer examples or use a smaller K: refused unless `overwrite`.

    Call it before measuring (`metrics=None`) and again with the results.

    Raises:
        ValueError: naming the file, what it holds, and `--output`/`--overwrite`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as handle:
            old = json.load(handle)
        old_metrics = dict(old.get("metrics") or {})
    except (OSError, ValueError, AttributeError, TypeError):
        return  # an unreadable record holds nothing to keep
    elsewhere = "give --output PATH to write this evaluation elsewhere"
    old_data = old.get("data") or (old.get("dataset") or {}).get("name")
    new_data = data or (dataset or {}).get("name")
    # Before measuring, the dataset's record is not known yet (`None`): the paths decide.
    same_dataset = dataset is None or (old.get("dataset") or {}) == dataset
    same = same_dataset and (not old.get("data") or not data or old.get("data") == data)
    if not same and not overwrite:
        raise ValueError(
            f"{path} holds results measured on {old_data}, and this evaluation reads "
            f"{new_data}: the card would then name {new_data} as the data of its numbers. "
            f"{elsewhere[0].upper() + elsewhere[1:]}, or --overwrite to replace them."
        )
    folder = os.path.dirname(os.path.abspath(path))
    released = os.path.isfile(os.path.join(folder, "verification.json"))
    if released and not overwrite and metrics is None:
        raise ValueError(
            f"{path} is a released result (its folder holds verification.json and a card "
            f"rendered from it): {elsewhere}, or --overwrite to replace it and then render "
            "the card again."
        )
    if metrics is None:
        return
    if old_metrics.get("nll") is not None and metrics.get("nll") is None:
        # Never, even with overwrite: a card cannot be rendered from it.
        raise ValueError(
            f"this evaluation would replace {path}, which holds an NLL, with a record without "
            f"one (measured with --iw-samples 0): {elsewhere}. The record was kept."
        )
    smaller = []
    old_count, new_count = old_metrics.get("num_examples"), metrics.get("num_examples")
    if old_count is not None and new_count is not None and new_count < old_count:
        smaller.append(f"it covers {new_count} examples, the record {old_count}")
    old_k, new_k = old.get("iw_samples"), metrics.get("iw_samples")
    if old_k and new_k and new_k < old_k:
        smaller.append(f"its NLL uses K = {new_k}, the record's K = {old_k}")
    if smaller and not overwrite:
        raise ValueError(
            f"this evaluation would replace {path} with a smaller one ({'; '.join(smaller)}): "
            f"{elsewhere}, or --overwrite to replace it. The record was kept."
        )


def check_finite_metrics(metrics: dict[str, Any], what: str) -> None:
    """Refuse results holding a NaN or infinite number, nested lists and dicts included
    (named as `kl_per_dim[3]`): a card or file must never carry one."""
    safe_io.check_finite(metrics, what)


def read_results(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Every `eval_<split>.json` of a folder, by split."""
    results = {}
    for path in sorted(glob.glob(os.path.join(folder, f"{EVAL_PREFIX}*.json"))):
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a readable evaluation record: {error}") from error
        split = record.get("split") or os.path.basename(path)[len(EVAL_PREFIX) : -5]
        results[split] = record
    return results


def write_generation_report(folder: str | os.PathLike, report: dict[str, Any]) -> str:
    """Save a text model's generation report (`vaehub.evaluation.generation_report`) as
    `generation.json`; returns the path."""
    return safe_io.write_json(
        os.path.join(folder, GENERATION_FILE), report, "the generation report"
    )


def read_generation_report(folder: str | os.PathLike) -> dict[str, Any] | None:
    """A folder's generation report, or `None` when it has none."""
    path = os.path.join(folder, GENERATION_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable generation report: {error}") from error


def write_training_summary(folder: str | os.PathLike, summary: dict[str, Any]) -> str:
    """Save how a model was trained as `training.json`; returns the path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, TRAINING_FILE)
    return safe_io.write_json(path, summary, "the training summary", default=str)


def training_summary(args: Any, state: Any = None, dataset: str | None = None) -> dict[str, Any]:
    """The card-worthy part of `VAETrainingArguments` (and of the final `TrainerState`)."""
    keys = (
        "objective",
        "beta",
        "beta_schedule",
        "anneal_beta_start",
        "anneal_steps",
        "anneal_epochs",
        "anneal_cycles",
        "anneal_ramp_ratio",
        "free_bits",
        "capacity",
        "capacity_weight",
        "aggressive_max_inner_steps",
        "aggressive_window",
        "aggressive_patience",
        "aggressive_check_steps",
        "sa_vae_steps",
        "sa_vae_lr",
        "sa_vae_momentum",
        "sa_vae_max_grad_norm",
        "sa_vae_backprop",
        "learning_rate",
        "optim",
        "lr_scheduler_type",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "num_train_epochs",
        "max_steps",
        "max_grad_norm",
        "weight_decay",
        "seed",
        "bf16",
        "early_stopping_patience",
    )
    summary = {key: getattr(args, key) for key in keys if hasattr(args, key)}
    if hasattr(args, "resolved_beta_schedule"):
        summary["beta_schedule"] = args.resolved_beta_schedule
    if state is not None:
        summary["global_step"] = state.global_step
        runtime = [e["train_runtime"] for e in state.log_history if "train_runtime" in e]
        if runtime:
            # A resumed run's Trainer times only what it ran after the checkpoint (nothing,
            # when the checkpoint was already at the end): named so, not taken for the run's.
            resumed = getattr(args, "resume_from_checkpoint", None)
            key = "train_runtime_seconds_after_resume" if resumed else "train_runtime_seconds"
            summary[key] = runtime[-1]
    if dataset:
        summary["dataset"] = dataset
    return summary


def evaluation_dataset(data: str, split: str) -> dict[str, str]:
    """How an evaluation names its data in records and cards."""
    if os.path.isdir(data) and os.path.isfile(os.path.join(data, "ptb.train.txt")):
        return {"name": "Penn Treebank (Mikolov et al.)", "type": "ptb_text_only"}
    return {"name": os.path.basename(os.path.abspath(data)), "type": "custom"}
