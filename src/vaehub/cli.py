"""The `vaehub` command: `demo`, `train` and `evaluate`.

`vaehub train` parses `ModelArguments`, `DataArguments` and `VAETrainingArguments` with
`HfArgumentParser`, so every `TrainingArguments` flag works (`--learning_rate`,
`--num_train_epochs`, `--bf16`, `--resume_from_checkpoint`, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

TEXT_PRESETS = ("ptb", "yahoo", "yelp", "synthetic")


@dataclass
class ModelArguments:
    """Which model to train: a paper preset, with any size overridden, or a saved model."""

    preset: str = field(
        default="ptb", metadata={"help": "Paper configuration.", "choices": TEXT_PRESETS}
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
    prior: str | None = field(default=None, metadata={"help": "standard or constrained."})
    committed_rate: float | None = field(
        default=None, metadata={"help": "δ in nats, for prior=constrained."}
    )
    word_dropout: float | None = field(default=None, metadata={"help": "Bowman's word dropout."})
    max_sequence_length: int | None = field(
        default=None, metadata={"help": "Longest sentence in tokens."}
    )

    def overrides(self) -> dict[str, Any]:
        names = (
            "latent_size",
            "embedding_size",
            "encoder_hidden_size",
            "decoder_hidden_size",
            "prior",
            "committed_rate",
            "word_dropout",
            "max_sequence_length",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass
class DataArguments:
    """The corpus: PTB from a folder, one-sentence-per-line files, or the synthetic data."""

    dataset: str = field(
        default="ptb",
        metadata={"help": "ptb, files or synthetic.", "choices": ("ptb", "files", "synthetic")},
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder of ptb.{train,valid,test}.txt."}
    )
    train_file: str | None = field(default=None, metadata={"help": "For --dataset files."})
    validation_file: str | None = field(default=None, metadata={"help": "For --dataset files."})
    test_file: str | None = field(default=None, metadata={"help": "For --dataset files."})
    vocab_size: int | None = field(
        default=None, metadata={"help": "Largest vocabulary (specials included); default all."}
    )
    min_frequency: int = field(default=1, metadata={"help": "Rarer words become <unk>."})
    max_train_sentences: int | None = field(
        default=None, metadata={"help": "Train on the first N sentences only (short runs)."}
    )
    max_eval_sentences: int | None = field(
        default=None, metadata={"help": "Evaluate on the first N sentences only."}
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
    if data_args.max_train_sentences is not None:
        corpus["train"] = corpus["train"].select(
            range(min(data_args.max_train_sentences, len(corpus["train"])))
        )
    if data_args.max_eval_sentences is not None:
        for name in [n for n in corpus if n != "train"]:
            corpus[name] = corpus[name].select(
                range(min(data_args.max_eval_sentences, len(corpus[name])))
            )
    return corpus


def train(argv: Sequence[str]) -> int:
    """`vaehub train`: train a text VAE with any objective, save it and its evaluation."""
    from transformers import HfArgumentParser

    from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer
    from vaehub.data import TextCollator, tokenize_corpus
    from vaehub.trainer import VAETrainer, VAETrainingArguments

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, VAETrainingArguments), prog="vaehub train"
    )
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(list(argv))
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
    if trainer.is_world_process_zero():
        model.save_pretrained(training_args.output_dir)
    for split in [s for s in ("validation", "test") if s in data]:
        metrics = trainer.evaluate(data[split], metric_key_prefix=split)
        if trainer.is_world_process_zero():
            write_evaluation(training_args.output_dir, split, metrics, training_args)
    return 0


def write_evaluation(folder: str, split: str, metrics: dict[str, Any], args: Any) -> str:
    """Save a split's metrics as `eval_<split>.json` in a model folder."""
    prefix = f"{split}_"
    record = {
        "split": split,
        "objective": getattr(args, "objective", None),
        "iw_samples": metrics.get(f"{prefix}iw_samples"),
        "metrics": {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)},
    }
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"eval_{split}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    return path


TABLE_ROWS = (
    ("nll", "NLL (nats/sentence)"),
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

    from vaehub import TextVAEModel
    from vaehub.data import iterate_batches, load_ptb, load_text_corpus, tokenize_corpus
    from vaehub.metrics import evaluate_vae

    model = TextVAEModel.from_pretrained(args.model_dir)
    if model.tokenizer is None:
        raise ValueError(f"{args.model_dir} holds no tokenizer to read the corpus with.")
    if os.path.isdir(args.data):
        corpus = load_ptb(args.data)
        if args.split not in corpus:
            raise ValueError(f"split {args.split!r} not in {args.data}: {', '.join(corpus)}.")
        sentences = corpus[args.split]
    else:
        sentences = load_text_corpus(args.data)["train"]
    if args.max_sentences is not None:
        sentences = sentences.select(range(min(args.max_sentences, len(sentences))))
    data = tokenize_corpus(sentences, model.tokenizer, model.config.max_sequence_length)
    torch.manual_seed(args.seed)
    results = evaluate_vae(
        model,
        iterate_batches(data, args.batch_size, model.config.pad_token_id),
        iw_samples=args.iw_samples or None,
        show_progress=True,
    )
    print(
        f"{args.model_dir} on {args.data} ({args.split}, {results['num_examples']} sentences"
        f"{f', K={args.iw_samples}' if args.iw_samples else ''}):"
    )
    for key, label in TABLE_ROWS:
        if key in results:
            value = results[key]
            print(
                f"  {label:<22}{value:>10d}"
                if isinstance(value, int)
                else f"  {label:<22}{value:>10.3f}"
            )
    output = args.output or os.path.join(args.model_dir, f"eval_{args.split}.json")
    record = {
        "split": args.split,
        "data": os.path.abspath(args.data),
        "iw_samples": args.iw_samples or None,
        "metrics": results,
    }
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    print(f"wrote {output}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        help="train a text VAE (see `vaehub train --help`)",
        add_help=False,
        description="Every TrainingArguments flag works, plus the model, data and objective flags.",
    ).set_defaults(run=None)

    evaluation = commands.add_parser(
        "evaluate",
        help="IW-NLL, PPL, KL, MI and active units of a saved model",
        description="Evaluate a saved text VAE on a corpus; prints a table and writes JSON.",
    )
    evaluation.add_argument("model_dir", help="a folder saved by vaehub")
    evaluation.add_argument(
        "--data", required=True, help="a PTB folder (with --split) or a one-sentence-per-line file"
    )
    evaluation.add_argument("--split", default="test", help="train, validation or test")
    evaluation.add_argument(
        "--iw-samples", type=int, default=500, help="K of the importance-weighted NLL; 0 skips it"
    )
    evaluation.add_argument("--batch-size", type=int, default=64)
    evaluation.add_argument("--max-sentences", type=int, default=None)
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument(
        "--output", default=None, help="JSON path (default MODEL_DIR/eval_<split>.json)"
    )
    evaluation.set_defaults(run=evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    try:
        if command == "train":
            return train(argv[1:])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (ValueError, OSError) as error:
        print(f"vaehub {command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
