"""The one registry of vaehub's model types: each declared once, every table derived.

A `ModelType` names a model's config and model classes, its modality (what it reads), the
exact baseline it is measured against (the same decoder with no latent), whether it has a
latent at all, and what its model card files it under (task, tags, the metrics it shows).
The Auto registrations (`register_auto_classes`), the command line's choices, the card
tables of `vaehub.hub.cards` and the training recipes all read them from here.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedConfig

    from vaehub.models.modeling_utils import VAEPreTrainedModel

MODALITIES = ("text", "image", "vectors")

# (key in the evaluation results, model-index metric type, the card's column name)
CardMetric = tuple[str, str, str]
_LATENT_METRICS: tuple[CardMetric, ...] = (
    ("kl", "kl", "KL (nats)"),
    ("mi", "mutual_information", "MI (nats)"),
    ("active_units", "active_units", "active units"),
)


@dataclass(frozen=True)
class ModelType:
    """One model type: what it is made of, what it reads, and how its card presents it.

    The config and model classes are named by where they live (`"module:Class"`) and
    imported when first asked for: the command line reads the table (`vaehub train --help`'s
    choices) without loading every model. `tests/test_interface.py` checks that each
    class's `model_type` is the name declared here.
    """

    name: str
    config_path: str
    model_path: str
    modality: str
    has_latent: bool
    baseline: str | None  # the model type of its exact baseline; None for a baseline
    card_task: str
    card_tags: tuple[str, ...]
    card_metrics: tuple[CardMetric, ...]

    @property
    def config_class(self) -> type[PreTrainedConfig]:
        return _resolve(self.config_path)

    @property
    def model_class(self) -> type[VAEPreTrainedModel]:
        return _resolve(self.model_path)


def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(f"vaehub.models.{module}"), name)


_DECLARED = (
    ModelType(
        "text_vae", "text.configuration_text_vae:TextVAEConfig",
        "text.modeling_text_vae:TextVAEModel", "text", True, "text_lm", "text-generation",
        ("vae", "text-vae", "posterior-collapse", "lstm"),
        (("nll", "nll", "NLL (nats/sentence)"), ("ppl", "perplexity", "PPL"), *_LATENT_METRICS),
    ),
    ModelType(
        "text_lm", "text.configuration_text_lm:TextLMConfig",
        "text.modeling_text_lm:TextLMModel", "text", False, None, "text-generation",
        ("language-model", "lstm", "vae-baseline"),
        (("nll", "nll", "NLL (nats/sentence, exact)"), ("ppl", "perplexity", "PPL")),
    ),
    ModelType(
        "delta_vae", "image.configuration_delta_vae:DeltaVAEConfig",
        "image.modeling_delta_vae:DeltaVAEModel", "image", True, "pixelcnn",
        "unconditional-image-generation", ("vae", "delta-vae", "posterior-collapse", "pixelcnn"),
        (("nll", "nll", "NLL (nats/image)"), ("bits_per_dim", "bits_per_dim", "bits/dim"),
         *_LATENT_METRICS),
    ),
    ModelType(
        "pixelcnn", "image.configuration_pixelcnn:PixelCNNConfig",
        "image.modeling_pixelcnn:PixelCNNModel", "image", False, None,
        "unconditional-image-generation", ("pixelcnn", "vae-baseline"),
        (("nll", "nll", "NLL (nats/image, exact)"), ("bits_per_dim", "bits_per_dim", "bits/dim")),
    ),
    ModelType(
        "linear_vae", "linear.configuration_linear_vae:LinearVAEConfig",
        "linear.modeling_linear_vae:LinearVAEModel", "vectors", True, None, "feature-extraction",
        ("vae", "linear-vae", "posterior-collapse", "ppca"),
        (("nll", "nll", "NLL (nats/example)"), *_LATENT_METRICS),
    ),
)

MODEL_TYPES: dict[str, ModelType] = {declared.name: declared for declared in _DECLARED}


def model_type(name: str | None) -> ModelType:
    """The declared model type called `name`; a `ValueError` naming the known ones otherwise."""
    if name not in MODEL_TYPES:
        raise ValueError(
            f"{name!r} is not a vaehub model type: expected one of {', '.join(MODEL_TYPES)}."
        )
    return MODEL_TYPES[name]


def model_types(modality: str | None = None, has_latent: bool | None = None) -> tuple[str, ...]:
    """The names of the model types of a modality and/or with (or without) a latent."""
    return tuple(
        name
        for name, declared in MODEL_TYPES.items()
        if (modality is None or declared.modality == modality)
        and (has_latent is None or declared.has_latent == has_latent)
    )


def type_of(model_or_config: Any) -> ModelType:
    """The declared type of a model, or of a config object or dict."""
    config = getattr(model_or_config, "config", model_or_config)
    name = config.get("model_type") if isinstance(config, dict) else config.model_type
    return model_type(name)


def modality_of(model_or_config: Any) -> str:
    """`"text"`, `"image"` or `"vectors"`: what a model (or config) reads."""
    return type_of(model_or_config).modality


def register_auto_classes() -> None:
    """Make `AutoConfig` and `AutoModel` load every vaehub model type."""
    from transformers import AutoConfig, AutoModel

    for declared in MODEL_TYPES.values():
        AutoConfig.register(declared.name, declared.config_class, exist_ok=True)
        AutoModel.register(declared.config_class, declared.model_class, exist_ok=True)


def load_model(name_or_path: str | os.PathLike) -> VAEPreTrainedModel:
    """The vaehub model in a folder or Hub repository, whichever type it is. The config is
    read and checked first, so a folder of something else gets vaehub's own error."""
    from vaehub.models import checkpoints

    config = checkpoints.read_config_dict(name_or_path, tuple(MODEL_TYPES), {})
    return model_type(config["model_type"]).model_class.from_pretrained(name_or_path)
