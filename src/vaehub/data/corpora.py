"""Any text corpus through 🤗 `datasets`, the way transformers' language-modelling examples
take one: a dataset repository on the Hub or a local dataset folder (`--dataset_name`,
`--dataset_config_name`), a folder written by `Dataset.save_to_disk`, or files per split
(`--train_file`, `--validation_file`, `--test_file`) in txt, csv, json/jsonl or parquet,
with the text in `--text_column`.

Every corpus comes out with one column, `text`, blank and missing rows dropped, and the
splits `train`, `validation` (cut from train when the data has none) and maybe `test`.
Reading goes through `datasets`, so the converted Arrow files, the tokenization and the
length column are cached under the `datasets` cache and a second run reuses them. With
`streaming`, the train split is read lazily and never held in memory whole.

Data that cannot be used is refused with a `ValueError` that names the file (or dataset)
and the line, row or column at fault.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from datasets import Dataset, DatasetDict, IterableDataset, load_dataset, load_from_disk

from vaehub.data.text import check_text_file

logger = logging.getLogger(__name__)

# File extension -> the `datasets` builder that reads it.
FILE_BUILDERS = {
    ".txt": "text",
    ".text": "text",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}
# Split names other corpora use for what vaehub calls `validation` (He et al.'s `valid`).
VALIDATION_ALIASES = ("validation", "valid", "dev", "val")
# Streaming cannot cut a fraction of a corpus whose size it does not know: without a
# validation split it holds out this many first examples instead (or --max_eval_examples).
STREAMING_VALIDATION_EXAMPLES = 1000
STREAM_BLOCK_BYTES = 1 << 20


def builder_of(path: str) -> str:
    """The `datasets` builder for a data file, from its extension."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FILE_BUILDERS:
        raise ValueError(
            f"{path}: vaehub reads {', '.join(sorted(FILE_BUILDERS))} files, not "
            f"'{extension or 'no extension'}'."
        )
    return FILE_BUILDERS[extension]


def is_saved_dataset(path: str) -> bool:
    """Whether `path` is a folder written by `Dataset.save_to_disk` or
    `DatasetDict.save_to_disk` (read with `load_from_disk`, not `load_dataset`)."""
    return os.path.isdir(path) and any(
        os.path.isfile(os.path.join(path, name)) for name in ("dataset_dict.json", "state.json")
    )


def load_files(
    files: dict[str, str],
    text_column: str = "text",
    cache_dir: str | None = None,
    streaming: bool = False,
) -> dict[str, Dataset | IterableDataset]:
    """Read one data file per split into datasets with a `text` column.

    Args:
        files: split name -> path of a txt, csv, json/jsonl or parquet file. Each split is
            read by its own builder, so the splits may come in different formats.
        text_column: the column holding the text (txt files have only `text`).
    """
    splits: dict[str, Dataset | IterableDataset] = {}
    for split, path in files.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"the {split} file {path} does not exist.")
        builder = builder_of(path)
        if builder != "parquet":
            # Encoding and emptiness, with the byte and line at fault: `datasets` would raise
            # a DatasetGenerationError naming neither.
            check_text_file(path, split)
        # Streamed text is read in blocks of this many bytes (datasets' default, 10 MiB,
        # becomes some 100 MiB of Python strings at once).
        options = {"chunksize": STREAM_BLOCK_BYTES} if streaming and builder == "text" else {}
        try:
            data = load_dataset(
                builder, data_files={split: path}, split=split, cache_dir=cache_dir,
                streaming=streaming, **options,
            )  # fmt: skip
        except Exception as error:
            cause = error.__cause__ or error
            if "corresponds to no data" in str(cause):
                # `datasets`' words for a split of no rows (a csv of its header alone).
                raise ValueError(f"the {split} file {path} holds no text (no rows).") from None
            raise ValueError(
                f"the {split} file {path} could not be read as {builder}: "
                f"{type(cause).__name__}: {cause}"
            ) from error
        column = "text" if builder == "text" else text_column
        splits[split] = text_only(data, column, f"the {split} file {path}", builder)
    return splits


def text_only(
    data: Dataset | IterableDataset, column: str, where: str, builder: str | None = None
) -> Dataset | IterableDataset:
    """`data` reduced to its `column`, renamed `text`, with empty and missing rows dropped.

    Raises a `ValueError` naming `where` and the columns there are when `column` is
    missing, when it does not hold strings, or (in memory) when no row has text; a row
    whose text is not a string is named by its line (jsonl, csv) or row.
    """
    columns = list(data.column_names or []) if data.column_names is not None else None
    if columns is not None and column not in columns:
        raise ValueError(
            f"{where} has no column {column!r}; its columns are {', '.join(map(repr, columns))}."
            " Name the text column with --text_column."
        )
    features = data.features
    if features is not None and column in features:
        dtype = getattr(features[column], "dtype", None)
        if dtype not in ("string", "large_string", None):
            raise ValueError(
                f"{where}: column {column!r} holds {dtype}, not text. Name the text column "
                "with --text_column."
            )
    if columns is None:
        # A stream whose columns are known only once read: each row is checked as it comes.
        data = data.map(_Pick(column, where))
    else:
        data = data.select_columns([column])
        if column != "text":
            data = data.rename_column(column, "text")
    if isinstance(data, IterableDataset):
        return data.filter(_has_text)
    kept = data.filter(_has_text, desc="dropping blank rows")
    if len(kept) == 0:
        raise ValueError(
            f"{where} holds no text in column {column!r} ({len(data)} rows, all empty or "
            "missing)."
        )
    return kept


class _Pick:
    """Copies `column` of a streamed row to `text`, refusing a row without it."""

    def __init__(self, column: str, where: str) -> None:
        self.column, self.where = column, where

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.column not in row:
            raise ValueError(
                f"{self.where} has no column {self.column!r}; its columns are "
                f"{', '.join(map(repr, row))}. Name the text column with --text_column."
            )
        return {"text": row[self.column]}


def _has_text(row: dict[str, Any]) -> bool:
    text = row["text"]
    return isinstance(text, str) and bool(text.strip())


def load_named_dataset(
    name: str,
    config_name: str | None = None,
    text_column: str = "text",
    cache_dir: str | None = None,
    streaming: bool = False,
) -> dict[str, Dataset | IterableDataset]:
    """A dataset repository by Hub id, a local dataset folder (files `load_dataset` infers
    splits from), or a `save_to_disk` folder, as splits with a `text` column.

    Network failures are explained through `vaehub.utils.network` (its timeouts apply to
    every request `datasets` makes): a silent server is named, and a dataset already in
    the cache is used from there.
    """
    from vaehub.utils import network

    if is_saved_dataset(name):
        if streaming:
            raise ValueError(f"{name} is a save_to_disk folder: it is read memory-mapped, drop "
                             "--streaming.")  # fmt: skip
        saved = load_from_disk(name)
        loaded = saved if isinstance(saved, DatasetDict) else DatasetDict(train=saved)
    else:
        started = time.monotonic()
        try:
            loaded = load_dataset(name, config_name, cache_dir=cache_dir, streaming=streaming)
        except Exception as error:
            reason = network.explain(error, name)
            silent = network.silent_since(started)
            if reason is None and silent is not None and isinstance(error, ConnectionError):
                # `datasets` re-raises a timeout as a bare ConnectionError, its cause dropped.
                reason = f"{silent}, and the dataset is not in the cache"
            if reason is None:
                raise
            raise ValueError(f"loading the dataset {name} failed: {reason}") from error
    return {
        split: text_only(data, text_column, f"split {split!r} of the dataset {name}")
        for split, data in loaded.items()
    }


def standard_splits(
    splits: dict[str, Dataset | IterableDataset],
    where: str,
    validation_split_percentage: float = 5,
    seed: int = 0,
    max_eval_examples: int | None = None,
) -> dict[str, Dataset | IterableDataset]:
    """`train`, `validation` and maybe `test`: a validation split under another name is
    renamed, and a missing one is cut from train.

    In memory the cut is `validation_split_percentage` % of train, chosen at random with
    `seed` (`Dataset.train_test_split`, whose indices `datasets` caches). Streaming, where
    the size is unknown, the first `max_eval_examples` (default
    `STREAMING_VALIDATION_EXAMPLES`) examples are held out.
    """
    splits = dict(splits)
    if "train" not in splits:
        raise ValueError(f"{where} has no train split; its splits are {', '.join(splits)}.")
    for alias in VALIDATION_ALIASES[1:]:
        if "validation" not in splits and alias in splits:
            splits["validation"] = splits.pop(alias)
    if "validation" not in splits:
        train = splits["train"]
        if isinstance(train, IterableDataset):
            count = max_eval_examples or STREAMING_VALIDATION_EXAMPLES
            logger.warning(
                "%s has no validation split: the first %d training examples are held out "
                "as one (streaming, so not a percentage).", where, count,
            )  # fmt: skip
            splits["validation"], splits["train"] = train.take(count), train.skip(count)
        else:
            if not 0 < validation_split_percentage < 100:
                raise ValueError(
                    "--validation_split_percentage must be within (0, 100), got "
                    f"{validation_split_percentage}."
                )
            if len(train) < 2:
                raise ValueError(f"{where}: one training example cannot be split in two.")
            cut = train.train_test_split(
                test_size=validation_split_percentage / 100, seed=seed, shuffle=True
            )
            logger.warning(
                "%s has no validation split: %g%% of train (%d examples, seed %d) is held "
                "out as one.", where, validation_split_percentage, len(cut["test"]), seed,
            )  # fmt: skip
            splits["train"], splits["validation"] = cut["train"], cut["test"]
    return {name: splits[name] for name in ("train", "validation", "test") if name in splits}


def materialize(data: Dataset | IterableDataset, limit: int | None, where: str) -> Dataset:
    """An evaluation split in memory (evaluation batches by length, which needs all its
    rows): a streamed split is read, up to `limit` examples."""
    if isinstance(data, Dataset):
        return data
    rows = list(data.take(limit) if limit is not None else data)
    if not rows:
        raise ValueError(f"{where} holds no text.")
    return Dataset.from_list(rows)


def first_texts(data: Iterable[dict[str, Any]], count: int) -> list[str]:
    """The text of the first `count` examples of a (streamed) split: what the vocabulary of
    a streamed corpus is built from."""
    if count < 1:
        raise ValueError(f"--vocab_examples must be >= 1, got {count}.")
    texts = []
    for row in data:
        texts.append(row["text"])
        if len(texts) == count:
            break
    return texts
