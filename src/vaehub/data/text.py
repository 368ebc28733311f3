"""Text corpora as `datasets.Dataset`s: one sentence per line (checked for encoding and
emptiness, naming the file and line), PTB's splits, tokenization with truncation counted,
and the collator that pads token ids into `(batch, seq_len)` tensors."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from datasets import DatasetDict, load_dataset
from torch import Tensor

PTB_SPLITS = {"train": "ptb.train.txt", "validation": "ptb.valid.txt", "test": "ptb.test.txt"}


def load_text_corpus(data_files: str | os.PathLike | Sequence[str] | dict[str, Any]) -> DatasetDict:
    """Read one-sentence-per-line files into a `DatasetDict` with a `text` column.

    Args:
        data_files: a file, a list of files (one `train` split), or a mapping from split
            name to file(s), as `datasets.load_dataset` takes them. Blank lines are dropped.
    """
    files = data_files if isinstance(data_files, dict) else {"train": data_files}
    for split, paths in files.items():
        for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"corpus file for split {split!r} not found: {path}")
    files = {
        split: [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        for split, paths in files.items()
    }
    for split, paths in files.items():
        for path in paths:
            check_text_file(path, split)
    corpus = load_dataset("text", data_files=files)
    return corpus.filter(lambda row: bool(row["text"].strip()), desc="dropping blank lines")


def check_text_file(path: str, split: str) -> None:
    """Refuse a corpus file that is not UTF-8 text with at least one sentence, naming the
    file (and the byte where decoding failed); `datasets` would raise a
    `DatasetGenerationError` that names neither."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines, sentences = 0, 1, False
    with open(path, "rb") as handle:
        first = True
        # Read in blocks: a corpus may be larger than memory is comfortable with.
        for block in iter(lambda: handle.read(1 << 20), b""):
            if first and block[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise ValueError(
                    f"the {split} file {path} is UTF-16 text; vaehub reads UTF-8. Convert "
                    f"it, e.g. `iconv -f UTF-16 -t UTF-8 {path} > {path}.utf8`, and give that "
                    "file."
                )
            first = False
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as error:
                at = offset + error.start
                line = lines + block[: error.start].count(b"\n")
                raise ValueError(
                    f"the {split} file {path} is not UTF-8 text: byte {at} (line {line}) is "
                    f"{block[error.start : error.start + 1]!r}. Convert it to UTF-8 (e.g. "
                    "`iconv -f LATIN1 -t UTF-8`) and give that file."
                ) from None
            sentences = sentences or bool(text.strip())
            offset += len(block)
            lines += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValueError(
            f"the {split} file {path} is not UTF-8 text: it ends inside a character. Convert "
            "it to UTF-8 and give that file."
        ) from None
    if not sentences:
        raise ValueError(
            f"the {split} file {path} holds no sentences (it is empty or blank): give a file "
            "with one sentence per line."
        )


def load_ptb(data_dir: str | os.PathLike) -> DatasetDict:
    """The Penn Treebank `train` / `validation` / `test` splits from `ptb.*.txt` files."""
    missing = [
        name for name in PTB_SPLITS.values() if not os.path.isfile(os.path.join(data_dir, name))
    ]
    if missing:
        raise FileNotFoundError(f"{data_dir} lacks the PTB files {', '.join(missing)}.")
    return load_text_corpus(
        {split: os.path.join(data_dir, name) for split, name in PTB_SPLITS.items()}
    )


def tokenize_corpus(
    dataset: Any,
    tokenizer: Any,
    max_length: int,
    text_column: str = "text",
    *,
    load_from_cache_file: bool | None = None,
    num_proc: int | None = None,
) -> Any:
    """Add `input_ids` (`<s> … </s>`) and `length`; sentences over `max_length` tokens are
    truncated (keeping `</s>`), with one warning giving how many were.

    `datasets` caches the result beside a corpus read from files (the function's
    fingerprint covers the tokenizer and `max_length`): a second run reads the cache
    instead of tokenizing, unless `load_from_cache_file=False`. `num_proc` processes
    tokenize. A streamed split (`datasets.IterableDataset`) is tokenized as it is read;
    its truncations are not counted.
    """
    from datasets import IterableDataset

    def encode(batch: dict[str, list]) -> dict[str, list]:
        # list(): datasets 5 hands a column over as a Column object.
        texts = list(batch[text_column])
        rows, truncated = truncate_rows(tokenizer(texts)["input_ids"], max_length)
        flags = [False] * len(rows)
        for i in truncated:
            flags[i] = True
        return {"input_ids": rows, "length": [len(row) for row in rows], "truncated": flags}

    def run(split: Any) -> Any:
        if isinstance(split, IterableDataset):
            return split.map(encode, batched=True).remove_columns("truncated")
        out = split.map(
            encode, batched=True, desc="tokenizing", load_from_cache_file=load_from_cache_file,
            num_proc=num_proc if num_proc and num_proc > 1 and len(split) > 1 else None,
        )  # fmt: skip
        cut = sum(out["truncated"])
        if cut:
            warnings.warn(
                f"{cut} of {len(out)} sentences exceed max_length={max_length} tokens "
                "and were truncated.",
                stacklevel=3,
            )
        return out.remove_columns("truncated")

    if isinstance(dataset, dict):
        return type(dataset)({name: run(split) for name, split in dataset.items()})
    return run(dataset)


class TextCollator:
    """Pads a list of `{"input_ids": [...]}` rows to `input_ids` and `attention_mask`
    tensors `(batch, longest)`; other columns are dropped."""

    def __init__(self, pad_token_id: int = 0) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        if not rows:
            raise ValueError("cannot collate an empty batch.")
        input_ids, attention_mask = pad_rows([row["input_ids"] for row in rows], self.pad_token_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask}


def truncate_rows(rows: list[list[int]], max_length: int) -> tuple[list[list[int]], list[int]]:
    """Cut token-id rows longer than `max_length`, keeping each one's final `</s>`.

    Returns:
        the rows, and the indices of those that were cut.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 (<s> and </s>), got {max_length}.")
    truncated = [i for i, row in enumerate(rows) if len(row) > max_length]
    for i in truncated:
        rows[i] = rows[i][: max_length - 1] + rows[i][-1:]
    return rows, truncated


def pad_rows(
    rows: Sequence[Sequence[int]], pad_token_id: int, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Right-pad token-id lists to `(batch, longest)` ids and attention mask."""
    longest = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, : len(row)] = 1
    return input_ids.to(device), attention_mask.to(device)
