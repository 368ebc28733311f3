"""The one registry of vaehub's model types: each declared once, every table derived.

A `ModelType` names a model's config and model classes, its modality (what it reads), the
exact baseline it is measured against (the same decoder with no latent), whether it has a
latent at all, and what its model card files it under (task, tags, the metrics it shows).
The Auto registrations (`register_auto_classes`), the command line's choices, the card
tables of `vaehub.hub.cards` and the training recipes all read them from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from transformers import AutoConfig, AutoModel, PreTrainedConfig

from vaehub.models import checkpoints
from vaehub.models.image.configuration_delta_vae import DeltaVAEConfig
from vaehub.models.image.configuration_pixelcnn import PixelCNNConfig
from vaehub.models.image.modeling_delta_vae import DeltaVAEModel
from vaehub.models.image.modeling_pixelcnn import PixelCNNModel
from vaehub.models.linear.configuration_linear_vae import LinearVAEConfig
from vaehub.models.linear.modeling_linear_vae import LinearVAEModel
from vaehub.models.modeling_utils import VAEPreTrainedModel
from vaehub.models.text.configuration_text_lm import TextLMConfig
from vaehub.models.text.configuration_text_vae import TextVAEConfig
from vaehub.models.text.modeling_text_lm import TextLMModel
from vaehub.models.text.modeling_text_vae import TextVAEModel

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
    """One model type: what it is made of, what it reads, and how its card presents it."""

    config_class: type[PreTrainedConfig]
    model_class: type[VAEPreTrainedModel]
    modality: str
    has_latent: bool
    baseline: str | None  # the model type of its exact baseline; None for a baseline
    card_task: str
    card_tags: tuple[str, ...]
    card_metrics: tuple[CardMetric, ...]

    @property
    def name(self) -> str:
        return self.config_class.model_type


_DECLARED = (
    ModelType(
        TextVAEConfig, TextVAEModel, "text", True, "text_lm", "text-generation",
        ("vae", "text-vae", "posterior-collapse", "lstm"),
        (("nll", "nll", "NLL (nats/sentence)"), ("ppl", "perplexity", "PPL"), *_LATENT_METRICS),
    ),
    ModelType(
        TextLMConfig, TextLMModel, "text", False, None, "text-generation",
        ("language-model", "lstm", "vae-baseline"),
        (("nll", "nll", "NLL (nats/sentence, exact)"), ("ppl", "perplexity", "PPL")),
    ),
    ModelType(
        DeltaVAEConfig, DeltaVAEModel, "image", True, "pixelcnn",
        "unconditional-image-generation", ("vae", "delta-vae", "posterior-collapse", "pixelcnn"),
        (("nll", "nll", "NLL (nats/image)"), ("bits_per_dim", "bits_per_dim", "bits/dim"),
         *_LATENT_METRICS),
    ),
    ModelType(
        PixelCNNConfig, PixelCNNModel, "image", False, None, "unconditional-image-generation",
        ("pixelcnn", "vae-baseline"),
        (("nll", "nll", "NLL (nats/image, exact)"), ("bits_per_dim", "bits_per_dim", "bits/dim")),
    ),
    ModelType(
        LinearVAEConfig, LinearVAEModel, "vectors", True, None, "feature-extraction",
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
    for declared in MODEL_TYPES.values():
        AutoConfig.register(declared.name, declared.config_class, exist_ok=True)
        AutoModel.register(declared.config_class, declared.model_class, exist_ok=True)


def load_model(name_or_path: str | os.PathLike) -> VAEPreTrainedModel:
    """The vaehub model in a folder or Hub repository, whichever type it is. The config is
    read and checked first, so a folder of something else gets vaehub's own error."""
    config = checkpoints.read_config_dict(name_or_path, tuple(MODEL_TYPES), {})
    return model_type(config["model_type"]).model_class.from_pretrained(name_or_path)
