"""Sharing vaehub models on the Hub: push, pull, and model cards carrying measured results.

A model folder holds, besides the weights, config and tokenizer:

- `eval_<split>.json`: what `vaehub evaluate` or `vaehub train` measured on a split
  (`{"split", "dataset", "iw_samples", "metrics": {...}}`);
- `training.json`: how the model was trained (objective, schedule, hyperparameters);
- where present: `generation.json` (a text model's generation report), `samples.png` (an
  image model's samples), `about.md` and, in a released checkpoint, `verification.json`
  (`vaehub.verification`).

`render_model_card` turns them into a `huggingface_hub.ModelCard` whose `model-index`
holds the measured numbers — never numbers typed by hand — and refuses, naming them,
when results it needs are missing. `push_folder` uploads a folder with its card without
touching the local files; `pull` downloads a repository and checks it holds a vaehub
model.
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from importlib import resources
from typing import Any

import httpx2
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, snapshot_download
from huggingface_hub.errors import RevisionNotFoundError

from vaehub import network, safe_io
from vaehub.svi_settings import changed_refinement

TRAINING_FILE = "training.json"
EVAL_PREFIX = "eval_"
LIBRARY_NAME = "vaehub"
LICENSE = "apache-2.0"

VERIFICATION_TEMPLATE = "verification_section.md"  # appended when a folder has a slice
ABOUT_FILE = "about.md"  # what a released checkpoint is for, its recipe and command
GENERATION_FILE = "generation.json"  # a text model's generation report, shown in its card
SAMPLES_FILE = "samples.png"  # a grid of generated images, shown in the card when present
CONFIG_NOT_IN_CARD = (
    "architectures", "transformers_version", "dtype", "_name_or_path", "use_cache"
)  # fmt: skip
# What a card needs, per model type: (key in eval metrics, metric type, display name).
CARD_METRICS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "text_vae": (
        ("nll", "nll", "NLL (nats/sentence)"),
        ("ppl", "perplexity", "PPL"),
        ("kl", "kl", "KL (nats)"),
        ("mi", "mutual_information", "MI (nats)"),
        ("active_units", "active_units", "active units"),
    ),
    "delta_vae": (
        ("nll", "nll", "NLL (nats/image)"),
        ("bits_per_dim", "bits_per_dim", "bits/dim"),
        ("kl", "kl", "KL (nats)"),
        ("mi", "mutual_information", "MI (nats)"),
        ("active_units", "active_units", "active units"),
    ),
    "text_lm": (
        ("nll", "nll", "NLL (nats/sentence, exact)"),
        ("ppl", "perplexity", "PPL"),
    ),
    "pixelcnn": (
        ("nll", "nll", "NLL (nats/image, exact)"),
        ("bits_per_dim", "bits_per_dim", "bits/dim"),
    ),
}
# Reported when the results hold them: the decoder alone beside a VAE (`--baseline`).
BASELINE_METRICS = (
    ("baseline_nll", "nll", "decoder-alone NLL (exact)"),
    ("delta_nll", "delta_nll", "ΔNLL vs decoder alone"),
)
# The task each model's evaluation results are filed under in the card's model-index.
TASKS = {
    "text_vae": "text-generation",
    "delta_vae": "unconditional-image-generation",
    "text_lm": "text-generation",
    "pixelcnn": "unconditional-image-generation",
}
TAGS = {
    "text_vae": ["vae", "text-vae", "posterior-collapse", "lstm"],
    "delta_vae": ["vae", "delta-vae", "posterior-collapse", "pixelcnn"],
    "text_lm": ["language-model", "lstm", "vae-baseline"],
    "pixelcnn": ["pixelcnn", "vae-baseline"],
}
NO_LATENT = ("text_lm", "pixelcnn")  # the exact baselines: no KL, no objective to name


class HubError(RuntimeError):
    """A push or pull that did not go through; the message says what failed."""


class MissingResultsError(ValueError):
    """A model card was asked for results the model folder does not hold."""


# --- results kept in a model folder -------------------------------------------------------


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
    """Save a text model's generation report (`vaehub.generation_report`) as
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
    )
    summary = {key: getattr(args, key) for key in keys if hasattr(args, key)}
    if hasattr(args, "resolved_beta_schedule"):
        summary["beta_schedule"] = args.resolved_beta_schedule
    if state is not None:
        summary["global_step"] = state.global_step
        runtime = [e["train_runtime"] for e in state.log_history if "train_runtime" in e]
        if runtime:
            summary["train_runtime_seconds"] = runtime[-1]
    if dataset:
        summary["dataset"] = dataset
    return summary


# --- model cards ----------------------------------------------------------------------------

# What weighs or refines the KL: nothing a model without a latent was trained with.
_LATENT_ONLY_PREFIXES = ("beta", "anneal_", "free_bits", "aggressive_", "sa_vae_", "objective")


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
    wanted = wanted + tuple(row for row in BASELINE_METRICS if metrics.get(row[0]) is not None)
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
    templates = resources.files("vaehub").joinpath("card_templates")
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
        vaehub_version=_version(),
        refine_flags="".join(f" --{k} {v:g}" for k, v in changed_refinement(metrics).items()),
    )


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
    from vaehub.verification import read_verification, tolerance

    found = read_verification(os.fspath(folder))
    if found is None:
        return None
    piece, metrics = found
    wanted = [row for row in CARD_METRICS[model_type] if metrics.get(row[0]) is not None]
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


def _short(value: Any) -> Any:
    # Six significant digits: 9.99999999999992 from a solver reads as the 10 it is.
    return float(f"{value:.6g}") if isinstance(value, float) else value


COUNTS = ("active_units", "num_examples")  # whole numbers, even when a Trainer logs floats


def _format(value: Any, key: str = "") -> str:
    if key in COUNTS or isinstance(value, int):
        return str(round(value))
    # Image models' bits/dim can differ only in the third decimal.
    return fixed(value, 3 if key == "bits_per_dim" else 2)


def fixed(value: float, digits: int) -> str:
    """`value` to `digits` decimals, never "-0.00" for a tiny negative estimate."""
    text = f"{float(value):.{digits}f}"
    return f"{0.0:.{digits}f}" if float(text) == 0 else text


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


def _version() -> str:
    from vaehub import __version__

    return __version__


# --- push and pull ---------------------------------------------------------------------------


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | bool | None = None,
    card: bool = True,
    create_pr: bool = False,
    source: str | None = None,
) -> str:
    """Upload a saved model folder, with its rendered model card as README.md.

    The folder itself is only read: the card is written into a staging copy, so a push
    that fails leaves the local model complete and untouched.

    Args:
        source: how an error names what was pushed (default: the folder).

    Returns:
        the URL of the commit.
    Raises:
        HubError: the server could not be reached, refused the token, timed out or failed.
        MissingResultsError: `card=True` and the folder lacks evaluation results.
    """
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ValueError(f"{folder} holds no config.json: save a model there first.")
    # Before anything is read: copying would follow a link and upload what it points to.
    safe_io.check_no_links_out(folder, "the folder to push")
    api = HfApi()
    with tempfile.TemporaryDirectory(prefix="vaehub-push-") as staging:
        upload_path = os.path.join(staging, "upload")
        shutil.copytree(folder, upload_path, ignore=shutil.ignore_patterns("checkpoint-*", ".*"))
        if card:
            render_model_card(folder, repo_id=repo_id).save(os.path.join(upload_path, "README.md"))

        def upload() -> Any:
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=upload_path,
                revision=revision,
                token=token,
                commit_message=commit_message or "Upload vaehub model",
                create_pr=create_pr,
            )

        try:
            repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
            # Reading the repository back checks the server and the token before the upload
            # (its main branch always exists).
            api.model_info(repo_id, revision="main", token=token)
            try:
                info = upload()
            except RevisionNotFoundError:
                # A new branch: create it from main, then commit to it.
                api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
                info = upload()
        except (httpx2.HTTPError, OSError, ValueError) as error:
            unchanged = (
                f"The local folder {folder} is unchanged." if source is None
                else "Nothing local was changed."
            )  # fmt: skip
            raise HubError(
                f"pushing {source or folder} to {repo_id}"
                f"{f' (revision {revision})' if revision else ''} failed: "
                f"{_describe(error, repo_id)}. {unchanged}"
            ) from error
    return info.commit_url


def pull(
    repo_id: str,
    revision: str | None = None,
    local_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    force: bool = False,
) -> str:
    """Download a vaehub model repository; returns the local folder.

    With `local_dir`, the files go into a new folder beside it, are checked, and only then
    take its place, so a folder never mixes two models' files and a failed pull leaves it
    as it was. A `local_dir` that already holds files is refused unless `force=True`,
    which replaces it as a whole.

    Raises:
        HubError: `local_dir` is not empty (without `force`), the repository or revision
            does not exist or cannot be reached, or it holds no vaehub model (the message
            names the repository and what was expected).
    """
    where = f"{repo_id}{f' at revision {revision}' if revision else ''}"
    if local_dir is None:
        return _checked(_download(repo_id, revision, None, token, where), repo_id)
    target = os.path.abspath(local_dir)
    if os.path.exists(target) and not os.path.isdir(target):
        raise HubError(f"{local_dir} is a file, not a folder: give a folder to pull into.")
    try:
        # Even with force: the folder is replaced as a whole, and these hold far more.
        safe_io.check_replaceable_folder(target, "--output-dir")
    except ValueError as error:
        raise HubError(str(error)) from error
    present = sorted(os.listdir(target)) if os.path.isdir(target) else []
    if present and not force:
        more = len(present) - 4
        shown = ", ".join(present[:4]) + (f" and {more} more" if more > 0 else "")
        raise HubError(
            f"{local_dir} is not empty (it holds {shown}): pulling {repo_id} into it would mix "
            "two models' files. Give a new or empty folder, or pass --force (force=True) to "
            "replace the folder as a whole."
        )
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f".{name}.pull-")
    try:
        with network.interruptible():
            _checked(_download(repo_id, revision, staging, token, where), repo_id)
        # Everything is checked in the staging folder: the old one goes only for a model
        # that is whole, is what the server listed, and loads.
        check_download(staging, where)
        safe_io.replace_folder(target, staging)
    except BaseException as error:
        if not isinstance(error, Exception):
            # Interrupted (Ctrl-C, SIGTERM): a download thread may still write into the
            # staging folder after it is removed; remove it again once they are joined.
            network.cancel_transfers()
            atexit.register(shutil.rmtree, staging, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _download(
    repo_id: str, revision: str | None, local_dir: str | None, token: str | bool | None, where: str
) -> str:
    try:
        return snapshot_download(repo_id, revision=revision, local_dir=local_dir, token=token)
    except (httpx2.HTTPError, OSError, ValueError) as error:
        raise HubError(
            f"pulling {where} failed: {_describe(error, repo_id)}. Nothing local was changed."
        ) from error


def _checked(path: str, repo_id: str) -> str:
    config_path = os.path.join(path, "config.json")
    model_type = None
    if os.path.isfile(config_path):
        try:
            with open(config_path, encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HubError(
                f"{repo_id} is not a vaehub model: its config.json is not readable JSON "
                f"({error}). Nothing local was changed."
            ) from error
        if isinstance(config, dict):
            model_type = config.get("model_type")
        else:
            model_type = f"a JSON {type(config).__name__} instead of an object"
    if model_type not in CARD_METRICS:
        raise HubError(
            f"{repo_id} is not a vaehub model: expected a config.json with "
            f"model_type {' or '.join(map(repr, CARD_METRICS))}, found "
            f"{model_type if model_type else 'none'}. Nothing local was changed."
        )
    return path


def check_download(folder: str, where: str) -> None:
    """Check a downloaded model folder: each file's hash is the one the server listed for it
    (its ETag: the git blob id, or the sha256 of a large file), and the model loads — its
    weights open, match the sizes in its config and are finite, its tokenizer reads.

    Raises:
        HubError: naming the file and what was wrong; nothing local was changed.
    """
    from vaehub.cli import load_model

    for name in sorted(_downloaded_files(folder)):
        listed = _listed_hash(folder, name)
        if listed is None:
            continue
        found = _file_hash(os.path.join(folder, name), len(listed))
        if found != listed:
            raise HubError(
                f"pulling {where} failed: {name} does not match the hash the server listed for "
                f"it ({listed}; the file received hashes to {found}): the download was "
                "altered or cut on the way. Nothing local was changed; pull again, and if it "
                "persists, the server is not serving that repository faithfully."
            )
    try:
        load_model(folder)
    except (OSError, ValueError) as error:
        message = str(error).replace(folder, "the download")
        raise HubError(
            f"pulling {where} failed: it does not hold a loadable model: {message} "
            "Nothing local was changed."
        ) from error


# Where huggingface_hub records, per file downloaded into a folder, the commit and ETag.
_DOWNLOAD_RECORDS = os.path.join(".cache", "huggingface", "download")


def _downloaded_files(folder: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".cache"]
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files]
    return found


def _listed_hash(folder: str, name: str) -> str | None:
    """The ETag the server sent for `name` when it is a content hash (40 hex digits: the
    git blob id; 64: the sha256 of an LFS file), else `None`."""
    path = os.path.join(folder, _DOWNLOAD_RECORDS, f"{name}.metadata")
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    etag = lines[1].strip().strip('"').lower() if len(lines) > 1 else ""
    hex_digits = all(c in "0123456789abcdef" for c in etag)
    return etag if hex_digits and len(etag) in (40, 64) else None


def _file_hash(path: str, length: int) -> str:
    """The git blob id (`length` 40) or sha256 (64) of a file."""
    import hashlib

    digest = hashlib.sha256() if length == 64 else hashlib.sha1()
    if length == 40:
        digest.update(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(error: BaseException, repo_id: str | None = None) -> str:
    """What went wrong, in one line: the silent server or the missing repository when it is
    one of those, else the error's type (or HTTP status) and first line."""
    known = network.explain(error, repo_id)
    if known:
        return known
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"HTTP {status}: {first_line}" if status else f"{type(error).__name__}: {first_line}"


def evaluation_dataset(data: str, split: str) -> dict[str, str]:
    """How an evaluation names its data in records and cards."""
    if os.path.isdir(data) and os.path.isfile(os.path.join(data, "ptb.train.txt")):
        return {"name": "Penn Treebank (Mikolov et al.)", "type": "ptb_text_only"}
    return {"name": os.path.basename(os.path.abspath(data)), "type": "custom"}
