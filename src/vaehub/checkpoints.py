"""Checks a saved model before transformers loads it, so that a bad folder gets an error
that names the folder or file and says what to do, instead of a traceback from deep inside
safetensors or a silently default-initialised model.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx2
import torch
from safetensors import SafetensorError, safe_open
from transformers.utils import cached_file

from vaehub import network

VAEHUB_MODEL_TYPES = ("text_vae", "delta_vae")
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


def _looks_like_local_path(name: str) -> bool:
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
    if os.path.exists(name) or _looks_like_local_path(name):
        raise CheckpointError(
            f"{name} is not a folder: give the folder a vaehub model was saved to."
        )
    try:
        return cached_file(name, filename, **{k: v for k, v in hub_kwargs.items() if v is not None})
    except (OSError, httpx2.HTTPError) as error:
        reason = network.explain(error, name) or str(error)
        raise CheckpointError(
            f"could not get {filename} of {name!r} "
            f"(revision {hub_kwargs.get('revision') or 'main'}): {reason}. "
            "Nothing local was changed."
        ) from error


def read_config_dict(
    name_or_path: str | os.PathLike, expected_model_type: str | None, hub_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The checkpoint's `config.json`, checked to describe a model of `expected_model_type`
    (`None`: any vaehub model)."""
    path = resolve_file(name_or_path, CONFIG_NAME, hub_kwargs)
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable JSON config: {error}") from error
    model_type = config.get("model_type") if isinstance(config, dict) else None
    accepted = VAEHUB_MODEL_TYPES if expected_model_type is None else (expected_model_type,)
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
