"""The training recipe behind `vaehub train`: build a model (a paper preset with sizes
overridden, a linear VAE sized by its data, or a saved model), train it with `VAETrainer`,
measure the validation and test splits into the model's results, and save it with them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from vaehub import hub
from vaehub.data.sources import (
    IMAGE_DATASET_NAMES,
    IMAGE_DATASETS,
    VECTOR_DATASETS,
    DataArguments,
    first_examples,
    load_corpus,
    load_images,
    vector_record,
    vector_source,
)
from vaehub.models.auto import MODEL_TYPES as MODEL_TYPE_TABLE
from vaehub.models.auto import model_types
from vaehub.models.text.configuration_text_vae import TEXT_DECODER_FIELDS, TEXT_PRESETS

if TYPE_CHECKING:
    from transformers import HfArgumentParser

    from vaehub.training.arguments import VAETrainingArguments

TEXT_MODEL_TYPES = model_types(modality="text")
IMAGE_MODEL_TYPES = model_types(modality="image")
VECTOR_MODEL_TYPES = model_types(modality="vectors")
MODEL_TYPES = TEXT_MODEL_TYPES + IMAGE_MODEL_TYPES + VECTOR_MODEL_TYPES
# The models without a latent: the exact baselines of the VAEs beside them.
BASELINE_OF = {t.name: t.baseline for t in MODEL_TYPE_TABLE.values() if t.baseline}


def flag_text(value: Any) -> str:
    """One value of a `vaehub train` flag as the command line writes it: `True`, `32`,
    `3e-3`, `0.03125`, a dict as JSON (transformers reads `{...}` strings as JSON)."""
    if isinstance(value, float) and math.isfinite(value):
        # The shorter of repr and a compact scientific form: a learning rate reads 3e-3, as
        # such flags are written by hand (and as the tables' commands always wrote them).
        plain = repr(value)
        mantissa, _, exponent = f"{value:e}".partition("e")
        scientific = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return scientific if len(scientific) < len(plain) and float(scientific) == value else plain
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def settings_flags(settings: Mapping[str, Any]) -> list[str]:
    """`settings` (field name → value of `ModelArguments`, `DataArguments` or
    `VAETrainingArguments`) as `vaehub train` flags, in their order:
    `{"beta": 0.2, "final_iw_nll_splits": ["test"]}` → `["--beta", "0.2",
    "--final_iw_nll_splits", "test"]`. A list gives its items after one flag."""
    flags: list[str] = []
    for name, value in settings.items():
        if value is None:
            # argparse has no spelling of None for most fields: leaving it out means it.
            raise ValueError(f"{name}=None has no flag: leave {name} out for its default.")
        items = value if isinstance(value, (list, tuple)) else [value]
        flags += [f"--{name}", *map(flag_text, items)]
    return flags


# He et al. 2019's optimisation of the text VAE (their text experiments); 0.03125 = 1.0 · 0.5⁵
# stops the decays after the fifth. `paper_training` puts these under the settings and flags
# given (`parse_settings`), so that one given explicitly wins.
PAPER_TRAINING_SETTINGS: Mapping[str, Any] = MappingProxyType({
    "optim": "sgd",
    "learning_rate": 1.0,
    "per_device_train_batch_size": 32,
    "max_grad_norm": 5.0,
    "eval_strategy": "epoch",
    "lr_scheduler_type": "reduce_lr_on_plateau",
    "lr_scheduler_kwargs": {"factor": 0.5, "patience": 2, "min_lr": 0.03125},
})  # fmt: skip
PAPER_TRAINING = tuple(settings_flags(PAPER_TRAINING_SETTINGS))


@dataclass
class ModelArguments:
    """Which model to train: a paper preset, with any size overridden, or a saved model."""

    model_type: str = field(
        default="text_vae",
        metadata={
            "help": "text_vae, text_lm (its decoder alone, exact NLL), delta_vae (images), "
            "pixelcnn (its decoder alone, exact NLL) or linear_vae (vectors: Lucas et al.'s "
            "linear VAE, exact NLL beside its IW-NLL; with --hidden_sizes, the deep VAE with "
            "its Gaussian decoder).",
            "choices": MODEL_TYPES,
        },
    )
    preset: str = field(
        default="ptb",
        metadata={"help": "Text paper configuration.", "choices": tuple(TEXT_PRESETS)},
    )
    paper_training: bool = field(
        default=False,
        metadata={
            "help": "Text: also train as He et al. did: "
            + " ".join(PAPER_TRAINING)
            + " (SGD lr 1.0, batch 32, gradient norm clip 5, lr ×0.5 after 2 evaluations "
            "without improvement, at most 5 times). Flags given explicitly win."
        },
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue from a saved model folder instead."}
    )
    latent_size: int | None = field(default=None, metadata={"help": "Overrides the preset."})
    embedding_size: int | None = field(default=None, metadata={"help": "Overrides the preset."})
    encoder_hidden_size: int | None = field(
        default=None, metadata={"help": "Overrides the preset."}
    )
    decoder_hidden_size: int | None = field(
        default=None, metadata={"help": "Overrides the preset."}
    )
    prior: str | None = field(default=None, metadata={"help": "standard, constrained or ar1."})
    committed_rate: float | None = field(
        default=None, metadata={"help": "δ in nats, for prior=constrained or ar1."}
    )
    posterior: str | None = field(
        default=None, metadata={"help": "q(z|x): gaussian, planar, iaf or auxiliary."}
    )
    flow_length: int | None = field(
        default=None, metadata={"help": "Flow steps, for posterior=planar or iaf."}
    )
    word_dropout: float | None = field(default=None, metadata={"help": "Bowman's word dropout."})
    decoder_embedding_dropout: float | None = field(
        default=None, metadata={"help": "Dropout on the decoder's input embeddings (0.5)."}
    )
    decoder_output_dropout: float | None = field(
        default=None, metadata={"help": "Dropout on the decoder LSTM's outputs (0.5)."}
    )
    max_sequence_length: int | None = field(
        default=None, metadata={"help": "Longest sentence in tokens."}
    )
    ar1_alpha: float | None = field(default=None, metadata={"help": "AR(1) α, for prior=ar1."})
    latent_length: int | None = field(
        default=None,
        metadata={
            "help": "Text δ-VAE (prior=ar1): the sentence length, in decoder steps, at which "
            "the committed rate δ holds (shorter sentences commit less, longer more). "
            "Default: the longest, max_sequence_length − 1."
        },
    )
    encoder_type: str | None = field(
        default=None, metadata={"help": "δ-VAE encoder: anticausal or resnet."}
    )
    encoder_channels: int | None = field(default=None, metadata={"help": "δ-VAE encoder width."})
    encoder_layers: int | None = field(default=None, metadata={"help": "δ-VAE encoder depth."})
    decoder_channels: int | None = field(default=None, metadata={"help": "PixelCNN width."})
    decoder_layers: int | None = field(default=None, metadata={"help": "PixelCNN gated layers."})
    observation_variance: float | None = field(
        default=None,
        metadata={"help": "linear_vae: σ² of p(x|z) = N(f(z), σ²I), fixed or initial (0.1)."},
    )
    learn_observation_variance: bool | None = field(
        default=None,
        metadata={"help": "linear_vae: train σ² too (maximum-likelihood pPCA); default fixed."},
    )
    hidden_sizes: list[int] | None = field(
        default=None,
        metadata={
            "help": "linear_vae: widths of the hidden layers of an MLP encoder and decoder "
            "(the deep VAE, e.g. --hidden_sizes 256); default none, the linear VAE."
        },
    )
    init_decoder_from: str | None = field(
        default=None,
        metadata={
            "help": "A trained text_lm or pixelcnn folder whose decoder the VAE starts from "
            "(Li et al. 2019's pretraining); its sizes and tokenizer are taken."
        },
    )
    baseline: str | None = field(
        default=None,
        metadata={
            "help": "A trained text_lm or pixelcnn folder: its exact NLL on the same splits is "
            "recorded beside the VAE's IW-NLL (baseline_nll, delta_nll, nats_read)."
        },
    )
    reset_decoder: bool = field(
        default=False,
        metadata={
            "help": "With --model_name_or_path (a text VAE): keep its encoder and posterior "
            "head, re-initialise its decoder (Li et al. 2019: an autoencoder-pretrained "
            "encoder, a fresh decoder)."
        },
    )

    TEXT_FIELDS = (
        "embedding_size",
        "encoder_hidden_size",
        "decoder_hidden_size",
        "word_dropout",
        "decoder_embedding_dropout",
        "decoder_output_dropout",
        "max_sequence_length",
        "latent_length",
    )
    IMAGE_FIELDS = (
        "encoder_type",
        "encoder_channels",
        "encoder_layers",
        "decoder_channels",
        "decoder_layers",
    )
    SHARED_FIELDS = (
        "latent_size", "prior", "committed_rate", "ar1_alpha", "posterior", "flow_length",
    )  # fmt: skip
    # The linear VAE's: N(0, I) prior and a Gaussian posterior, which LinearVAEConfig checks.
    VECTOR_FIELDS = (
        "latent_size", "prior", "posterior", "observation_variance",
        "learn_observation_variance", "hidden_sizes",
    )  # fmt: skip
    VECTOR_ONLY = ("observation_variance", "learn_observation_variance", "hidden_sizes")

    # The latent and encoder fields, which a model without a latent does not have.
    LATENT_FIELDS = (
        "encoder_hidden_size", "encoder_type", "encoder_channels", "encoder_layers",
        "latent_length",
    )  # fmt: skip

    def overrides(self) -> dict[str, Any]:
        """The sizes given on the command line, for this model type; others refused."""
        if self.model_type in VECTOR_MODEL_TYPES:
            return self._vector_overrides()
        text = self.model_type in TEXT_MODEL_TYPES
        own = self.TEXT_FIELDS if text else self.IMAGE_FIELDS
        other = self.IMAGE_FIELDS if text else self.TEXT_FIELDS
        if self.model_type in BASELINE_OF.values():
            other = other + self.SHARED_FIELDS + self.LATENT_FIELDS
            own = tuple(n for n in own if n not in self.LATENT_FIELDS)
            if self.init_decoder_from or self.baseline:
                flag = "init_decoder_from" if self.init_decoder_from else "baseline"
                raise ValueError(f"--{flag} is for a VAE; {self.model_type} is the baseline.")
        else:
            own = own + self.SHARED_FIELDS
        stray = [n for n in other + self.VECTOR_ONLY if getattr(self, n) is not None]
        if stray:
            raise ValueError(f"--{stray[0]} is not a {self.model_type} setting.")
        return {n: getattr(self, n) for n in own if getattr(self, n) is not None}

    def _vector_overrides(self) -> dict[str, Any]:
        for flag in ("init_decoder_from", "baseline"):
            if getattr(self, flag):
                raise ValueError(
                    f"--{flag} is for a VAE with a decoder trained alone; linear_vae has its "
                    "exact NLL instead (exact_nll in its evaluation): drop it."
                )
        others = self.TEXT_FIELDS + self.IMAGE_FIELDS + self.SHARED_FIELDS
        stray = [n for n in others if n not in self.VECTOR_FIELDS and getattr(self, n) is not None]
        if stray:
            raise ValueError(f"--{stray[0]} is not a {self.model_type} setting.")
        return {n: getattr(self, n) for n in self.VECTOR_FIELDS if getattr(self, n) is not None}


def run_training(model_args: ModelArguments, data_args: DataArguments, training_args: Any) -> int:
    """Build, train, evaluate and save as the arguments say; returns 0."""
    from datasets import Dataset
    from transformers import set_seed

    from vaehub.data.batching import BucketedStream
    from vaehub.data.corpora import first_texts
    from vaehub.data.text import TextCollator, tokenize_corpus
    from vaehub.models.text.configuration_text_lm import TextLMConfig
    from vaehub.models.text.configuration_text_vae import TextVAEConfig
    from vaehub.models.text.decoding import record_length_statistics
    from vaehub.models.text.modeling_text_lm import TextLMModel
    from vaehub.models.text.modeling_text_vae import TextVAEModel
    from vaehub.models.text.tokenization import build_tokenizer

    # Before any model is built, so that --seed fixes its initial weights too.
    set_seed(training_args.seed)
    if model_args.paper_training and model_args.model_type not in TEXT_MODEL_TYPES:
        raise ValueError(
            "--paper_training is He et al.'s text VAE optimisation; drop it for images."
        )
    overrides = model_args.overrides()
    if model_args.model_type in VECTOR_MODEL_TYPES:
        return _train_vectors(model_args, data_args, training_args, overrides)
    if model_args.model_type in IMAGE_MODEL_TYPES:
        return _train_images(model_args, data_args, training_args, overrides)
    if data_args.dataset in IMAGE_DATASETS:
        raise ValueError(
            f"--dataset {data_args.dataset} holds images: use --model_type delta_vae or pixelcnn "
            "(or linear_vae, which reads them as vectors of grey levels)."
        )
    if data_args.dataset in VECTOR_DATASETS:
        raise ValueError(
            f"--dataset {data_args.dataset} holds vectors: use --model_type linear_vae."
        )
    if data_args.streaming:
        if training_args.objective == "aggressive":
            raise ValueError(
                "--objective aggressive draws random training batches for its inner loop, "
                "which a stream cannot give: drop --streaming."
            )
        if training_args.max_steps is None or training_args.max_steps <= 0:
            raise ValueError("--streaming has no epochs to count: give --max_steps.")
    corpus = load_corpus(data_args)
    cls = TextVAEModel if model_args.model_type == "text_vae" else TextLMModel
    if model_args.reset_decoder and not (
        model_args.model_name_or_path and cls is TextVAEModel
    ):
        raise ValueError(
            "--reset_decoder re-initialises the decoder of a saved text VAE: give the VAE with "
            "--model_name_or_path (and --model_type text_vae)."
        )
    if model_args.model_name_or_path:
        model = _load(cls, model_args.model_name_or_path)
        if model.tokenizer is None:
            raise ValueError(f"{model_args.model_name_or_path} holds no tokenizer to train with.")
        continue_with(model, model_args)
    elif model_args.init_decoder_from:
        decoder = _load(TextLMModel, model_args.init_decoder_from)
        # The decoder's sizes are the language model's; a size given that differs from
        # them is refused by from_decoder, naming it.
        fields = {k: getattr(decoder.config, k) for k in TEXT_DECODER_FIELDS}
        config = TextVAEConfig.from_preset(model_args.preset, **{**fields, **overrides})
        model = TextVAEModel.from_decoder(decoder, config)
        if model.tokenizer is None:
            raise ValueError(f"{model_args.init_decoder_from} holds no tokenizer to train with.")
    else:
        texts = (
            first_texts(corpus["train"], data_args.vocab_examples)
            if data_args.streaming
            else corpus["train"]["text"]
        )
        tokenizer = build_tokenizer(
            texts,
            vocab_size=data_args.vocab_size,
            min_frequency=data_args.min_frequency,
        )
        config_class = TextVAEConfig if cls is TextVAEModel else TextLMConfig
        model = cls(
            config_class.from_preset(model_args.preset, vocab_size=len(tokenizer), **overrides)
        )
        model.tokenizer = tokenizer
    data = tokenize_corpus(
        corpus, model.tokenizer, model.config.max_sequence_length,
        load_from_cache_file=False if data_args.overwrite_cache else None,
        num_proc=data_args.preprocessing_num_workers,
    )  # fmt: skip
    if data_args.streaming:
        # The statistics of the examples the vocabulary was built from: the stream is not
        # read twice.
        sample = tokenize_corpus(
            Dataset.from_dict({"text": texts}), model.tokenizer, model.config.max_sequence_length
        )
        lengths = sample["length"]
        data["train"] = BucketedStream(
            data["train"].shuffle(
                seed=training_args.seed, buffer_size=data_args.shuffle_buffer_size
            ),
            training_args.per_device_train_batch_size,
            data_args.shuffle_buffer_size,
            training_args.seed,
        )
    else:
        lengths = data["train"]["length"]
    # Decoding stops at a length the training sentences have (words and </s>, <s> not).
    record_length_statistics(model, [n - 1 for n in lengths])
    dataset = data_args.record()
    baseline = _load(TextLMModel, model_args.baseline) if model_args.baseline else None
    train_and_record(model, training_args, data, TextCollator(), dataset, baseline)
    return 0


# What a saved text model may change when its training continues: the training-time
# regularisers, which leave the weights' meaning alone. A size would not fit the weights.
CONTINUED_FIELDS = ("word_dropout", "decoder_embedding_dropout", "decoder_output_dropout")


def continue_with(model: Any, model_args: ModelArguments) -> None:
    """Apply to a loaded text model what `model_args` change for its next run: word dropout
    (Bowman et al. 2016) and the decoder's dropouts, and with `reset_decoder` a
    re-initialised decoder (Li et al. 2019). A size given that differs from the model's is
    refused, naming it."""
    for name, value in model_args.overrides().items():
        if name in CONTINUED_FIELDS:
            model.set_regularisation(**{name: value})
        elif getattr(model.config, name, value) != value:
            raise ValueError(
                f"--{name} {value}: {model_args.model_name_or_path} has {name}="
                f"{getattr(model.config, name)!r}, and a saved model's sizes are its weights'; "
                f"drop --{name}, or train a new model."
            )
    if model_args.reset_decoder:
        model.reset_decoder()
    # The saved model's results describe it, not what this run makes of it: its
    # checkpoints would carry them until the run measures its own.
    model.evaluation_results = {}


def _load(cls: Any, path: str) -> Any:
    """`cls.from_pretrained(path)`, with an error that names the kind of model expected."""
    from vaehub.models.checkpoints import CheckpointError

    try:
        return cls.from_pretrained(path)
    except CheckpointError as error:
        raise CheckpointError(f"expected a {cls.config_class.model_type} model: {error}") from None


def train_and_record(
    model: Any,
    training_args: Any,
    splits: dict,
    collator: Any,
    dataset: dict[str, str],
    baseline: Any = None,
) -> Any:
    """Train on `splits["train"]` (validating on `splits["validation"]`), measure the
    validation and test splits into the model's results (with `baseline`'s exact NLL
    beside the IW-NLL when given), save it with them in `training_args.output_dir`;
    returns the trainer."""
    from vaehub.training.trainer import VAETrainer

    trainer = VAETrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=collator,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    record_evaluation(model, trainer, training_args, splits, dataset, baseline)
    if trainer.is_world_process_zero():
        model.save_pretrained(training_args.output_dir)
    return trainer


def _train_images(
    model_args: ModelArguments, data_args: DataArguments, training_args, overrides: dict
) -> int:
    from vaehub.data.images import ImageCollator
    from vaehub.models.image.configuration_delta_vae import DeltaVAEConfig
    from vaehub.models.image.configuration_pixelcnn import PixelCNNConfig
    from vaehub.models.image.modeling_delta_vae import DeltaVAEModel
    from vaehub.models.image.modeling_pixelcnn import PixelCNNModel

    if data_args.dataset not in IMAGE_DATASETS:
        raise ValueError(
            f"--model_type {model_args.model_type} trains on images: --dataset "
            f"{' / '.join(IMAGE_DATASETS)}, not {data_args.dataset}."
        )
    splits = {
        s: load_images(data_args.dataset, data_args.data_dir, s)
        for s in ("train", "validation", "test")
    }
    splits = first_examples(splits, data_args)
    cls = DeltaVAEModel if model_args.model_type == "delta_vae" else PixelCNNModel
    size = int(splits["train"][0]["pixel_values"].shape[-1])
    if model_args.model_name_or_path:
        model = _load(cls, model_args.model_name_or_path)
    elif model_args.init_decoder_from:
        decoder = _load(PixelCNNModel, model_args.init_decoder_from)
        model = DeltaVAEModel.from_decoder(decoder, **overrides)
    else:
        config_class = DeltaVAEConfig if cls is DeltaVAEModel else PixelCNNConfig
        model = cls(config_class(image_size=size, **overrides))
    baseline = _load(PixelCNNModel, model_args.baseline) if model_args.baseline else None
    train_and_record(
        model,
        training_args,
        splits,
        ImageCollator(),
        IMAGE_DATASET_NAMES[data_args.dataset],
        baseline,
    )
    return 0


def _train_vectors(
    model_args: ModelArguments, data_args: DataArguments, training_args, overrides: dict
) -> int:
    """The linear VAE on vectors (`vaehub.data.vectors`); `input_size` is the data's D."""
    from vaehub.data.vectors import load_vectors
    from vaehub.models.linear.configuration_linear_vae import LinearVAEConfig
    from vaehub.models.linear.modeling_linear_vae import LinearVAEModel, VectorCollator

    if data_args.streaming:
        raise ValueError("--streaming reads text; vectors are read whole: drop it.")
    kind, where = vector_source(data_args)
    splits = {s: load_vectors(kind, where, s) for s in ("train", "validation", "test")}
    splits = first_examples(splits, data_args)
    size = int(splits["train"][0]["inputs"].shape[-1])
    if model_args.model_name_or_path:
        model = _load(LinearVAEModel, model_args.model_name_or_path)
        if overrides:
            raise ValueError(
                f"--{next(iter(overrides))} would change the saved model "
                f"{model_args.model_name_or_path}: drop it to continue training as it is."
            )
        if model.config.input_size != size:
            raise ValueError(
                f"{model_args.model_name_or_path} reads vectors of input_size="
                f"{model.config.input_size}, but {where} holds vectors of {size} values."
            )
    else:
        model = LinearVAEModel(LinearVAEConfig(input_size=size, **overrides))
    train_and_record(model, training_args, splits, VectorCollator(), vector_record(kind, where))
    return 0


def record_evaluation(
    model: Any,
    trainer: Any,
    training_args: Any,
    splits: dict,
    dataset: dict[str, str],
    baseline: Any = None,
) -> None:
    """Evaluate the validation and test splits into the model's results; with a baseline
    (a model without a latent), its exact NLL on the same split beside the IW-NLL."""
    model.training_summary = hub.training_summary(training_args, trainer.state, dataset["name"])
    for split in [s for s in ("validation", "test") if s in splits]:
        prefix = f"{split}_"
        metrics = trainer.evaluate(splits[split], metric_key_prefix=split)
        metrics = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
        measured = "nll" in metrics or split in training_args.final_iw_nll_splits
        if baseline is not None and measured:
            metrics = _beside_baseline(metrics, baseline, trainer, splits[split])
        model.evaluation_results[split] = {
            "split": split,
            "dataset": dataset,
            "iw_samples": training_args.iw_samples if "nll" in metrics else None,
            "metrics": metrics,
        }


def _beside_baseline(metrics: dict, baseline: Any, trainer: Any, split: Any) -> dict:
    from vaehub.evaluation.metrics import check_baseline, compare_to_baseline, evaluate_exact

    check_baseline(trainer.model, baseline)
    if "nll" not in metrics:
        raise ValueError("--baseline compares IW-NLLs: evaluate with --eval_iw_nll True.")
    baseline.to(trainer.args.device)
    exact = evaluate_exact(baseline, trainer._evaluation_batches(split))
    return compare_to_baseline(metrics, exact)


def argument_classes() -> tuple[type, type, type]:
    """`ModelArguments`, `DataArguments`, `VAETrainingArguments`: what `run_training` takes."""
    from vaehub.training.arguments import VAETrainingArguments

    return ModelArguments, DataArguments, VAETrainingArguments


def argument_parser() -> HfArgumentParser:
    """`vaehub train`'s parser: the fields of `argument_classes()` (every
    `TrainingArguments` field among them), one flag each."""
    from transformers import HfArgumentParser

    return HfArgumentParser(argument_classes(), prog="vaehub train")


_NO_SETTINGS: Mapping[str, Any] = MappingProxyType({})


def parse_settings(
    settings: Mapping[str, Any] = _NO_SETTINGS, flags: Sequence[str] = ()
) -> argparse.Namespace:
    """Every field of the three argument classes, unchecked by their `__post_init__`:
    `settings` (field name → typed value, e.g. `{"objective": "beta", "beta": 0.2}`) over
    the fields' defaults, `flags` (`vaehub train` flags, e.g. `["--beta", "0.4"]`) over
    `settings`, and `PAPER_TRAINING_SETTINGS` under both where `paper_training` is set.

    Raises:
        ValueError: a name in `settings` that is no field, a value outside its choices, or
            a flag that is none of the fields'.
        SystemExit: a flag's value argparse refuses (its message on stderr), as
            `vaehub train` always has.
    """
    parser = argument_parser()
    _check_settings(parser, settings)
    # The settings become the parser's defaults, so that the flags parse on top of them and
    # keep their own types (argparse converts only string defaults, ours are typed).
    # Copies: a run's arguments must not share a list or dict with a module's recipe.
    parser.set_defaults(**copy.deepcopy(dict(settings)))
    namespace = _parse_flags(parser, flags)
    if namespace.paper_training:
        parser.set_defaults(**copy.deepcopy({**PAPER_TRAINING_SETTINGS, **settings}))
        namespace = _parse_flags(parser, flags)
    return namespace


def _parse_flags(parser: HfArgumentParser, flags: Sequence[str]) -> argparse.Namespace:
    namespace, remaining = parser.parse_known_args(list(flags))
    if remaining:
        # A ValueError, as HfArgumentParser.parse_args_into_dataclasses raises it: `vaehub`
        # prints it as one line and exits with status 1.
        raise ValueError(
            f"Some specified arguments are not used by the HfArgumentParser: {remaining}"
        )
    return namespace


def _check_settings(parser: HfArgumentParser, settings: Mapping[str, Any]) -> None:
    # argparse checks a flag's choices, never a default's: a typo in a recipe would
    # otherwise reach the model or the trainer, or pass unnoticed.
    actions = {action.dest: action for action in parser._actions if action.dest != "help"}
    unknown = [name for name in settings if name not in actions]
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)}: not a field of ModelArguments, DataArguments or "
            "VAETrainingArguments (a `vaehub train` flag)."
        )
    for name, value in settings.items():
        choices = actions[name].choices
        if choices is not None and value not in choices:
            raise ValueError(
                f"{name}={value!r} is not valid: choose from {', '.join(map(str, choices))}."
            )


def build_arguments(
    settings: Mapping[str, Any] = _NO_SETTINGS, flags: Sequence[str] = ()
) -> tuple[ModelArguments, DataArguments, VAETrainingArguments]:
    """The three argument objects `run_training` takes, from `settings` and `flags` as
    `parse_settings` combines them; each checked by its own `__post_init__`."""
    namespace = vars(parse_settings(settings, flags))
    return tuple(  # type: ignore[return-value]
        dtype(**{f.name: namespace[f.name] for f in fields(dtype) if f.init})
        for dtype in argument_classes()
    )


@lru_cache(maxsize=1)
def _default_settings() -> Mapping[str, Any]:
    return MappingProxyType(_as_json(vars(parse_settings())))


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    # What a JSON file gives back (lists for tuples, strings for enums), so that recorded
    # settings compare equal to the same settings computed again.
    return json.loads(json.dumps(values, default=str))


def chosen_settings(
    settings: Mapping[str, Any] = _NO_SETTINGS, flags: Sequence[str] = ()
) -> dict[str, Any]:
    """What `settings` and `flags` choose, as JSON values: every field `settings` names
    and every other one the flags (or `paper_training`) set to other than its default,
    in `settings`' order, then the fields'. Two runs with equal choices train alike."""
    parsed = _as_json(vars(parse_settings(settings, flags)))
    defaults = _default_settings()
    chosen = {name: parsed[name] for name in settings}
    chosen.update((k, v) for k, v in parsed.items() if k not in chosen and v != defaults[k])
    return chosen


def changed_settings(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The fields whose values differ between two `chosen_settings`, as `name: old → new`
    (a field one of them leaves out has its default)."""
    defaults = _default_settings()
    missing = object()
    changed = []
    for name in dict.fromkeys([*before, *after]):
        old = before.get(name, defaults.get(name, missing))
        new = after.get(name, defaults.get(name, missing))
        if old != new:
            changed.append(f"{name}: {_shown(old, missing)} → {_shown(new, missing)}")
    return changed


def _shown(value: Any, missing: object) -> str:
    if value is missing:
        return "(no such setting)"
    # As the command line writes it (3e-3, True); a list or dict as JSON.
    if isinstance(value, (list, dict)) or value is None:
        return json.dumps(value)
    return flag_text(value)


def command_argv(command: str) -> list[str]:
    """The flags of a recorded `vaehub train ...` command line (shell-quoted, or, as the
    tables wrote it before settings.json, words joined by spaces)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return words[2:] if words[:2] == ["vaehub", "train"] else words


def chosen_by_command(command: str) -> dict[str, Any] | None:
    """`chosen_settings` of a recorded `vaehub train` command, or None where today's
    parser refuses it (a flag since renamed, a value no longer valid)."""
    try:
        # argparse reports a refused flag on stderr before it exits: not our user's error.
        with contextlib.redirect_stderr(io.StringIO()):
            return chosen_settings(flags=command_argv(command))
    except (SystemExit, ValueError):
        return None


def train_in_folder(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: VAETrainingArguments,
    command: str,
) -> int:
    """`run_training`, holding `training_args.output_dir`'s lock: one run per output
    folder, since a second would mix its checkpoints into the first's. `command` names the
    run in the lock, for whoever finds the folder held."""
    if os.environ.get("RANK", "0") != "0":
        return run_training(model_args, data_args, training_args)
    from vaehub.utils.safe_io import folder_lock

    with folder_lock(training_args.output_dir, command):
        return run_training(model_args, data_args, training_args)


def train_with_flags(argv: Sequence[str]) -> int:
    """Train as `vaehub train ARGV` does: the flags of `ModelArguments`, `DataArguments` and
    `VAETrainingArguments` (every `TrainingArguments` flag), one run per output folder."""
    argv = list(argv)
    return train_in_folder(*build_arguments(flags=argv), "vaehub train " + shlex.join(argv))
