"""Loading the model a command works on, with no model code imported before it runs."""

from __future__ import annotations

import argparse
from typing import Any


def load_model(name_or_path: str) -> Any:
    """The vaehub model in a folder or Hub repository (`vaehub.models.auto.load_model`),
    imported when a command needs it, so that `vaehub --help` loads no model code."""
    from vaehub.models.auto import load_model as load

    return load(name_or_path)


def load_for_inference(args: argparse.Namespace) -> Any:
    """The vaehub model of a folder or Hub repository, for inference."""
    import torch

    from vaehub.utils import network

    network.set_hub_timeout(args.timeout)
    model = load_model(args.model).eval()
    if getattr(model, "tokenizer", False) is None:
        raise ValueError(f"{args.model} holds no tokenizer to write sentences with.")
    torch.manual_seed(args.seed)
    return model


def is_image_model(model: Any) -> bool:
    from vaehub.models.auto import modality_of

    return modality_of(model) == "image"
