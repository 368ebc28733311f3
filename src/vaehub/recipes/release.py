"""Releasing a checkpoint whose card can be checked, and checking it.

`release` copies a trained run into a checkpoint folder: what `save_pretrained` writes, the
card (`README.md`), a text model's generation report, and `verification.json` (the record
of `vaehub.hub.verification`): the first N examples of a named split, the seed and the K of
the IW-NLL, and the card's metrics measured there on the stored weights. `verify` reads the
card (from a folder or the Hub), loads the weights beside it, measures the slice again and
compares every number within tolerance: a card edited by hand, or weights changed under it,
fails.

    vaehub release RUN_FOLDER --name synthetic-vae-aggressive --data synthetic
    vaehub verify vaehub/synthetic-vae-aggressive
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from vaehub import hub
from vaehub.hub.verification import (
    SELF_CONTAINED,
    SLICE_SPLIT,
    STORAGE_DTYPES,
    VERIFICATION_FILE,
    Check,
    VerificationError,
    VerificationSlice,
    data_kind,
    tolerance,
)
from vaehub.latent.refinement import Refinement
from vaehub.models import checkpoints
from vaehub.models.auto import load_model
from vaehub.models.text.decoding import training_lengths
from vaehub.utils.safe_io import (
    check_folder_name,
    check_no_links_out,
    staged_folder,
    write_json,
    write_text,
)


def measure(
    model: Any,
    piece: VerificationSlice,
    data: str | None = None,
    show_progress: bool = False,
    baseline: str | None = None,
) -> dict[str, Any]:
    """The metrics of `model` on the slice, as `vaehub evaluate` measures them.

    Args:
        data: where the slice's dataset lies; needed unless it is self-contained.
        baseline: the folder or Hub id of the model's decoder trained alone: its exact NLL
            on the same examples is added, with the nats the decoder reads from z
            (`vaehub.evaluation.metrics.compare_to_baseline`).
        show_progress: a progress bar over the slice's examples (a whole test split at
            K = 500 is most of an hour on two cores).
    Returns:
        `evaluate_vae`'s results (a model without a latent: `evaluate_exact`'s).
    """
    import torch

    from vaehub.data.sources import evaluation_data
    from vaehub.evaluation.metrics import evaluate_vae

    source = _data_path(piece, data)
    batches, _, _, total = evaluation_data(
        model, source, piece.split, piece.batch_size, piece.first, piece.seed
    )
    if total < piece.first:
        raise VerificationError(
            f"the slice {piece.split_name} of {piece.data} needs {piece.first} examples; "
            f"{source} holds {total} in {piece.split}."
        )
    language_model = (
        _load_for_measuring(baseline)
        if baseline and getattr(model, "has_latent", True)
        else None
    )
    torch.manual_seed(piece.seed)
    with torch.no_grad():
        return evaluate_vae(
            model.eval(), batches, iw_samples=piece.iw_samples, total=total,
            refinement=piece.refinement, show_progress=show_progress, baseline=language_model,
        )  # fmt: skip


def _data_path(piece: VerificationSlice, data: str | None) -> str:
    if piece.data in SELF_CONTAINED:
        return piece.data
    if data is None:
        raise VerificationError(
            f"the verification slice reads {piece.data}; give its location with --data "
            "(a PTB, MNIST, Omniglot or Frey Faces folder, or the sentence or vector file)."
        )
    if data_kind(data) != piece.data:
        raise VerificationError(
            f"--data {data} holds {data_kind(data)}, but the card's slice was measured on "
            f"{piece.data}."
        )
    return data


def release(
    model_dir: str,
    name: str,
    data: str,
    output_dir: str = "model_cards",
    organization: str = "vaehub",
    split: str | None = None,
    first: int = 200,
    seed: int = 0,
    iw_samples: int = 100,
    batch_size: int = 64,
    dtype: str = "float32",
    baseline: str | None = None,
    about: str | None = None,
    split_iw_samples: int | None = None,
    show_progress: bool = False,
) -> str:
    """Write `OUTPUT_DIR/NAME`: the model of `model_dir` ready for `vaehub push`, with its
    verification slice measured on the stored weights and its card.

    A text VAE also gets its generation report (`generation.json`, shown in the card):
    reconstructions of the slice's sentences, samples from the prior and interpolations,
    decoded with seed `seed`; with `baseline` (an LSTM-LM folder or Hub id), the samples'
    perplexity under it. A text model saved before it recorded its training sentences'
    lengths gets them from `data`'s train split, so that its decoding stops where they do.

    The card reports the split of `model_dir`'s results (`test` where there is one). With
    `dtype` float16 or bfloat16 the weights are stored in it, and that split is measured
    again on the stored weights (all its examples; the K its results record, or
    `split_iw_samples`) before the card is written; `show_progress` shows a progress bar
    over that measurement.

    Returns:
        the checkpoint folder.
    """
    import torch

    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(STORAGE_DTYPES)}.")
    if split_iw_samples is not None and dtype == "float32":
        raise ValueError(
            "split_iw_samples sets K of the measurement on half-precision weights; float32 "
            "weights keep the results they were measured with: give dtype too, or drop it."
        )
    # Checked before anything is read or written: the folder of that name is replaced.
    folder = check_folder_name(name, output_dir, "the release name")
    # What is released is read from model_dir: never from beyond it through a link.
    check_no_links_out(model_dir, "the model folder to release")
    model = load_model(model_dir)
    results = hub.read_results(model_dir)
    card_split = hub.reported_split(model_dir, results, split)
    record = results[card_split]
    # A model evaluated on a refined posterior (SA-VAE) is released with the same refinement.
    refined = Refinement.from_record(record["metrics"]).record()
    piece = VerificationSlice(
        data_kind(data), card_split, first, seed, iw_samples, batch_size, **refined
    )
    if dtype != "float32":
        # Results measured on the float32 weights do not describe the stored ones.
        model.evaluation_results = {}
    text = model.main_input_name == "input_ids"
    if text and training_lengths(model) is None:
        _record_training_lengths(model, data)
    # Written beside its final place and moved there whole: a failed release leaves any
    # earlier checkpoint of that name as it was.
    with staged_folder(folder, prefix=f".{name}-") as staging:
        model.to(getattr(torch, dtype)).save_pretrained(staging)
        stored = _load_for_measuring(staging)
        if dtype != "float32":
            whole = VerificationSlice(
                piece.data, card_split, int(record["metrics"]["num_examples"]), seed,
                split_iw_samples or record.get("iw_samples") or iw_samples, batch_size,
                **refined,
            )  # fmt: skip
            hub.write_results(
                staging, card_split,
                _finite(measure(stored, whole, data, show_progress, baseline=baseline)),
                record.get("dataset"), iw_samples=whole.iw_samples, stored_dtype=dtype,
            )  # fmt: skip
        write_json(
            os.path.join(staging, VERIFICATION_FILE),
            {
                **asdict(piece),
                "metrics": _finite(measure(stored, piece, data, baseline=baseline)),
            },
        )
        if text and getattr(stored, "has_latent", True):
            hub.write_generation_report(
                staging, measure_generation(stored, piece, data, baseline=baseline)
            )
        if about:
            write_text(os.path.join(staging, hub.ABOUT_FILE), about.strip() + "\n")
        card = hub.render_model_card(staging, repo_id=f"{organization}/{name}", split=card_split)
        write_text(os.path.join(staging, "README.md"), str(card))
    return folder


def measure_generation(
    model: Any, piece: VerificationSlice, data: str | None, baseline: str | None = None
) -> dict[str, Any]:
    """The generation report of a text VAE on the slice's sentences, from its seed; with
    `baseline`, the samples' perplexity under that language model."""
    from vaehub.data.sources import evaluation_sentences
    from vaehub.evaluation.generation_report import generation_report

    sentences, _ = evaluation_sentences(_data_path(piece, data), piece.split, piece.first)
    language_model = _load_for_measuring(baseline) if baseline else None
    report = generation_report(model, sentences["text"], seed=piece.seed, baseline=language_model)
    if baseline:
        report["settings"]["baseline"] = baseline
    return report


def _record_training_lengths(model: Any, data: str) -> None:
    from vaehub.data.sources import evaluation_sentences
    from vaehub.models.text.decoding import record_length_statistics

    try:
        sentences, _ = evaluation_sentences(data, "train")
    except ValueError:
        return  # a corpus without a train split: decoding keeps the configured limit
    longest = model.config.max_sequence_length
    rows = model.tokenizer(list(sentences["text"]))["input_ids"]
    record_length_statistics(model, [min(len(row), longest) - 1 for row in rows])


def _load_for_measuring(name_or_path: str) -> Any:
    """The stored weights, computed with in float32 (half-precision storage only rounds
    them)."""
    import torch

    model = load_model(name_or_path)
    if any(p.dtype in (torch.float16, torch.bfloat16) for p in model.parameters()):
        model = model.float()
    return model.eval()


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    hub.check_finite_metrics(metrics, "the verification slice's results")
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def card_slice(card: Any, source: str) -> tuple[VerificationSlice, dict[str, float]]:
    """The verification slice a card's model-index names, and the card's numbers on it by
    metric key (`nll`, `kl`, ...)."""
    results = getattr(card.data, "eval_results", None) or []
    found = [r for r in results if r.dataset_split and SLICE_SPLIT.match(r.dataset_split)]
    if not found:
        raise VerificationError(
            f"the card of {source} names no verification slice (a model-index result on a "
            "split such as validation[:200]); release the model with `vaehub release` to "
            "give it one."
        )
    first = found[0]
    match = SLICE_SPLIT.match(first.dataset_split)
    args = first.dataset_args or {}
    try:
        piece = VerificationSlice(
            data=args["data"], split=match["split"], first=int(match["first"]),
            seed=int(args["seed"]), iw_samples=int(args["iw_samples"]),
            batch_size=int(args["batch_size"]),
            **Refinement.from_record(args).record(),
        )  # fmt: skip
    except VerificationError as error:
        raise VerificationError(f"the card of {source}: {error}") from error
    except (KeyError, TypeError, ValueError) as error:
        raise VerificationError(
            f"the card of {source} names the slice {first.dataset_split} without its "
            f"settings (data, seed, iw_samples, batch_size in the dataset's args): {error}"
        ) from error
    keys = {metric_type: key for rows in hub.CARD_METRICS.values() for key, metric_type, _ in rows}
    numbers = {
        keys.get(r.metric_type, r.metric_type): float(r.metric_value)
        for r in found
        if r.dataset_split == first.dataset_split
    }
    return piece, numbers


def load_card(name_or_path: str) -> Any:
    """The model card of a folder or a Hub repository."""
    import yaml
    from huggingface_hub import ModelCard

    path = name_or_path
    if not os.path.isdir(name_or_path) and checkpoints.looks_like_local_path(name_or_path):
        raise VerificationError(
            f"{name_or_path} is not a folder: give a released checkpoint's folder or a Hub id."
        )
    if os.path.isdir(name_or_path):
        path = os.path.join(name_or_path, "README.md")
        if not os.path.isfile(path):
            raise VerificationError(f"{name_or_path} holds no card (README.md) to verify.")
    try:
        # huggingface_hub reads the metadata with yaml.safe_load: a `!!python` tag is
        # refused, never constructed.
        return ModelCard.load(path)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        where = getattr(error, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1} of its metadata)" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise VerificationError(
            f"the card of {name_or_path} ({path if path != name_or_path else 'README.md'}) "
            f"has metadata that is not valid YAML{at}: {problem}. Render the card again with "
            "`vaehub card` or `vaehub release` instead of editing it by hand."
        ) from error


def verify(name_or_path: str, data: str | None = None) -> list[Check]:
    """Measure the verification slice of a checkpoint's card again on its weights.

    Args:
        name_or_path: a checkpoint folder or a Hub repository id.
        data: the dataset's location, for a slice of files (PTB, MNIST, ...).
    Returns:
        one `Check` per number of the card's slice; all `ok` when the card matches.
    """
    card = load_card(name_or_path)
    piece, numbers = card_slice(card, name_or_path)
    model = _load_for_measuring(name_or_path)
    report = _stored_generation_report(name_or_path)
    baseline = (
        report["settings"].get("baseline")
        if report is not None and baseline_given(report)
        else None
    )
    measured = measure(model, piece, data, baseline=baseline if _reads_baseline(numbers) else None)
    checks = [
        Check(key, value, measured.get(key), tolerance(key, value))
        for key, value in numbers.items()
        # measured beside a decoder alone this verification cannot load again
        if key in measured or key not in BASELINE_KEYS
    ]
    if report is not None:
        again = measure_generation(model, piece, data, baseline=baseline)
        checks += generation_checks(report, again)
    return checks


BASELINE_KEYS = frozenset(key for key, _, _ in hub.BASELINE_METRICS)


def _reads_baseline(numbers: dict[str, float]) -> bool:
    """Whether a card's slice numbers were measured beside the decoder alone."""
    return any(key in BASELINE_KEYS for key in numbers)


def baseline_given(report: dict[str, Any]) -> bool:
    """Whether the baseline a report's sample perplexity was measured under can be loaded
    again (a folder that exists, or a Hub id)."""
    name = report["settings"].get("baseline")
    return bool(name) and (os.path.isdir(name) or not os.path.isabs(name) and "/" in name)


def generation_checks(card: dict[str, Any], measured: dict[str, Any]) -> list[Check]:
    """A stored generation report against the same report made again: every number within
    `tolerance`, every sentence shown identical (1 when it is, 0 when not)."""
    checks = []
    for part in ("reconstruction", "samples", "interpolation"):
        for key, value in card[part].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                again = measured[part].get(key)
                if key == "baseline_ppl" and again is None:
                    continue  # measured under a baseline this verification was not given
                checks.append(Check(f"generation.{part}.{key}", float(value),
                                    None if again is None else float(again),
                                    tolerance(key, float(value))))  # fmt: skip
    shown, again = _flat_sentences(card["shown"]), _flat_sentences(measured["shown"])
    for index, (name, sentence) in enumerate(shown):
        same = index < len(again) and again[index] == (name, sentence)
        checks.append(Check(f"generation.shown.{name}", 1.0, float(same), 0.0))
    return checks


def _flat_sentences(shown: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [(f"samples[{i}]", s) for i, s in enumerate(shown["samples"])]
    rows += [(f"reconstructions[{i}]", r["output"]) for i, r in enumerate(shown["reconstructions"])]
    rows += [(f"interpolation[{i}]", s) for i, s in enumerate(shown["interpolation"]["path"])]
    return rows


def _stored_generation_report(name_or_path: str) -> dict[str, Any] | None:
    if os.path.isdir(name_or_path):
        return hub.read_generation_report(name_or_path)
    from vaehub.models.checkpoints import CheckpointError, resolve_file

    try:
        path = resolve_file(name_or_path, hub.GENERATION_FILE, {})
    except CheckpointError:
        return None
    return hub.read_generation_report(os.path.dirname(path))
