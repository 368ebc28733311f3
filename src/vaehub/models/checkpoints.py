"""Checks a saved model before transformers loads it, so that a bad folder gets an error
that names the folder or file and says what to do, instead of a traceback from deep inside
safetensors or a silently default-initialised model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any

import httpx2
import torch
from safetensors import SafetensorError, safe_open
from transformers.utils import cached_file

from vaehub.utils import network

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# Keyword arguments of `from_pretrained` that say where files come from.
HUB_KWARGS = (
    "cache_dir",
    "force_download",
    "proxies",
    "token",
    "revision",
    "local_files_only",
    "subfolder",
)


class CheckpointError(OSError):
    """A model folder or Hub repository does not hold a loadable vaehub model."""


def looks_like_local_path(name: str) -> bool:
    # A Hub id is "name" or "org/name"; anything else that does not exist is a missing folder.
    return (
        name.startswith((".", "/", "~"))
        or os.sep in name.strip("/").replace("/", "", 1)
        or (os.altsep is not None and os.altsep in name)
    )


def resolve_file(name_or_path: str | os.PathLike, filename: str, hub_kwargs: dict[str, Any]) -> str:
    """The local path of `filename` in a folder or Hub repository (downloaded if needed)."""
    name = os.fspath(name_or_path)
    if os.path.isdir(name):
        folder = (
            os.path.join(name, hub_kwargs["subfolder"]) if hub_kwargs.get("subfolder") else name
        )
        path = os.path.join(folder, filename)
        if not os.path.isfile(path):
            raise CheckpointError(
                f"{folder} holds no {filename}: it is not a saved vaehub model. Save one with "
                "`model.save_pretrained(folder)`."
            )
        return path
    if os.path.exists(name) or looks_like_local_path(name):
        raise CheckpointError(
            f"{name} is not a folder: give the folder a vaehub model was saved to."
        )
    try:
        path = cached_file(name, filename, **{k: v for k, v in hub_kwargs.items() if v is not None})
    except (OSError, httpx2.HTTPError) as error:
        reason = network.explain(error, name) or str(error)
        # "model_cards/typo" is a valid Hub id too: when its first part is a folder here, the
        # user most likely meant a folder.
        owner = name.split("/", 1)[0]
        local = (
            f" (there is no folder {name} here either, though {owner}/ exists: check the path)"
            if "/" in name and os.path.isdir(owner)
            else ""
        )
        raise CheckpointError(
            f"could not get {filename} of {name!r} "
            f"(revision {hub_kwargs.get('revision') or 'main'}): {reason}{local}. "
            "Nothing local was changed."
        ) from error
    _check_cached_hash(path, name, filename)
    return path


def _check_cached_hash(path: str, name: str, filename: str) -> None:
    """A file of the Hub cache lies in `blobs/<ETag>`: its ETag is the hash the server
    listed (the git blob id, or the sha256 of a large file). Refuse a file whose contents do
    not hash to it — another model's weights of the same size, say."""
    import hashlib

    blob = os.path.realpath(path)
    listed = os.path.basename(blob).lower()
    if len(listed) not in (40, 64) or any(c not in "0123456789abcdef" for c in listed):
        return
    digest = hashlib.sha256() if len(listed) == 64 else hashlib.sha1()
    if len(listed) == 40:
        digest.update(f"blob {os.path.getsize(blob)}\0".encode())
    with open(blob, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != listed:
        os.remove(blob)  # so that the next try downloads it again
        raise CheckpointError(
            f"{filename} of {name!r} does not match the hash the server listed for it "
            f"({listed}; the file received hashes to {digest.hexdigest()}): the download was "
            "altered or cut on the way, and was removed from the cache. Load it again; if it "
            "persists, the server is not serving that repository faithfully."
        )


def read_config_dict(
    name_or_path: str | os.PathLike, accepted: Sequence[str], hub_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The checkpoint's `config.json`, checked to describe a model of one of the `accepted`
    model types (`vaehub.models.auto` knows them all)."""
    path = resolve_file(name_or_path, CONFIG_NAME, hub_kwargs)
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable JSON config: {error}") from error
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in accepted:
        raise CheckpointError(
            f"{path} describes a model of type {model_type!r}, not a vaehub "
            f"{' or '.join(map(repr, accepted))} model; load it with the library it was saved by."
        )
    return config


def check_weights(
    name_or_path: str | os.PathLike, expected: dict[str, torch.Size], hub_kwargs: dict[str, Any]
) -> None:
    """Check that the weights file opens and that its tensors have the expected shapes.

    Args:
        expected: parameter name → shape, from a model built with the checkpoint's config.
    """
    path = resolve_file(name_or_path, WEIGHTS_NAME, hub_kwargs)
    try:
        with safe_open(path, framework="pt") as handle:
            shapes = {key: torch.Size(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(
            f"{path} is truncated or corrupt ({error}); save or download the model again."
        ) from error
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = [
        f"{key}: config gives {tuple(expected[key])}, file holds {tuple(shapes[key])}"
        for key in sorted(set(expected) & set(shapes))
        if expected[key] != shapes[key]
    ]
    if missing or unexpected or wrong:
        lines = (
            ([f"missing tensors: {', '.join(missing)}"] if missing else [])
            + ([f"unexpected tensors: {', '.join(unexpected)}"] if unexpected else [])
            + wrong
        )
        raise CheckpointError(
            f"{path} does not match the sizes in its config.json:\n  "
            + "\n  ".join(lines[:10])
            + "\nThe config and the weights come from different models; save the model again."
        )


def check_finite_weights(model: torch.nn.Module, name_or_path: str | os.PathLike) -> None:
    """Refuse a loaded model whose weights hold NaN or infinity, naming the tensors."""
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]
    if bad:
        raise CheckpointError(
            f"the weights of {name_or_path} hold NaN or infinite values in {len(bad)} "
            f"tensor{'s' if len(bad) > 1 else ''}: {', '.join(bad[:8])}"
            f"{', ...' if len(bad) > 8 else ''}. The training run that wrote them diverged; "
            "use an earlier checkpoint or train again (a lower learning rate, bf16 off)."
        )


# --- training checkpoints ---------------------------------------------------------------------

TRAINER_STATE_NAME = "trainer_state.json"  # transformers writes it last: a checkpoint's seal


def check_training_checkpoint(folder: str | os.PathLike, extra_files: dict[str, str]) -> None:
    """Check that a `checkpoint-N` folder written by the Trainer is complete and readable
    before a run resumes from it.

    Args:
        extra_files: file name → "json" or "torch", files that are checked when present
            (vaehub's objective state and encoder optimiser).
    Raises:
        CheckpointError: naming the file that is missing, truncated or unreadable, and the
            newest earlier checkpoint beside it that passes these checks (if any).
    """
    problem = _training_checkpoint_problem(os.fspath(folder), extra_files)
    if problem is None:
        return
    folder = os.fspath(folder)
    parent, name = os.path.split(os.path.abspath(folder))
    step = _checkpoint_step(name)
    earlier = sorted(
        (
            entry
            for entry in os.listdir(parent)
            if _checkpoint_step(entry) is not None
            and (step is None or _checkpoint_step(entry) < step)
        ),
        key=_checkpoint_step,
        reverse=True,
    )
    usable = next(
        (
            os.path.join(parent, entry)
            for entry in earlier
            if _training_checkpoint_problem(os.path.join(parent, entry), extra_files) is None
        ),
        None,
    )
    advice = (
        f"resume from the previous checkpoint instead: --resume_from_checkpoint {usable}"
        if usable
        else "there is no earlier complete checkpoint beside it: train from the start"
    )
    raise CheckpointError(f"cannot resume from {folder}: {problem}; {advice}.")


def newest_complete_checkpoint(
    folder: str | os.PathLike, extra_files: dict[str, str]
) -> str | None:
    """The `checkpoint-N` folder of `folder` with the largest N that passes the checks of
    `check_training_checkpoint`, or `None`."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return None
    found = sorted(
        (entry for entry in os.listdir(folder) if _checkpoint_step(entry) is not None),
        key=_checkpoint_step,
        reverse=True,
    )
    return next(
        (
            os.path.join(folder, entry)
            for entry in found
            if _training_checkpoint_problem(os.path.join(folder, entry), extra_files) is None
        ),
        None,
    )


def _checkpoint_step(name: str) -> int | None:
    prefix = "checkpoint-"
    digits = name[len(prefix) :]
    return int(digits) if name.startswith(prefix) and digits.isdigit() else None


def _training_checkpoint_problem(folder: str, extra_files: dict[str, str]) -> str | None:
    if not os.path.isdir(folder):
        return "it is not a folder"
    state = os.path.join(folder, TRAINER_STATE_NAME)
    if not os.path.isfile(state):
        return (
            f"it holds no {TRAINER_STATE_NAME}, which the Trainer writes last: the checkpoint "
            "was not finished"
        )
    checks = {TRAINER_STATE_NAME: "json", **extra_files}
    if os.path.isfile(os.path.join(folder, WEIGHTS_NAME)):
        checks[WEIGHTS_NAME] = "safetensors"
    # Every file transformers unpickles on resume: the optimiser's, the scheduler's, the
    # gradient scaler's and each process's random state.
    for filename in sorted(os.listdir(folder)):
        if filename in ("optimizer.pt", "scheduler.pt", "scaler.pt") or (
            filename.startswith("rng_state") and filename.endswith(".pth")
        ):
            checks[filename] = "torch"
    for filename, kind in checks.items():
        path = os.path.join(folder, filename)
        if not os.path.isfile(path):
            continue
        try:
            if kind == "json":
                with open(path, encoding="utf-8") as handle:
                    json.load(handle)
            elif kind == "safetensors":
                with safe_open(path, framework="pt") as handle:
                    for key in handle.keys():
                        handle.get_slice(key)
            else:
                # Tensors and plain containers only: a pickled object is refused, not run.
                # numpy arrays are allowed, as transformers allows them in rng_state.pth.
                from transformers.trainer_pt_utils import safe_globals

                with safe_globals():
                    torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any failure means the file cannot be used
            pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
            if pickled:
                # Not torch's own advice, which ends by suggesting weights_only=False.
                return (
                    f"{filename} holds a pickled Python object ({pickled.group(1)}), which "
                    "vaehub never unpickles since unpickling can run code; the Trainer writes "
                    "only tensors and plain values there, so the file was replaced or written "
                    "by other code"
                )
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            return (
                f"{filename} is truncated or unreadable ({type(error).__name__}: "
                f"{first_line[:200]})"
            )
    return None
