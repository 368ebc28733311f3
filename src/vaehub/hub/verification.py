"""A verification slice: the record (`verification.json`) of what a release measured on the
first N examples of a named split, read back by the card and by `vaehub verify`, with the
tolerance a measurement again must fall within."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from typing import Any

from vaehub.evaluation.metrics import MAX_IW_SAMPLES
from vaehub.latent.refinement import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_MAX_GRAD_NORM,
    DEFAULT_MOMENTUM,
    Refinement,
    changed_refinement,
)
from vaehub.utils.formatting import COUNTS

VERIFICATION_FILE = "verification.json"


# Datasets a slice can name without a path: they are generated or ship with a package.
SELF_CONTAINED = ("synthetic", "digits")


# A measured value agrees with its card when |card − measured| ≤ max(ABSOLUTE, RELATIVE·|card|);
# the card rounds to 4 decimals, and the same weights, seed and slice give the same sums up
# to the order of floating-point additions. Counts (active units) must agree exactly.
ABSOLUTE_TOLERANCE = 0.002


RELATIVE_TOLERANCE = 1e-4


SLICE_SPLIT = re.compile(r"^(?P<split>[A-Za-z_]+)\[:(?P<first>\d+)\]$")


STORAGE_DTYPES = ("float32", "float16", "bfloat16")


# What a slice may ask of `verify` (its K is bounded by metrics.MAX_IW_SAMPLES).
MAX_SLICE_EXAMPLES = 10_000


MAX_SLICE_BATCH = 4096


MAX_REFINE_STEPS = 1000


class VerificationError(ValueError):
    """A checkpoint's card names no verification slice, or names one that cannot be read."""


@dataclass(frozen=True)
class VerificationSlice:
    """The first `first` examples of `split` of `data`, measured with `seed` and K =
    `iw_samples` in batches of `batch_size`; with `refine_steps` > 0, on the posterior
    refined by that many SVI steps of step size `refine_lr`, momentum `refine_momentum` and
    gradients clipped at norm `refine_max_grad_norm` (an SA-VAE is measured as it was trained).

    `data` is `synthetic` or `digits` (no files needed) or the kind of a dataset read from
    files (`ptb`, `mnist`, `omniglot`, `frey_faces`, or `file:<name>`), whose path `verify`
    is given.
    """

    data: str
    split: str
    first: int
    seed: int = 0
    iw_samples: int = 100
    batch_size: int = 64
    refine_steps: int = 0
    refine_lr: float = DEFAULT_LEARNING_RATE
    refine_momentum: float = DEFAULT_MOMENTUM
    refine_max_grad_norm: float = DEFAULT_MAX_GRAD_NORM

    def __post_init__(self) -> None:
        # A card names its slice, and `verify` measures what the card says: every number
        # that sets the work is bounded, so a card cannot demand unbounded compute.
        bounds = {
            "first": (1, MAX_SLICE_EXAMPLES),
            "iw_samples": (1, MAX_IW_SAMPLES),
            "batch_size": (1, MAX_SLICE_BATCH),
            "refine_steps": (0, MAX_REFINE_STEPS),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise VerificationError(
                    f"the verification slice's {name}={value:,} is outside [{low}, {high:,}]: "
                    "a slice is a quick check of a card, and this one would ask for "
                    + ("unbounded work." if value > high else "nothing to measure.")
                )

    @property
    def split_name(self) -> str:
        """How the card names the slice, as the `datasets` slicing syntax does."""
        return f"{self.split}[:{self.first}]"

    @property
    def refinement(self) -> Refinement:
        """The refinement the slice is measured with (`evaluate_vae(refinement=...)`)."""
        return Refinement.from_record(asdict(self))

    def card_args(self) -> dict[str, Any]:
        """The slice's settings as the model-index dataset's `args`: of the refinement's,
        those that are not Kim et al.'s."""
        args = {"data": self.data, "seed": self.seed, "iw_samples": self.iw_samples,
                "batch_size": self.batch_size}  # fmt: skip
        if self.refine_steps:
            args["refine_steps"] = self.refine_steps
            args.update(changed_refinement(asdict(self)))
        return args


def data_kind(data: str) -> str:
    """What a slice records of `--data`: a self-contained name as given, else the kind of
    dataset the path holds."""
    if data in SELF_CONTAINED:
        return data
    if os.path.isdir(data):
        if os.path.isfile(os.path.join(data, "ptb.train.txt")):
            return "ptb"
        if os.path.isfile(os.path.join(data, "t10k-images-idx3-ubyte.gz")):
            return "mnist"
        if os.path.isfile(os.path.join(data, "images_evaluation.npz")):
            return "omniglot"
        if os.path.isfile(os.path.join(data, "freyfaces.npz")):
            return "frey_faces"
    if os.path.isfile(data):
        return f"file:{os.path.basename(data)}"
    raise ValueError(
        f"--data {data!r} is neither {' nor '.join(SELF_CONTAINED)} nor a PTB, MNIST, "
        "Omniglot or Frey Faces folder, a one-sentence-per-line file or a .npy/.npz file of "
        "vectors."
    )


def read_verification(folder: str) -> tuple[VerificationSlice, dict[str, Any]] | None:
    """A folder's verification slice and the metrics measured on it (`verification.json`),
    or `None` when it has none."""
    path = os.path.join(folder, VERIFICATION_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        piece = VerificationSlice(**{k: v for k, v in record.items() if k != "metrics"})
        return piece, dict(record["metrics"])
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise VerificationError(f"{path} is not a readable verification record: {error}") from error


@dataclass(frozen=True)
class Check:
    """One number of the card against the same number measured again."""

    metric: str
    card: float
    measured: float | None
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.measured is not None and abs(self.card - self.measured) <= self.tolerance


def tolerance(metric_key: str, value: float) -> float:
    """How far a re-measured metric may lie from its card value."""
    if metric_key in COUNTS:
        return 0.0
    return max(ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE * abs(value))
