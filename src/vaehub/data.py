"""Corpora and images as `datasets.Dataset`s, ready for the text VAE and the δ-VAE.

- `load_text_corpus`: one sentence per line, through `load_dataset("text", ...)`.
- `load_ptb`: the Penn Treebank splits (Mikolov's 10k-vocabulary version).
- `synthetic_corpus`: He et al. 2019's synthetic data, generated here, deterministic by
  seed; the embedded default that needs no files.
- `tokenize_corpus`, `TextCollator`, `length_bucketed_batches`, `index_batches`: ids,
  padding, and batches of sentences of similar length.
- `load_mnist`, `load_omniglot`, `load_digits`: images as grey levels in [0, 1];
  `ImageCollator` binarizes them afresh at every batch (dynamic binarization).
"""

from __future__ import annotations

import gzip
import os
import random
import struct
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict, load_dataset
from torch import Tensor, nn
from torch.utils.data import Sampler

from vaehub.tokenization import pad_rows, truncate_rows

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
    dataset: Dataset | DatasetDict, tokenizer: Any, max_length: int, text_column: str = "text"
) -> Dataset | DatasetDict:
    """Add `input_ids` (`<s> … </s>`) and `length`; sentences over `max_length` tokens are
    truncated (keeping `</s>`), with one warning giving how many were.
    """

    def encode(batch: dict[str, list]) -> dict[str, list]:
        rows, truncated = truncate_rows(tokenizer(batch[text_column])["input_ids"], max_length)
        flags = [False] * len(rows)
        for i in truncated:
            flags[i] = True
        return {"input_ids": rows, "length": [len(row) for row in rows], "truncated": flags}

    def run(split: Dataset) -> Dataset:
        out = split.map(encode, batched=True, desc="tokenizing")
        cut = sum(out["truncated"])
        if cut:
            warnings.warn(
                f"{cut} of {len(out)} sentences exceed max_length={max_length} tokens "
                "and were truncated.",
                stacklevel=3,
            )
        return out.remove_columns("truncated")

    if isinstance(dataset, DatasetDict):
        return DatasetDict({name: run(split) for name, split in dataset.items()})
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


# --- He et al. 2019 synthetic data (their synthetic experiment's generator) --------------

MIXTURE_CENTRES = ((2.0, 2.0), (2.0, -2.0), (-2.0, 2.0), (-2.0, -2.0))


def synthetic_corpus(
    num_sentences: int = 20000,
    seed: int = 0,
    vocab_size: int = 1000,
    sentence_length: int = 10,
    embedding_size: int = 100,
    hidden_size: int = 100,
    batch_size: int = 2000,
) -> Dataset:
    """Sentences from a fixed random LSTM language model conditioned on a 2-d latent.

    The generator of He et al. 2019: z from a mixture of 4 unit-variance Gaussians
    centred at (±2, ±2); the first token uniform at random; an LSTM with 100-d embeddings
    and 100 hidden units, its initial state c₀ = W z, h₀ = tanh(c₀), z concatenated to
    every input and added to the logits through a fixed linear map with weights
    U(−5, 5); every other weight U(−1, 1), drawn once from `seed` and fixed; each token
    sampled from the softmax. Tokens are written as their ids, as in the authors' files.

    Returns:
        a `Dataset` with `text` (space-separated token ids), `z` (the 2-d latent that
        generated the sentence) and `component` (its mixture component, 0–3).
    """
    for name, value in (
        ("num_sentences", num_sentences),
        ("vocab_size", vocab_size),
        ("sentence_length", sentence_length),
        ("embedding_size", embedding_size),
        ("hidden_size", hidden_size),
        ("batch_size", batch_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    generator = torch.Generator().manual_seed(seed)
    embedding = nn.Embedding(vocab_size, embedding_size)
    lstm = nn.LSTMCell(embedding_size + 2, hidden_size)
    latent_to_state = nn.Linear(2, hidden_size, bias=False)
    hidden_to_logits = nn.Linear(hidden_size, vocab_size, bias=False)
    with torch.no_grad():
        for module in (embedding, lstm, latent_to_state, hidden_to_logits):
            for parameter in module.parameters():
                parameter.uniform_(-1.0, 1.0, generator=generator)
    latent_to_logits = torch.empty(2, vocab_size).uniform_(-5.0, 5.0, generator=generator)
    centres = torch.tensor(MIXTURE_CENTRES)

    texts, latents, components = [], [], []
    with torch.no_grad():
        for start in range(0, num_sentences, batch_size):
            n = min(batch_size, num_sentences - start)
            component = torch.randint(0, 4, (n,), generator=generator)
            z = centres[component] + torch.randn(n, 2, generator=generator)
            token = torch.randint(0, vocab_size, (n,), generator=generator)
            c = latent_to_state(z)
            state = (torch.tanh(c), c)
            tokens = [token]
            for _ in range(sentence_length - 1):
                state = lstm(torch.cat([embedding(token), z], dim=-1), state)
                logits = hidden_to_logits(state[0]) + z @ latent_to_logits
                token = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
                tokens.append(token)
            rows = torch.stack(tokens, dim=1).tolist()
            texts += [" ".join(map(str, row)) for row in rows]
            latents += z.tolist()
            components += component.tolist()
    return Dataset.from_dict({"text": texts, "z": latents, "component": components})


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


# --- images ----------------------------------------------------------------------------------


def _read_idx(path: str) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped."""
    with gzip.open(path, "rb") as handle:
        _, _, dims = struct.unpack(">HBB", handle.read(4))
        shape = struct.unpack(">" + "I" * dims, handle.read(4 * dims))
        return np.frombuffer(handle.read(), dtype=np.uint8).reshape(shape)


def _image_dataset(images: np.ndarray, labels: np.ndarray | None) -> Dataset:
    """`(n, H, W)` grey levels in [0, 1] → a Dataset of `pixel_values` `(1, H, W)`."""
    columns: dict[str, Any] = {"pixel_values": images[:, None].astype(np.float32)}
    if labels is not None:
        columns["label"] = labels.astype(np.int64)
    return Dataset.from_dict(columns).with_format("numpy")


def load_mnist(data_dir: str | os.PathLike, split: str = "train") -> Dataset:
    """MNIST grey levels in [0, 1] (`pixel_values` `(1, 28, 28)`, `label`), from the four
    IDX files. `ImageCollator` binarizes them afresh at every batch (dynamic binarization).

    Args:
        split: `"train"` (60,000 images) or `"test"` (10,000).
    """
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    images_path = os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")
    labels_path = os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz")
    for path in (images_path, labels_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"MNIST file not found: {path}")
    return _image_dataset(_read_idx(images_path) / 255.0, _read_idx(labels_path))


def load_omniglot(data_dir: str | os.PathLike, split: str = "train", size: int = 28) -> Dataset:
    """Omniglot ink in [0, 1] resized from 105×105 to `size`×`size` (bilinear).

    This approximates, and does not equal, the 28×28 file of Burda et al. (IWAE) that He
    et al. use; numbers on it are close to, not comparable with, theirs.

    Args:
        split: `"train"` (the background alphabets, 19,280 images) or `"test"` (the
            evaluation alphabets, 13,180).
    """
    from PIL import Image

    name = {"train": "images_background.npz", "test": "images_evaluation.npz"}.get(split)
    if name is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Omniglot file not found: {path}")
    with np.load(path, allow_pickle=False) as archive:
        ink = ~archive["images"].reshape(-1, 105, 105)  # stored with True for background
        labels = archive["labels"].reshape(-1)
    resized = np.stack(
        [
            np.asarray(
                Image.fromarray(image.astype(np.uint8) * 255).resize((size, size), Image.BILINEAR)
            )
            for image in ink
        ]
    )
    return _image_dataset(resized / 255.0, labels)


def load_digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8×8 digits (1,797 images, 0–16 → [0, 1]): the embedded image
    data, no files needed. A fixed random `test_fraction` is held out as `"test"`."""
    from sklearn.datasets import load_digits as sklearn_digits

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    digits = sklearn_digits()
    order = np.random.default_rng(seed).permutation(len(digits.images))
    cut = int(round(len(order) * (1 - test_fraction)))
    chosen = order[:cut] if split == "train" else order[cut:]
    return _image_dataset(digits.images[chosen] / 16.0, digits.target[chosen])


class ImageCollator:
    """Stacks `pixel_values` rows into `(batch, channels, H, W)`; with `binarize`, draws
    each pixel as Bernoulli(grey level) anew at every call (dynamic binarization)."""

    def __init__(self, binarize: bool = True, generator: torch.Generator | None = None) -> None:
        self.binarize, self.generator = binarize, generator

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        if not rows:
            raise ValueError("cannot collate an empty batch.")
        pixels = torch.as_tensor(
            np.stack([np.asarray(row["pixel_values"]) for row in rows]), dtype=torch.float32
        )
        if self.binarize:
            pixels = torch.bernoulli(pixels, generator=self.generator)
        return {"pixel_values": pixels}


def image_batches(
    dataset: Dataset,
    batch_size: int,
    binarize: bool = True,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Iterator[dict[str, Tensor]]:
    """Batches of an image dataset in order, binarized with a fixed seed (repeatable)."""
    collate = ImageCollator(binarize, torch.Generator().manual_seed(seed))
    for start in range(0, len(dataset), batch_size):
        batch = collate(dataset.select(range(start, min(start + batch_size, len(dataset)))))
        yield {k: v.to(device) for k, v in batch.items()}
