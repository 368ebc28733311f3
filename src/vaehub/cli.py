"""The `vaehub` command: `demo`, `train`, `evaluate`, `generate`, `interpolate`, `push`, `pull`
and `card`.

`vaehub train` parses `ModelArguments`, `DataArguments` and `VAETrainingArguments` with
`HfArgumentParser`, so every `TrainingArguments` flag works (`--learning_rate`,
`--num_train_epochs`, `--bf16`, `--resume_from_checkpoint`, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vaehub import hub

TEXT_PRESETS = ("ptb", "yahoo", "yelp", "synthetic")
TEXT_DATASETS = ("ptb", "files", "synthetic")
IMAGE_DATASETS = ("mnist", "omniglot", "digits")
# He et al.'s optimisation of the text VAE (SPEC §5); 0.03125 = 1.0 · 0.5⁵ stops the decays
# after the fifth.
PAPER_TRAINING = (
    "--optim", "sgd",
    "--learning_rate", "1.0",
    "--per_device_train_batch_size", "32",
    "--max_grad_norm", "5.0",
    "--eval_strategy", "epoch",
    "--lr_scheduler_type", "reduce_lr_on_plateau",
    "--lr_scheduler_kwargs", '{"factor": 0.5, "patience": 2, "min_lr": 0.03125}',
)  # fmt: skip


@dataclass
class ModelArguments:
    """Which model to train: a paper preset, with any size overridden, or a saved model."""

    model_type: str = field(
        default="text_vae",
        metadata={"help": "text_vae or delta_vae (images).", "choices": ("text_vae", "delta_vae")},
    )
    preset: str = field(
        default="ptb", metadata={"help": "Text paper configuration.", "choices": TEXT_PRESETS}
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
    word_dropout: float | None = field(default=None, metadata={"help": "Bowman's word dropout."})
    max_sequence_length: int | None = field(
        default=None, metadata={"help": "Longest sentence in tokens."}
    )
    ar1_alpha: float | None = field(default=None, metadata={"help": "AR(1) α, for prior=ar1."})
    encoder_type: str | None = field(
        default=None, metadata={"help": "δ-VAE encoder: anticausal or resnet."}
    )
    encoder_channels: int | None = field(default=None, metadata={"help": "δ-VAE encoder width."})
    encoder_layers: int | None = field(default=None, metadata={"help": "δ-VAE encoder depth."})
    decoder_channels: int | None = field(default=None, metadata={"help": "PixelCNN width."})
    decoder_layers: int | None = field(default=None, metadata={"help": "PixelCNN gated layers."})

    TEXT_FIELDS = (
        "embedding_size",
        "encoder_hidden_size",
        "decoder_hidden_size",
        "word_dropout",
        "max_sequence_length",
    )
    IMAGE_FIELDS = (
        "encoder_type",
        "encoder_channels",
        "encoder_layers",
        "decoder_channels",
        "decoder_layers",
    )
    SHARED_FIELDS = ("latent_size", "prior", "committed_rate", "ar1_alpha")

    def overrides(self) -> dict[str, Any]:
        """The sizes given on the command line, for this model type; others refused."""
        own = self.TEXT_FIELDS if self.model_type == "text_vae" else self.IMAGE_FIELDS
        other = self.IMAGE_FIELDS if self.model_type == "text_vae" else self.TEXT_FIELDS
        stray = [n for n in other if getattr(self, n) is not None]
        if stray:
            raise ValueError(f"--{stray[0]} is not a {self.model_type} setting.")
        return {
            n: getattr(self, n) for n in own + self.SHARED_FIELDS if getattr(self, n) is not None
        }


@dataclass
class DataArguments:
    """The corpus: PTB from a folder, one-sentence-per-line files, or the synthetic data."""

    dataset: str = field(
        default="ptb",
        metadata={
            "help": "Text: ptb, files or synthetic; images: mnist, omniglot or digits.",
            "choices": TEXT_DATASETS + IMAGE_DATASETS,
        },
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of ptb.*.txt, of MNIST's IDX files, or of Omniglot's npz files."},
    )
    train_file: str | None = field(default=None, metadata={"help": "For --dataset files."})
    validation_file: str | None = field(default=None, metadata={"help": "For --dataset files."})
    test_file: str | None = field(default=None, metadata={"help": "For --dataset files."})
    vocab_size: int | None = field(
        default=None, metadata={"help": "Largest vocabulary (specials included); default all."}
    )
    min_frequency: int = field(default=1, metadata={"help": "Rarer words become <unk>."})
    max_train_examples: int | None = field(
        default=None,
        metadata={
            "help": "Train on the first N sentences or images only (short runs).",
            "aliases": ["--max_train_sentences", "--max-train-sentences"],
        },
    )
    max_eval_examples: int | None = field(
        default=None,
        metadata={
            "help": "Evaluate on the first N sentences or images only.",
            "aliases": ["--max_eval_sentences", "--max-eval-sentences"],
        },
    )
    synthetic_sentences: int = field(
        default=20000, metadata={"help": "Size of the synthetic corpus."}
    )


def load_corpus(data_args: DataArguments):
    """The `DatasetDict` (`train`, `validation`, maybe `test`) the arguments describe."""
    from vaehub.data import load_ptb, load_text_corpus, synthetic_corpus

    if data_args.dataset == "ptb":
        if data_args.data_dir is None:
            raise ValueError("--dataset ptb needs --data_dir, the folder of ptb.*.txt.")
        corpus = load_ptb(data_args.data_dir)
    elif data_args.dataset == "files":
        files = {
            split: path
            for split, path in (
                ("train", data_args.train_file),
                ("validation", data_args.validation_file),
                ("test", data_args.test_file),
            )
            if path
        }
        if "train" not in files or "validation" not in files:
            raise ValueError("--dataset files needs --train_file and --validation_file.")
        corpus = load_text_corpus(files)
    else:
        from datasets import DatasetDict

        whole = synthetic_corpus(data_args.synthetic_sentences, seed=0)
        split = whole.train_test_split(test_size=0.1, seed=0)
        corpus = DatasetDict(train=split["train"], validation=split["test"])
    if data_args.max_train_examples is not None:
        corpus["train"] = corpus["train"].select(
            range(min(data_args.max_train_examples, len(corpus["train"])))
        )
    if data_args.max_eval_examples is not None:
        for name in [n for n in corpus if n != "train"]:
            corpus[name] = corpus[name].select(
                range(min(data_args.max_eval_examples, len(corpus[name])))
            )
    return corpus


IMAGE_DATASET_NAMES = {
    "mnist": {"name": "MNIST, dynamically binarized", "type": "mnist"},
    "omniglot": {"name": "Omniglot 28x28 (resized from 105x105)", "type": "omniglot"},
    "digits": {"name": "scikit-learn digits 8x8", "type": "custom"},
}


def load_images(dataset: str, data_dir: str | None, split: str):
    """Grey-level images of a named dataset split (`train`, `validation` = the last 5% of
    the training images, or `test`)."""
    from vaehub.data import load_digits, load_mnist, load_omniglot

    if dataset != "digits" and data_dir is None:
        raise ValueError(f"--dataset {dataset} needs --data_dir, the folder of its files.")
    source = "test" if split == "test" else "train"
    images = {
        "mnist": lambda: load_mnist(data_dir, source),
        "omniglot": lambda: load_omniglot(data_dir, source),
        "digits": lambda: load_digits(source),
    }[dataset]()
    if split == "test":
        return images
    cut = len(images) - max(1, len(images) // 20)
    return images.select(range(cut) if split == "train" else range(cut, len(images)))


def train(argv: Sequence[str]) -> int:
    """`vaehub train`: train a text VAE or δ-VAE with any objective, save it and its
    evaluation."""
    from transformers import HfArgumentParser, set_seed

    from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer
    from vaehub.data import TextCollator, tokenize_corpus
    from vaehub.trainer import VAETrainer, VAETrainingArguments

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, VAETrainingArguments), prog="vaehub train"
    )
    argv = list(argv)
    if "--paper_training" in argv:
        # Prepended, so that a flag the user gives explicitly comes later and wins.
        argv = [*PAPER_TRAINING, *argv]
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(argv)
    # Before any model is built, so that --seed fixes its initial weights too.
    set_seed(training_args.seed)
    if model_args.paper_training and model_args.model_type != "text_vae":
        raise ValueError(
            "--paper_training is He et al.'s text VAE optimisation; drop it for images."
        )
    if model_args.model_type == "delta_vae":
        return _train_images(model_args, data_args, training_args)
    if data_args.dataset in IMAGE_DATASETS:
        raise ValueError(f"--dataset {data_args.dataset} holds images: use --model_type delta_vae.")
    corpus = load_corpus(data_args)
    if model_args.model_name_or_path:
        model = TextVAEModel.from_pretrained(model_args.model_name_or_path)
        if model.tokenizer is None:
            raise ValueError(f"{model_args.model_name_or_path} holds no tokenizer to train with.")
    else:
        tokenizer = build_tokenizer(
            corpus["train"]["text"],
            vocab_size=data_args.vocab_size,
            min_frequency=data_args.min_frequency,
        )
        config = TextVAEConfig.from_preset(
            model_args.preset, vocab_size=len(tokenizer), **model_args.overrides()
        )
        model = TextVAEModel(config)
        model.tokenizer = tokenizer
    data = tokenize_corpus(corpus, model.tokenizer, model.config.max_sequence_length)
    trainer = VAETrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=TextCollator(),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    dataset = DATASET_NAMES.get(data_args.dataset, {"name": "custom", "type": "custom"})
    _record(model, trainer, training_args, data, dataset)
    if trainer.is_world_process_zero():
        model.save_pretrained(training_args.output_dir)
    return 0


def _train_images(model_args: ModelArguments, data_args: DataArguments, training_args) -> int:
    from vaehub import DeltaVAEConfig, DeltaVAEModel
    from vaehub.data import ImageCollator
    from vaehub.trainer import VAETrainer

    if data_args.dataset not in IMAGE_DATASETS:
        raise ValueError(
            f"--model_type delta_vae trains on images: --dataset "
            f"{' / '.join(IMAGE_DATASETS)}, not {data_args.dataset}."
        )
    splits = {
        s: load_images(data_args.dataset, data_args.data_dir, s)
        for s in ("train", "validation", "test")
    }
    if data_args.max_train_examples is not None:
        splits["train"] = splits["train"].select(
            range(min(data_args.max_train_examples, len(splits["train"])))
        )
    if data_args.max_eval_examples is not None:
        for name in ("validation", "test"):
            splits[name] = splits[name].select(
                range(min(data_args.max_eval_examples, len(splits[name])))
            )
    if model_args.model_name_or_path:
        model = DeltaVAEModel.from_pretrained(model_args.model_name_or_path)
    else:
        size = splits["train"][0]["pixel_values"].shape[-1]
        model = DeltaVAEModel(DeltaVAEConfig(image_size=int(size), **model_args.overrides()))
    trainer = VAETrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=ImageCollator(),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    _record(model, trainer, training_args, splits, IMAGE_DATASET_NAMES[data_args.dataset])
    if trainer.is_world_process_zero():
        model.save_pretrained(training_args.output_dir)
    return 0


def _record(
    model: Any, trainer: Any, training_args: Any, splits: dict, dataset: dict[str, str]
) -> None:
    """Evaluate the validation and test splits into the model's results."""
    model.training_summary = hub.training_summary(training_args, trainer.state, dataset["name"])
    for split in [s for s in ("validation", "test") if s in splits]:
        prefix = f"{split}_"
        metrics = trainer.evaluate(splits[split], metric_key_prefix=split)
        model.evaluation_results[split] = {
            "split": split,
            "dataset": dataset,
            "iw_samples": training_args.iw_samples if training_args.eval_iw_nll else None,
            "metrics": {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)},
        }


DATASET_NAMES = {
    "ptb": {"name": "Penn Treebank (Mikolov et al.)", "type": "ptb_text_only"},
    "synthetic": {"name": "He et al. 2019 synthetic", "type": "custom"},
}


TABLE_ROWS = (
    ("nll", "NLL (nats/{unit})"),
    ("ppl", "PPL"),
    ("bits_per_dim", "bits/dim"),
    ("neg_elbo", "−ELBO"),
    ("reconstruction", "reconstruction"),
    ("kl", "KL"),
    ("mi", "MI"),
    ("active_units", "active units"),
)


def evaluate(args: argparse.Namespace) -> int:
    """`vaehub evaluate`: the collapse metrics of a saved model on a corpus."""
    import torch

    from vaehub import DeltaVAEModel, TextVAEModel, checkpoints
    from vaehub.data import (
        image_batches,
        iterate_batches,
        load_ptb,
        load_text_corpus,
        tokenize_corpus,
    )
    from vaehub.metrics import evaluate_vae

    config = checkpoints.read_config_dict(args.model_dir, None, {})
    if config.get("model_type") == "delta_vae":
        model = DeltaVAEModel.from_pretrained(args.model_dir)
        kind = _image_dataset_kind(args.data)
        images = load_images(kind, None if kind == "digits" else args.data, args.split)
        if args.max_examples is not None:
            images = images.select(range(min(args.max_examples, len(images))))
        batches, unit = image_batches(images, args.batch_size, seed=args.seed), "images"
        dataset = IMAGE_DATASET_NAMES[kind]
    else:
        model = TextVAEModel.from_pretrained(args.model_dir)
        if model.tokenizer is None:
            raise ValueError(f"{args.model_dir} holds no tokenizer to read the corpus with.")
        if os.path.isdir(args.data):
            corpus = load_ptb(args.data)
            if args.split not in corpus:
                raise ValueError(f"split {args.split!r} not in {args.data}: {', '.join(corpus)}.")
            sentences = corpus[args.split]
            dataset = DATASET_NAMES["ptb"]
        else:
            sentences = load_text_corpus(args.data)["train"]
            dataset = {"name": os.path.basename(os.path.abspath(args.data)), "type": "custom"}
        if args.max_examples is not None:
            sentences = sentences.select(range(min(args.max_examples, len(sentences))))
        data = tokenize_corpus(sentences, model.tokenizer, model.config.max_sequence_length)
        batches = iterate_batches(data, args.batch_size, model.config.pad_token_id)
        unit = "sentences"
    torch.manual_seed(args.seed)
    results = evaluate_vae(
        model,
        batches,
        iw_samples=args.iw_samples or None,
        show_progress=not args.no_progress and sys.stderr.isatty(),
        total=len(images) if unit == "images" else len(data),
    )
    print(
        f"{args.model_dir} on {args.data} ({args.split}, {results['num_examples']} {unit}"
        f"{f', K={args.iw_samples}' if args.iw_samples else ''}):"
    )
    for key, label in TABLE_ROWS:
        if key in results:
            value = results[key]
            label = label.format(unit=unit[:-1])
            shown = str(round(value)) if key in hub.COUNTS else hub.fixed(value, 3)
            print(f"  {label:<22}{shown:>10}")
    extra = {"iw_samples": args.iw_samples or None, "data": os.path.abspath(args.data)}
    output = hub.write_results(
        args.model_dir, args.split, results, dataset, path=args.output, **extra
    )
    print(f"wrote {output}")
    return 0


def _image_dataset_kind(data: str) -> str:
    """Which image set `--data` names: `digits`, or a folder of MNIST or Omniglot files."""
    if data == "digits":
        return "digits"
    if os.path.isfile(os.path.join(data, "t10k-images-idx3-ubyte.gz")):
        return "mnist"
    if os.path.isfile(os.path.join(data, "images_evaluation.npz")):
        return "omniglot"
    raise ValueError(f"--data {data} is neither 'digits' nor a folder of MNIST or Omniglot files.")


def push(args: argparse.Namespace) -> int:
    """`vaehub push`: upload a model folder with its card."""
    from vaehub import network

    network.set_hub_timeout(args.timeout)
    url = hub.push_folder(
        args.model_dir,
        args.repo_id,
        private=args.private or None,
        revision=args.revision,
        commit_message=args.commit_message,
        card=not args.no_card,
    )
    print(f"pushed {args.model_dir} to {args.repo_id}: {url}")
    return 0


def pull(args: argparse.Namespace) -> int:
    """`vaehub pull`: download a model repository and check that it loads."""
    from transformers import AutoModel

    from vaehub import network  # vaehub registers its model types with the Auto classes

    network.set_hub_timeout(args.timeout)
    path = hub.pull(
        args.repo_id, revision=args.revision, local_dir=args.output_dir, force=args.force
    )
    model = AutoModel.from_pretrained(path)
    print(
        f"pulled {args.repo_id}{f' ({args.revision})' if args.revision else ''} to {path}: "
        f"a {model.config.model_type} model, latent size {model.config.latent_size}, "
        f"{model.num_parameters():,} parameters."
    )
    return 0


def card(args: argparse.Namespace) -> int:
    """`vaehub card`: write a model folder's card without pushing."""
    model_card = hub.render_model_card(args.model_dir, repo_id=args.repo_id, split=args.split)
    output = args.output or os.path.join(args.model_dir, "README.md")
    model_card.save(output)
    print(f"wrote {output}")
    return 0


def _load_model(args: argparse.Namespace) -> Any:
    """The text VAE or δ-VAE of a folder or Hub repository, for inference."""
    import torch

    from vaehub import DeltaVAEModel, TextVAEModel, checkpoints, network

    network.set_hub_timeout(args.timeout)
    config = checkpoints.read_config_dict(args.model, None, {})
    cls = DeltaVAEModel if config.get("model_type") == "delta_vae" else TextVAEModel
    model = cls.from_pretrained(args.model).eval()
    if cls is TextVAEModel and model.tokenizer is None:
        raise ValueError(f"{args.model} holds no tokenizer to write sentences with.")
    torch.manual_seed(args.seed)
    return model


def _decoding_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("do_sample", "temperature", "top_k", "top_p", "num_beams", "max_new_tokens")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def generate(args: argparse.Namespace) -> int:
    """`vaehub generate`: samples from the prior, printed (text) or drawn as a grid (images)."""
    model = _load_model(args)
    if model.config.model_type == "delta_vae":
        from vaehub import save_image_grid

        images = model.generate(num_samples=args.num_samples, greedy=args.greedy)
        path = save_image_grid(images, args.output or "samples.png")
        print(f"wrote {args.num_samples} samples of {args.model} to {path}")
        return 0
    for sentence in model.generate_sentences(
        num_samples=args.num_samples, **_decoding_options(args)
    ):
        print(sentence)
    return 0


def interpolate(args: argparse.Namespace) -> int:
    """`vaehub interpolate`: decode the path between the posterior means of two inputs."""
    model = _load_model(args)
    if model.config.model_type == "delta_vae":
        import torch

        from vaehub import save_image_grid
        from vaehub.data import image_batches

        if args.data is None:
            raise ValueError(
                "a δ-VAE interpolates between two images: give --data (digits or a folder of "
                "MNIST or Omniglot files) and two test-image indices."
            )
        kind = _image_dataset_kind(args.data)
        images = load_images(kind, None if kind == "digits" else args.data, "test")
        indices = []
        for given in (args.a, args.b):
            if not given.isdigit() or int(given) >= len(images):
                raise ValueError(
                    f"{given!r} is not an image index: give two of 0..{len(images) - 1}."
                )
            indices.append(int(given))
        pair = next(image_batches(images.select(indices), 2, seed=args.seed))["pixel_values"]
        path_images = model.interpolate(pair[0], pair[1], args.steps, args.seed, args.greedy)
        row = torch.cat([pair[:1], path_images, pair[1:]])
        path = save_image_grid(row, args.output or "interpolation.png", columns=args.steps + 2)
        print(f"wrote image {indices[0]}, {args.steps} steps and image {indices[1]} to {path}")
        return 0
    sentences = model.interpolate(args.a, args.b, args.steps, **_decoding_options(args))
    for step, sentence in enumerate(sentences):
        print(f"{step / (args.steps - 1):.2f}  {sentence}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from vaehub.demo import run_demo

    run_demo(
        output_dir=args.output_dir,
        num_sentences=args.num_sentences,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        iw_samples=args.iw_samples,
    )
    return 0


class FlagParser(argparse.ArgumentParser):
    """Every `--long_flag` is also `--long-flag`: one style, `vaehub train`'s and
    transformers' (underscores), with the other kept as an alias."""

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        spelled: list[str] = []
        for name in names:
            forms = (
                ["--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")]
                if isinstance(name, str) and name.startswith("--")
                else [name]
            )
            for form in forms:
                if form not in spelled:
                    spelled.append(form)
        return super().add_argument(*spelled, **kwargs)


def add_timeout_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait on the Hub server before giving up (default: $VAEHUB_HUB_TIMEOUT, "
        "else $HF_HUB_DOWNLOAD_TIMEOUT, else 10)",
    )


def add_decoding_flags(parser: argparse.ArgumentParser) -> None:
    # A text VAE's decoding, handed to transformers' generate (checked first).
    parser.add_argument(
        "--do_sample", action="store_true", default=None, help="text: sample the tokens"
    )
    parser.add_argument("--temperature", type=float, default=None, help="text: with --do_sample")
    parser.add_argument("--top_k", type=int, default=None, help="text: with --do_sample")
    parser.add_argument("--top_p", type=float, default=None, help="text: with --do_sample")
    parser.add_argument("--num_beams", type=int, default=None, help="text: beam search")
    parser.add_argument("--max_new_tokens", type=int, default=None, help="text: length limit")
    parser.add_argument(
        "--greedy", action="store_true", help="δ-VAE: most likely pixels instead of samples"
    )
    parser.add_argument("--seed", type=int, default=0, help="for the prior draws and sampling")
    add_timeout_flag(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = FlagParser(
        prog="vaehub", description="Variational autoencoders whose latent code is used."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="ELBO against aggressive training on the embedded synthetic corpus",
        description="Train a small text VAE on He et al.'s synthetic corpus, generated here, "
        "with the ELBO and with aggressive training; compare, sample, plot, save.",
    )
    demo.add_argument("--output-dir", default="vaehub-demo", help="where to save the models")
    demo.add_argument(
        "--num-sentences",
        type=int,
        default=12000,
        help="synthetic sentences to generate (10%% held out)",
    )
    demo.add_argument("--epochs", type=float, default=4, help="training epochs per objective")
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument(
        "--iw-samples", type=int, default=100, help="importance samples K of the validation NLL"
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    commands.add_parser(
        "train",
        help="train a text VAE or an image δ-VAE (see `vaehub train --help`)",
        add_help=False,
        description="Every TrainingArguments flag works, plus the model, data and objective flags.",
    ).set_defaults(run=None)

    evaluation = commands.add_parser(
        "evaluate",
        help="IW-NLL, PPL, KL, MI and active units of a saved model",
        description="Evaluate a saved text VAE on a corpus, or an image δ-VAE on an image "
        "set; prints a table and writes JSON.",
    )
    evaluation.add_argument("model_dir", help="a folder saved by vaehub")
    evaluation.add_argument(
        "--data",
        required=True,
        help="a PTB folder (with --split) or a one-sentence-per-line file; for a δ-VAE, "
        "'digits' or an MNIST or Omniglot folder",
    )
    evaluation.add_argument("--split", default="test", help="train, validation or test")
    evaluation.add_argument(
        "--iw-samples", type=int, default=500, help="K of the importance-weighted NLL; 0 skips it"
    )
    evaluation.add_argument("--batch-size", type=int, default=64)
    evaluation.add_argument(
        "--max_examples",
        "--max_sentences",
        type=int,
        default=None,
        help="evaluate the first N sentences or images only",
    )
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown in a terminal)"
    )
    evaluation.add_argument(
        "--output", default=None, help="JSON path (default MODEL_DIR/eval_<split>.json)"
    )
    evaluation.set_defaults(run=evaluate)

    pushing = commands.add_parser(
        "push",
        help="upload a model folder and its card to the Hub",
        description="Upload a saved model folder (weights, config, tokenizer, generation "
        "config, results) with a model card rendered from its evaluation results. "
        "The local folder is only read.",
    )
    pushing.add_argument("model_dir")
    pushing.add_argument("repo_id", help="org/name")
    pushing.add_argument("--private", action="store_true")
    pushing.add_argument("--revision", default=None, help="branch to push to (created)")
    pushing.add_argument("--commit-message", default=None)
    pushing.add_argument("--no-card", action="store_true", help="push without a model card")
    add_timeout_flag(pushing)
    pushing.set_defaults(run=push)

    pulling = commands.add_parser(
        "pull",
        help="download a model from the Hub and check it",
        description="Download a vaehub model repository.",
    )
    pulling.add_argument("repo_id", help="org/name")
    pulling.add_argument("--revision", default=None)
    pulling.add_argument(
        "--output-dir", default=None, help="a folder to place the files in (default: the Hub cache)"
    )
    pulling.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty --output-dir as a whole (refused without it)",
    )
    add_timeout_flag(pulling)
    pulling.set_defaults(run=pull)

    generating = commands.add_parser(
        "generate",
        help="sample from a model's prior: sentences, or a grid of images",
        description="Decode latents drawn from the prior of a saved model (a folder or Hub "
        "id): a text VAE prints one sentence per line, a δ-VAE writes a PNG grid.",
    )
    generating.add_argument("model", help="a folder saved by vaehub, or a Hub id")
    generating.add_argument("--num_samples", type=int, default=8)
    generating.add_argument("--output", default=None, help="δ-VAE: PNG path (samples.png)")
    add_decoding_flags(generating)
    generating.set_defaults(run=generate)

    interpolating = commands.add_parser(
        "interpolate",
        help="decode the path between two sentences (or two images)",
        description="Decode z(t) = (1 − t)·z_a + t·z_b between the posterior means of two "
        "sentences (text VAE) or of two test images given by index with --data (δ-VAE, "
        "written as a PNG row).",
    )
    interpolating.add_argument("model", help="a folder saved by vaehub, or a Hub id")
    interpolating.add_argument("a", help="the first sentence (δ-VAE: a test-image index)")
    interpolating.add_argument("b", help="the second sentence (δ-VAE: a test-image index)")
    interpolating.add_argument("--steps", type=int, default=5, help="points on the path, >= 2")
    interpolating.add_argument("--data", default=None, help="δ-VAE: digits, or a folder")
    interpolating.add_argument(
        "--output", default=None, help="δ-VAE: PNG path (interpolation.png)"
    )
    add_decoding_flags(interpolating)
    interpolating.set_defaults(run=interpolate)

    carding = commands.add_parser(
        "card",
        help="write a model folder's card (README.md)",
        description="Render the model card from the folder's "
        "config, evaluation results and training "
        "summary, without pushing.",
    )
    carding.add_argument("model_dir")
    carding.add_argument("--repo-id", default=None, help="the Hub name the usage snippet loads")
    carding.add_argument("--split", default=None, help="which evaluation to report")
    carding.add_argument("--output", default=None, help="default MODEL_DIR/README.md")
    carding.set_defaults(run=card)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    try:
        if command == "train":
            return train(argv[1:])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (ValueError, OSError, hub.HubError) as error:
        print(f"vaehub {command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
