"""The datasets vaehub knows by name, as `vaehub train` and `vaehub evaluate` take them:
PTB, one-sentence-per-line files and He et al.'s synthetic corpus for text, and any corpus
`datasets` reads (a Hub id, a dataset folder, txt/csv/json/jsonl/parquet files, see
`vaehub.data.corpora`); MNIST, Omniglot and scikit-learn's digits for images; Frey Faces,
MNIST grey levels and `.npy`/`.npz` files as vectors for the linear VAE. How each is read
lives in `vaehub.data`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from vaehub.data.papers import PAPER_CORPORA, PAPER_DATASET_NAMES

TEXT_DATASETS = ("ptb", "files", "synthetic", *PAPER_CORPORA)
IMAGE_DATASETS = ("mnist", "omniglot", "digits")
# The linear VAE's: Frey Faces, MNIST (as grey-level vectors) or a vector file (--train_file).
VECTOR_DATASETS = ("frey_faces", "mnist", "vectors")
# How results name their data, in records and cards.
DATASET_NAMES = {
    "ptb": {"name": "Penn Treebank (Mikolov et al.)", "type": "ptb_text_only"},
    "synthetic": {"name": "He et al. 2019 synthetic", "type": "custom"},
    **PAPER_DATASET_NAMES,
}


@dataclass
class DataArguments:
    """The corpus: PTB from a folder, the synthetic data, or any corpus `datasets` reads
    (flags as transformers' `run_clm.py` takes them)."""

    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Text: ptb, files, synthetic, or the papers' yahoo, yelp, short_yelp, "
            "snli (from --data_dir; see vaehub.data.papers); images: mnist, omniglot, digits; "
            "vectors (linear_vae): frey_faces, mnist (grey levels), or vectors (a .npy/.npz "
            "--train_file). Default: files when --dataset_name or --train_file is given, "
            "else ptb.",
            "choices": tuple(dict.fromkeys(TEXT_DATASETS + IMAGE_DATASETS + VECTOR_DATASETS)),
        },
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "Folder of ptb.*.txt, of the papers' corpora (the datasets/ folder of "
            "their archive), of MNIST's IDX files, of Omniglot's npz files, or of Frey "
            "Faces' freyfaces.npz."
        },
    )
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A dataset on the Hub (an id), a local dataset folder (files `datasets` "
            "infers splits from), or a folder written by save_to_disk."
        },
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "The configuration of --dataset_name, if it has several."}
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Training data: a txt, csv, json, jsonl or parquet file; for linear_vae "
            "(--dataset vectors), a .npy/.npz file of vectors, split as vaehub.data.vectors "
            "says."
        },
    )
    validation_file: str | None = field(
        default=None,
        metadata={"help": "Validation data (same formats); default: cut from the training data."},
    )
    test_file: str | None = field(default=None, metadata={"help": "Test data (same formats)."})
    text_column: str = field(
        default="text",
        metadata={"help": "The column holding the text (csv, json, parquet, datasets)."},
    )
    validation_split_percentage: float = field(
        default=5,
        metadata={
            "help": "Without a validation split, this percentage of train (drawn with "
            "--validation_split_seed) becomes one; streaming, the first --max_eval_examples "
            "(default 1000) examples do."
        },
    )
    validation_split_seed: int = field(
        default=0, metadata={"help": "Seed of the draw of --validation_split_percentage."}
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where datasets caches its files (default: HF_DATASETS_CACHE)."},
    )
    overwrite_cache: bool = field(
        default=False, metadata={"help": "Tokenize again instead of reusing the cached result."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes that tokenize (datasets' num_proc)."}
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read the training data as a stream, never whole in memory (needs "
            "--max_steps; not with --objective aggressive, which draws random batches)."
        },
    )
    vocab_examples: int = field(
        default=100000,
        metadata={"help": "Streaming: the vocabulary is built from this many first examples."},
    )
    shuffle_buffer_size: int = field(
        default=10000,
        metadata={
            "help": "Streaming: examples shuffled together, then sorted by length into batches."
        },
    )
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

    def __post_init__(self) -> None:
        given = self.dataset_name or self.train_file
        if self.dataset is None:
            self.dataset = "files" if given else "ptb"
        elif self.dataset_name and self.dataset != "files":
            raise ValueError(
                f"--dataset {self.dataset} and --dataset_name {self.dataset_name} name two "
                "corpora: give one."
            )
        if self.dataset_name and (self.train_file or self.validation_file or self.test_file):
            raise ValueError("give --dataset_name or data files (--train_file ...), not both.")
        if self.dataset == "vectors" and not self.train_file:
            raise ValueError(
                "--dataset vectors reads a .npy or .npz file of vectors: give it with --train_file."
            )
        if self.streaming and self.dataset != "files":
            raise ValueError(
                "--streaming reads --dataset_name or --train_file; "
                f"--dataset {self.dataset} is read whole."
            )

    def record(self) -> dict[str, str]:
        """How results and cards name this corpus."""
        if self.dataset in DATASET_NAMES:
            return DATASET_NAMES[self.dataset]
        if self.dataset_name:
            local = os.path.isdir(self.dataset_name)
            name = os.path.basename(os.path.abspath(self.dataset_name)) if local else None
            return {"name": name or self.dataset_name, "type": "custom" if local else
                    self.dataset_name}  # fmt: skip
        if self.dataset == "files" and self.train_file:
            return {"name": os.path.basename(self.train_file), "type": "custom"}
        return {"name": "custom", "type": "custom"}


def load_corpus(data_args: DataArguments) -> Any:
    """The splits (`train`, `validation`, maybe `test`) the arguments describe, each with a
    `text` column: a `DatasetDict`, or with `--streaming` a dict whose `train` is a
    `datasets.IterableDataset` (the evaluation splits are read into memory, capped by
    `--max_eval_examples`)."""
    from datasets import DatasetDict

    from vaehub.data.text import load_ptb

    if data_args.dataset == "ptb":
        if data_args.data_dir is None:
            raise ValueError(
                "--dataset ptb needs --data_dir, the folder of ptb.*.txt (or give your own "
                "corpus with --dataset_name or --train_file)."
            )
        corpus = load_ptb(data_args.data_dir)
    elif data_args.dataset == "files":
        corpus = _load_any(data_args)
    elif data_args.dataset in PAPER_CORPORA:
        from vaehub.data.papers import load_paper_corpus

        corpus = load_paper_corpus(data_args.dataset, data_args.data_dir)
    else:
        from vaehub.data.synthetic import synthetic_corpus

        whole = synthetic_corpus(data_args.synthetic_sentences, seed=0)
        split = whole.train_test_split(test_size=0.1, seed=0)
        corpus = DatasetDict(train=split["train"], validation=split["test"])
    if data_args.streaming:
        from vaehub.data.corpora import materialize

        if data_args.max_train_examples is not None:
            corpus["train"] = corpus["train"].take(data_args.max_train_examples)
        for name in [n for n in corpus if n != "train"]:
            corpus[name] = materialize(
                corpus[name], data_args.max_eval_examples, f"the {name} split"
            )
        return corpus
    return first_examples(corpus, data_args)


def first_examples(splits: Any, data_args: DataArguments) -> Any:
    """`splits` (a dict or `DatasetDict` of datasets) cut to the first
    `--max_train_examples` of train and `--max_eval_examples` of every other split."""
    for name in list(splits):
        limit = data_args.max_train_examples if name == "train" else data_args.max_eval_examples
        if limit is not None:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    return splits


def _load_any(data_args: DataArguments) -> Any:
    """`--dataset files`: `--dataset_name`, or `--train_file` and the others."""
    from datasets import DatasetDict

    from vaehub.data.corpora import load_files, load_named_dataset, standard_splits

    args = data_args
    if args.dataset_name:
        splits = load_named_dataset(
            args.dataset_name, args.dataset_config_name, args.text_column, args.cache_dir,
            args.streaming,
        )  # fmt: skip
        where = f"the dataset {args.dataset_name}"
    else:
        files = {
            split: path
            for split, path in (
                ("train", args.train_file),
                ("validation", args.validation_file),
                ("test", args.test_file),
            )
            if path
        }
        if "train" not in files:
            raise ValueError("--dataset files needs --train_file (or --dataset_name).")
        splits = load_files(files, args.text_column, args.cache_dir, args.streaming)
        where = f"the train file {args.train_file}"
    splits = standard_splits(
        splits, where, args.validation_split_percentage, args.validation_split_seed,
        args.max_eval_examples,
    )  # fmt: skip
    return dict(splits) if args.streaming else DatasetDict(splits)


IMAGE_DATASET_NAMES = {
    "mnist": {"name": "MNIST, dynamically binarized", "type": "mnist"},
    "omniglot": {"name": "Omniglot 28x28 (resized from 105x105)", "type": "omniglot"},
    "digits": {"name": "scikit-learn digits 8x8", "type": "custom"},
}


def load_images(dataset: str, data_dir: str | None, split: str):
    """Grey-level images of a named dataset split (`train`, `validation` = the last 5% of
    the training images, or `test`)."""
    from vaehub.data.images import load_digits, load_mnist, load_omniglot

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


VECTOR_DATASET_NAMES = {
    "frey_faces": {"name": "Frey Faces 28x20, grey levels in [0, 1]", "type": "custom"},
    "mnist": {"name": "MNIST grey levels in [0, 1], 784-d", "type": "mnist"},
}


def vector_record(kind: str, where: str) -> dict[str, str]:
    """How results and cards name a vector source (`vaehub.data.vectors.vector_dataset_kind`)."""
    if kind in VECTOR_DATASET_NAMES:
        return VECTOR_DATASET_NAMES[kind]
    return {"name": os.path.basename(os.path.abspath(where)), "type": "custom"}


def vector_source(data_args: DataArguments) -> tuple[str, str]:
    """The kind (`frey_faces`, `mnist`, `file`) and the location of the vectors the
    arguments name, for the linear VAE. `--dataset files` with a `.npy`/`.npz`
    `--train_file` is read as vectors too."""
    from vaehub.data.vectors import VECTOR_FILE_SUFFIXES

    dataset = data_args.dataset
    if dataset in ("frey_faces", "mnist"):
        what = "freyfaces.npz" if dataset == "frey_faces" else "MNIST's IDX files"
        if data_args.data_dir is None:
            raise ValueError(f"--dataset {dataset} needs --data_dir, the folder of {what}.")
        if not os.path.isdir(data_args.data_dir):
            raise FileNotFoundError(
                f"--data_dir {data_args.data_dir} is not a folder: give the folder of {what}."
            )
        return dataset, data_args.data_dir
    train_file = data_args.train_file
    if dataset in ("vectors", "files") and train_file:
        if os.path.splitext(train_file)[1].lower() not in VECTOR_FILE_SUFFIXES:
            raise ValueError(
                f"--train_file {train_file}: the linear VAE reads vectors from a .npy or .npz file."
            )
        if data_args.validation_file or data_args.test_file:
            raise ValueError(
                "a vector file is split by vaehub (or holds arrays named train, validation "
                "and test): drop --validation_file and --test_file."
            )
        return "file", train_file
    raise ValueError(
        f"--dataset {dataset} does not hold vectors: the linear VAE trains on --dataset "
        "frey_faces or mnist (with --data_dir), or vectors (with --train_file FILE.npy)."
    )


def image_dataset_kind(data: str) -> str:
    """Which image set `--data` names: `digits`, or a folder of MNIST or Omniglot files."""
    if data == "digits":
        return "digits"
    if os.path.isfile(os.path.join(data, "t10k-images-idx3-ubyte.gz")):
        return "mnist"
    if os.path.isfile(os.path.join(data, "images_evaluation.npz")):
        return "omniglot"
    raise ValueError(f"--data {data} is neither 'digits' nor a folder of MNIST or Omniglot files.")


# Above this share of `<unk>` tokens, an NLL or PPL says more about the unknown words than
# about the text: a text of only unknown words scores "better" than PTB itself. PTB's own
# test set is about 4.5% `<unk>` (its text writes them out), well below.
UNK_WARNING_FRACTION = 0.10


def _warn_unknown(tokens: Any, model: Any, data: str) -> float:
    """The share of `<unk>` among the tokens scored (`</s>` included), with a warning above
    `UNK_WARNING_FRACTION`."""
    import warnings

    unk = getattr(model.config, "unk_token_id", None)
    if unk is None:
        return 0.0
    # Every token but <s>, which is given, not predicted.
    total = unknown = 0
    for row in tokens["input_ids"]:
        total += len(row) - 1
        unknown += sum(1 for token in row[1:] if token == unk)
    fraction = unknown / total if total else 0.0
    if fraction > UNK_WARNING_FRACTION:
        warnings.warn(
            f"{fraction:.0%} of the tokens of {data} are <unk> (more than "
            f"{UNK_WARNING_FRACTION:.0%}): the model scores them as one word, so its NLL and "
            "PPL here are not comparable with those on text it knows.",
            stacklevel=3,
        )
    return fraction


def evaluation_data(
    model: Any,
    data: str,
    split: str,
    batch_size: int,
    max_examples: int | None,
    seed: int,
    stats: dict[str, Any] | None = None,
    **corpus_options: Any,
) -> tuple[Any, str, dict[str, str], int]:
    """The batches `vaehub evaluate` and `vaehub diagnose` measure a model on.

    Args:
        data: for a text model, a PTB folder (read at `split`), `synthetic` (He et al.'s
            corpus as `vaehub train --dataset synthetic` generates it) or a
            one-sentence-per-line file; for an image model, `digits` or a folder of MNIST
            or Omniglot files; for the linear VAE, a Frey Faces or MNIST folder or a
            `.npy`/`.npz` file of vectors (`vaehub.data.vectors`, read at `split`).
        stats: filled, for text, with `unk_fraction`: the share of the scored tokens that
            are `<unk>` (a warning is given above `UNK_WARNING_FRACTION`).
        corpus_options: for text, `evaluation_sentences`' options (`text_column`, ...).
    Returns:
        an iterable of batches, the unit counted (`"sentences"`/`"images"`/`"examples"`),
        the dataset's record and the number of examples.
    """
    from vaehub.data.batching import iterate_batches
    from vaehub.data.images import image_batches
    from vaehub.data.text import tokenize_corpus

    # 0 would select nothing and fail deep in `datasets` ("Column 'truncated' doesn't exist").
    for name, value in (("max_examples", max_examples), ("batch_size", batch_size)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"--{name} {value!r} is not valid: expected an integer >= 1.")

    if model.main_input_name == "pixel_values":
        kind = image_dataset_kind(data)
        images = load_images(kind, None if kind == "digits" else data, split)
        if max_examples is not None:
            images = images.select(range(min(max_examples, len(images))))
        batches = image_batches(images, batch_size, seed=seed)
        return batches, "images", IMAGE_DATASET_NAMES[kind], len(images)
    if model.main_input_name == "inputs":
        return _vector_evaluation_data(model, data, split, batch_size, max_examples)
    if model.tokenizer is None:
        raise ValueError(f"{model.name_or_path} holds no tokenizer to read the corpus with.")
    sentences, dataset = evaluation_sentences(data, split, max_examples, **corpus_options)
    tokens = tokenize_corpus(sentences, model.tokenizer, model.config.max_sequence_length)
    if stats is not None:
        stats["unk_fraction"] = _warn_unknown(tokens, model, data)
    batches = iterate_batches(tokens, batch_size, model.config.pad_token_id)
    return batches, "sentences", dataset, len(tokens)


def _vector_evaluation_data(
    model: Any, data: str, split: str, batch_size: int, max_examples: int | None
) -> tuple[Any, str, dict[str, str], int]:
    """`evaluation_data` for the linear VAE: the vectors of `data` at `split`."""
    from vaehub.data.vectors import load_vectors, vector_batches, vector_dataset_kind

    kind = vector_dataset_kind(data)
    vectors = load_vectors(kind, data, split)
    size = int(vectors[0]["inputs"].shape[-1])
    expected = model.config.input_size
    if size != expected:
        raise ValueError(
            f"--data {data} holds vectors of {size} values, but the model reads "
            f"input_size={expected}: give the data it was trained on."
        )
    if max_examples is not None:
        vectors = vectors.select(range(min(max_examples, len(vectors))))
    batches = vector_batches(vectors, batch_size)
    return batches, "examples", vector_record(kind, data), len(vectors)


def evaluation_sentences(
    data: str,
    split: str,
    max_examples: int | None = None,
    *,
    text_column: str = "text",
    dataset_config_name: str | None = None,
    cache_dir: str | None = None,
    validation_split_percentage: float = 5,
    validation_split_seed: int = 0,
) -> tuple[Any, dict[str, str]]:
    """The sentences of a text evaluation (a `datasets.Dataset` with a `text` column) and
    the dataset's record.

    `data` is `synthetic`, a PTB folder or a folder of one of the papers' corpora
    (`vaehub.data.papers`, read at `split`), a one-sentence-per-line file
    (all of it, whatever `split`), a csv/json/jsonl/parquet file (all of it, the text in
    `text_column`), or a dataset folder, `save_to_disk` folder or Hub id read at `split`;
    a missing validation split is cut from train as `vaehub train` cuts it (the same
    percentage and seed give the same sentences).
    """
    from vaehub.data.corpora import FILE_BUILDERS, load_files, load_named_dataset, standard_splits
    from vaehub.data.papers import find_paper_corpus, load_paper_corpus
    from vaehub.data.text import PTB_SPLITS, load_ptb, load_text_corpus

    if data == "synthetic":
        corpus = load_corpus(DataArguments(dataset="synthetic"))
        if split not in corpus:
            raise ValueError(f"split {split!r} not in the synthetic corpus: {', '.join(corpus)}.")
        sentences, dataset = corpus[split], DATASET_NAMES["synthetic"]
    elif os.path.isdir(data) and any(
        os.path.isfile(os.path.join(data, name)) for name in PTB_SPLITS.values()
    ):
        corpus = load_ptb(data)
        if split not in corpus:
            raise ValueError(f"split {split!r} not in {data}: {', '.join(corpus)}.")
        sentences, dataset = corpus[split], DATASET_NAMES["ptb"]
    elif os.path.isdir(data) and find_paper_corpus(data):
        name = find_paper_corpus(data)
        corpus = load_paper_corpus(name, data)
        if split not in corpus:
            raise ValueError(f"split {split!r} not in {data}: {', '.join(corpus)}.")
        sentences, dataset = corpus[split], DATASET_NAMES[name]
    elif os.path.isfile(data) and os.path.splitext(data)[1].lower() in FILE_BUILDERS:
        sentences = load_files({"train": data}, text_column, cache_dir)["train"]
        dataset = {"name": os.path.basename(os.path.abspath(data)), "type": "custom"}
    elif os.path.isfile(data):
        sentences = load_text_corpus(data)["train"]
        dataset = {"name": os.path.basename(os.path.abspath(data)), "type": "custom"}
    else:
        # A dataset folder, a save_to_disk folder, or an id on the Hub.
        splits = standard_splits(
            load_named_dataset(data, dataset_config_name, text_column, cache_dir),
            f"the dataset {data}", validation_split_percentage, validation_split_seed,
        )  # fmt: skip
        if split not in splits:
            raise ValueError(f"split {split!r} not in {data}: {', '.join(splits)}.")
        sentences = splits[split]
        dataset = DataArguments(dataset_name=data).record()
    if max_examples is not None:
        sentences = sentences.select(range(min(max_examples, len(sentences))))
    return sentences, dataset
