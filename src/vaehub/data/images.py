"""Image sets as `datasets.Dataset`s of `pixel_values` `(1, H, W)` in [0, 1]: MNIST (IDX
files), Omniglot (the chardata .mat arrays) and scikit-learn's digits; the collator that
binarises them and the batches the image models take."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch import Tensor


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
