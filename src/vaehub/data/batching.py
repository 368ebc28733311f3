"""Batches of examples: sentences of similar length together (`length_bucketed_batches`,
`LengthBucketSampler`), and fixed index batches for evaluation and the aggressive inner
loop's fresh minibatches (`index_batches`, `iterate_batches`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch import Tensor
from torch.utils.data import Sampler

from vaehub.data.text import TextCollator


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, shuffle: bool = False, seed: int = 0
) -> list[list[int]]:
    """Indices grouped into batches of sentences of similar length.

    Sorting by length keeps padding small; with `shuffle`, the batches (not their
    contents) come in a random order, deterministic by `seed`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        random.Random(seed).shuffle(batches)
    return batches


class LengthBucketSampler(Sampler[int]):
    """Training order for batches of sentences of one length where lengths allow, as He
    et al. batch them: no LSTM step and no output row is spent on padding.

    Each epoch the sentences are sorted by length (ties in a random order), cut into
    batches of `batch_size` (a batch straddles two lengths only where a length's count
    is not a multiple of it), and the batches are shuffled; the one short batch goes
    last, so that a `DataLoader` of the same batch size cuts exactly these batches.
    Deterministic by `seed` and the epoch (`set_epoch`, called by the Trainer).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        """This epoch's batches of indices, in training order."""
        rng = np.random.default_rng((self.seed, self.epoch))
        ties = rng.permutation(len(self.lengths))
        order = np.lexsort((ties, self.lengths)).tolist()
        size = self.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        short = [batches.pop()] if batches and len(batches[-1]) < size else []
        return [batches[i] for i in rng.permutation(len(batches))] + short

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch


def iterate_batches(
    dataset: Dataset, batch_size: int, pad_token_id: int, device: torch.device | str | None = None
) -> Iterator[dict[str, Tensor]]:
    """Padded batches of a tokenized dataset, grouped by length, in a fixed order."""
    collate = TextCollator(pad_token_id)
    for indices in length_bucketed_batches(dataset["length"], batch_size):
        batch = collate(dataset.select(indices))
        yield {k: v.to(device) for k, v in batch.items()}


def index_batches(dataset: Any, batch_size: int) -> list[list[int]]:
    """Row indices in batches: sentences (a `length` column) grouped by length, anything
    else in order."""
    if "length" in (getattr(dataset, "column_names", None) or []):
        return length_bucketed_batches(dataset["length"], batch_size)
    size = len(dataset)
    return [list(range(i, min(i + batch_size, size))) for i in range(0, size, batch_size)]


class BucketedStream(torch.utils.data.IterableDataset):
    """Length-bucketed training order for a corpus read as a stream (`--streaming`).

    Rows (dicts with `input_ids` and `length`) are read into a buffer of `buffer_size`;
    a full buffer is sorted by length (ties at random), cut into batches of `batch_size`
    and the batches are yielded in a random order, row by row, so that a `DataLoader` of
    the same batch size cuts exactly these batches. A remainder shorter than a batch is
    carried into the next buffer; the last one goes out at the end of the stream. Memory
    holds one buffer, whatever the corpus' size.

    Deterministic by `seed` and the epoch (`set_epoch`, called by the Trainer); the
    upstream stream is shuffled with the same seed when it can be (`datasets`'
    `IterableDataset.shuffle` over its own buffer).
    """

    def __init__(self, rows: Any, batch_size: int, buffer_size: int = 10000, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if buffer_size < batch_size:
            raise ValueError(
                f"the shuffle buffer ({buffer_size}) must hold at least one batch ({batch_size})."
            )
        self.rows, self.batch_size, self.buffer_size = rows, batch_size, buffer_size
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.rows, "set_epoch"):
            self.rows.set_epoch(epoch)

    def _cut(self, buffer: list[dict], rng: np.random.Generator, final: bool) -> tuple[list, list]:
        """Batches of a sorted buffer in random order, and the rows left for the next one."""
        ties = rng.permutation(len(buffer))
        order = np.lexsort((ties, [row["length"] for row in buffer])).tolist()
        size = self.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        short = [] if len(batches[-1]) == size else [batches.pop()]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        # At the end the short batch goes last (a DataLoader cuts the same batches); before
        # it, its rows wait for the next buffer.
        batches, rest = (batches + short, []) if final else (batches, sum(short, []))
        return [[buffer[i] for i in b] for b in batches], [buffer[i] for i in rest]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        buffer: list[dict[str, Any]] = []
        for row in self.rows:
            buffer.append({"input_ids": row["input_ids"], "length": row["length"]})
            if len(buffer) >= self.buffer_size:
                batches, buffer = self._cut(buffer, rng, final=False)
                for batch in batches:
                    yield from batch
        if buffer:
            batches, _ = self._cut(buffer, rng, final=True)
            for batch in batches:
                yield from batch
