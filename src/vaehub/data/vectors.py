"""Real-valued vectors as `datasets.Dataset`s of `inputs` `(D,)` float32, what the linear VAE
(`model_type="linear_vae"`) reads: Frey Faces, MNIST grey levels, or a `.npy`/`.npz` file.

Each source has a fixed train/validation/test split, the same at training and at
evaluation, so `vaehub evaluate --split test` measures the rows `vaehub train` held out:

- Frey Faces (`freyfaces.npz`, 1,965 faces of 28×20 grey levels): scaled to [0, 1]
  (÷ 255) and flattened row-major to 560-d. It has no official split (Kingma & Welling
  drew a random 90/10 one), so rows are permuted with `numpy.random.default_rng(0)` and
  the first 10% (196) are `test`, the next 5% (98) `validation`, the rest (1,671) `train`.
- MNIST (the four IDX files): grey levels in [0, 1], flattened to 784-d, not binarized
  (the linear VAE's decoder is Gaussian). `train` is the first 95% of the 60,000 training
  images (57,000), `validation` their last 5% (3,000), `test` the 10,000 test images: the
  split the image models use.
- A vector file: a `.npy` array `(n, D)` (or `(n, ...)`, flattened per row), or a `.npz`
  holding one such array, split as Frey Faces is; or a `.npz` whose arrays are named
  `train`, `validation` and `test` (`validation`, when absent, is the last 5% of `train`).
  Values are used as given (no scaling); they must be finite.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch import Tensor

FREY_FILE = "freyfaces.npz"
FREY_SHAPE = (28, 20)
VECTOR_FILE_SUFFIXES = (".npy", ".npz")
SPLITS = ("train", "validation", "test")
# The permuted split of Frey Faces and of a single array: test first, then validation.
TEST_FRACTION = 0.10
VALIDATION_FRACTION = 0.05
SPLIT_SEED = 0


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")


def as_rows(array: Any, where: str) -> np.ndarray:
    """`(n, ...)` numbers → `(n, D)` float32 rows, refusing what is not a set of vectors.

    Args:
        where: how the error names the array (a file and its key).
    """
    array = np.asarray(array)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise ValueError(f"{where} holds {array.dtype} values: expected numbers.")
    if array.ndim < 2:
        raise ValueError(
            f"{where} has shape {array.shape}: expected (examples, D), one vector per row "
            "(reshape a single vector to (1, D), or give several rows)."
        )
    if array.shape[0] == 0 or array[0].size == 0:
        raise ValueError(f"{where} has shape {array.shape}: it holds no value.")
    rows = array.reshape(array.shape[0], -1).astype(np.float32)
    if not np.isfinite(rows).all():
        raise ValueError(f"{where} holds NaN or infinite values: the vectors must be finite.")
    return rows


def permuted_split(rows: np.ndarray, split: str, where: str) -> np.ndarray:
    """The `split` of `(n, D)` rows as the module docstring says: permuted with seed 0, the
    first 10% `test`, the next 5% `validation`, the rest `train` (each at least one row)."""
    _check_split(split)
    n = rows.shape[0]
    if n < 3:
        raise ValueError(
            f"{where} holds {n} rows: a train, validation and test split need at least 3."
        )
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = max(1, int(n * TEST_FRACTION))
    n_validation = max(1, int(n * VALIDATION_FRACTION))
    chosen = {
        "test": order[:n_test],
        "validation": order[n_test : n_test + n_validation],
        "train": order[n_test + n_validation :],
    }[split]
    return rows[np.sort(chosen)]


def load_frey_faces(data_dir: str | os.PathLike) -> np.ndarray:
    """All 1,965 Frey faces, `(1965, 560)` float32 grey levels in [0, 1], row-major."""
    path = os.path.join(data_dir, FREY_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Frey Faces file not found: {path}. Give --data_dir the folder that holds "
            f"{FREY_FILE} (an array 'images' of shape (n, 28, 20))."
        )
    with np.load(path, allow_pickle=False) as archive:
        if "images" not in archive.files:
            raise ValueError(f"{path} holds {archive.files}, not the array 'images'.")
        images = archive["images"]
    if images.ndim != 3 or images.shape[1:] != FREY_SHAPE:
        raise ValueError(f"{path}: 'images' has shape {images.shape}, expected (n, 28, 20).")
    return as_rows(images.astype(np.float32) / 255.0, path)


def _load_mnist_rows(data_dir: str | os.PathLike, split: str) -> np.ndarray:
    from vaehub.data.images import _read_idx

    source = "t10k" if split == "test" else "train"
    path = os.path.join(data_dir, f"{source}-images-idx3-ubyte.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MNIST file not found: {path}")
    rows = as_rows(_read_idx(path) / 255.0, path)
    if split == "test":
        return rows
    # The image models' cut: the last 5% of the training images validate.
    cut = len(rows) - max(1, len(rows) // 20)
    return rows[:cut] if split == "train" else rows[cut:]


def read_vector_file(path: str | os.PathLike, split: str) -> np.ndarray:
    """The `split` rows `(n, D)` of a `.npy` or `.npz` vector file (see the module docstring)."""
    _check_split(split)
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in VECTOR_FILE_SUFFIXES:
        raise ValueError(f"{path} is not a vector file: expected a .npy or .npz file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vector file not found: {path}")
    try:
        # No pickle: an object array could run code when loaded.
        loaded = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path} cannot be read as numbers without pickle: {error}") from None
    if suffix == ".npy":
        return permuted_split(as_rows(loaded, path), split, path)
    with loaded as archive:
        names = list(archive.files)
        if "train" in names:
            if split == "test" and "test" not in names:
                raise ValueError(f"{path} has no array 'test' (it holds {', '.join(names)}).")
            if split == "test" or "validation" in names:
                return as_rows(archive[split], f"{path}['{split}']")
            # No validation array: it is cut from train, which then loses those rows.
            train = as_rows(archive["train"], f"{path}['train']")
            cut = len(train) - max(1, len(train) // 20)
            return train[:cut] if split == "train" else train[cut:]
        if len(names) != 1:
            raise ValueError(
                f"{path} holds the arrays {', '.join(names) or 'none'}: expected one array, "
                "or arrays named train, validation and test."
            )
        return permuted_split(as_rows(archive[names[0]], f"{path}['{names[0]}']"), split, path)


def vector_dataset_kind(data: str | os.PathLike) -> str:
    """Which vectors `data` names: `frey_faces` or `mnist` (a folder of their files) or
    `file` (a `.npy`/`.npz` file)."""
    data = os.fspath(data)
    if os.path.isdir(data):
        if os.path.isfile(os.path.join(data, FREY_FILE)):
            return "frey_faces"
        if os.path.isfile(os.path.join(data, "t10k-images-idx3-ubyte.gz")):
            return "mnist"
        raise ValueError(
            f"{data} holds neither {FREY_FILE} (Frey Faces) nor MNIST's IDX files: give the "
            "folder of one of them, or a .npy/.npz file of vectors."
        )
    if os.path.splitext(data)[1].lower() in VECTOR_FILE_SUFFIXES:
        if not os.path.isfile(data):
            raise FileNotFoundError(f"vector file not found: {data}")
        return "file"
    if not os.path.exists(data):
        raise FileNotFoundError(
            f"{data} does not exist: give a Frey Faces or MNIST folder, or a .npy/.npz file."
        )
    raise ValueError(f"{data} is not a Frey Faces or MNIST folder nor a .npy/.npz file of vectors.")


def load_vectors(kind: str, where: str | os.PathLike, split: str) -> Dataset:
    """The `split` of a vector source as a Dataset of `inputs` `(D,)` float32.

    Args:
        kind: `frey_faces`, `mnist` or `file` (`vector_dataset_kind`).
        where: the folder of the dataset's files, or the vector file.
    """
    _check_split(split)
    if kind == "frey_faces":
        rows = permuted_split(load_frey_faces(where), split, os.fspath(where))
    elif kind == "mnist":
        rows = _load_mnist_rows(where, split)
    elif kind == "file":
        rows = read_vector_file(where, split)
    else:
        raise ValueError(f"kind must be frey_faces, mnist or file, got {kind!r}.")
    return vector_dataset(rows)


def vector_dataset(rows: np.ndarray) -> Dataset:
    """`(n, D)` rows → a Dataset of `inputs` `(D,)` float32, rows given as numpy arrays."""
    return Dataset.from_dict({"inputs": as_rows(rows, "the vectors")}).with_format("numpy")


def vector_batches(
    dataset: Dataset, batch_size: int, device: torch.device | str | None = None
) -> Iterator[dict[str, Tensor]]:
    """Batches `{"inputs": (batch, D)}` float32 of a vector dataset, in order."""
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]["inputs"]
        yield {"inputs": torch.as_tensor(np.asarray(rows, dtype=np.float32), device=device)}
