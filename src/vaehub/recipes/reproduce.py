"""He et al. 2019's Tables 1 and 2 in kind: every row a `vaehub train` recipe, resumable.

A row is one model and objective trained by one named recipe on one dataset with a stated
budget. Here a row is data: the settings (field values of `ModelArguments`, `DataArguments`
and `VAETrainingArguments`, e.g. `{"objective": "beta", "beta": 0.2}`) it adds to its
dataset's recipe (`TEXT_DATASETS`, `IMAGE_DATASETS`); `row_arguments` builds the three
argument objects of one row and seed, which `run_row` hands to `run_training`. Every row of a
table gets the same number of updates (`max_steps`) and seed, and every row with a latent is
measured beside the exact NLL of its own decoder trained without one (the table's first row,
same seed).

`reproduce_table` trains the rows in order into `OUTPUT/<dataset>/<row>/seed-<s>/` (a
`vaehub train` model folder: weights, tokenizer, `eval_<split>.json`, `training.json`, and
the row's `settings.json` and `command.txt`, the `vaehub train` command that reruns it),
skips a row whose folder already holds its results, resumes a row stopped part-way from
its last checkpoint (under the settings it started with only), and after each row rewrites
`table.json`, `table.md` and the figure `collapse.png` (KL and MI of each row against its
ΔNLL to the exact baseline). An interrupted table therefore loses at most the part of one
row since its last checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from vaehub import hub
from vaehub.recipes.train import (
    build_arguments,
    changed_settings,
    chosen_by_command,
    chosen_settings,
    settings_flags,
    train_in_folder,
)
from vaehub.utils.safe_io import write_json, write_text

if TYPE_CHECKING:
    from vaehub.data.sources import DataArguments
    from vaehub.recipes.train import ModelArguments
    from vaehub.training.arguments import VAETrainingArguments

# A row's or a recipe's settings: field name of ModelArguments, DataArguments or
# VAETrainingArguments → its value, typed as the field is (`{"beta": 0.2}`, not "0.2").
Settings = Mapping[str, Any]

# What every text row starts from, by dataset. He et al.'s optimisation for PTB and
# one-sentence-per-line files; the demo's for the small synthetic model, whose 2-d latent
# and 50-unit LSTMs SGD at lr 1.0 trains far more slowly.
TEXT_DATASETS: dict[str, Settings] = {
    "synthetic": {
        "dataset": "synthetic", "preset": "synthetic", "optim": "adamw_torch",
        "learning_rate": 3e-3, "lr_scheduler_type": "constant",
        "per_device_train_batch_size": 32, "max_grad_norm": 5.0,
    },
    "ptb": {"dataset": "ptb", "preset": "ptb", "paper_training": True},
    "files": {"dataset": "files", "preset": "ptb", "paper_training": True},
}  # fmt: skip
# The images: Adam at 1e-3, batch 32, the δ-VAE's default sizes for every row (the PixelCNN
# row is that decoder alone).
IMAGE_DATASETS: dict[str, Settings] = {
    name: {
        "dataset": name, "learning_rate": 1e-3, "lr_scheduler_type": "constant",
        "per_device_train_batch_size": 32, "max_grad_norm": 5.0,
    }
    for name in ("mnist", "omniglot", "digits")
}  # fmt: skip
# Free bits λ (nats per latent dimension) and δ-VAE committed rate δ (nats per example),
# by dataset: the synthetic model has 2 latent dimensions, PTB's 32.
FREE_BITS = {"synthetic": 0.75, "ptb": 0.25, "files": 0.25}
COMMITTED_RATE = {"synthetic": 1.0, "ptb": 5.0, "files": 5.0, "mnist": 2.0, "omniglot": 2.0,
                  "digits": 2.0}  # fmt: skip
# The text δ-VAE's δ holds for a sentence of this many decoder steps (PTB's mean is 22.1,
# `</s>` counted); by default it would hold at the longest, so a typical PTB sentence of a
# δ = 5 model committed to under 1 nat.
COMMITTED_LENGTH = {"ptb": 22}
# Datasets that always have a test split (the synthetic corpus has none; sentence files
# may not): their table reports it, and only it needs the costly IW-NLL.
WITH_TEST_SPLIT = ("ptb", "mnist", "omniglot")
# What the CPU budget (PTB's table in 3 hours on 2 cores, one epoch a row) asks of
# the two costly objectives, by dataset and objective. He et al. check the validation MI once
# an epoch, so in a one-epoch row the inner loop (tens of encoder steps an update at a window
# of 15) would never stop; here it is checked every 50 updates, with the window of 10 of their
# image code. SA-VAE differentiates through its SVI steps (Hessian-vector products through the
# decoder): an update with K steps costs about K + 1 plain ones, so Kim et al.'s K = 20 would
# not fit the budget; K = 5.
BUDGETS = ("cpu", "paper")  # `paper` leaves out BUDGET_SETTINGS
_ONE_EPOCH_BUDGET: dict[str, Settings] = {
    "aggressive": {"aggressive_check_steps": 50, "aggressive_window": 10},
    "sa_vae": {"sa_vae_steps": 5},
}
# The image tables (2 hours on 2 cores) also give a row about one epoch of MNIST; their
# aggressive row has the image code's window of 10 in every budget (IMAGE_AGGRESSIVE).
BUDGET_SETTINGS: dict[str, dict[str, Settings]] = {
    "ptb": _ONE_EPOCH_BUDGET,
    **{
        name: {**_ONE_EPOCH_BUDGET, "aggressive": {"aggressive_check_steps": 50}}
        for name in ("mnist", "omniglot")
    },
}


@dataclass(frozen=True)
class PerDataset:
    """A row setting whose value its table's dataset decides: `values[dataset]`, else
    `default` (free bits' λ and the δ-VAE's δ differ with the latent's size)."""

    values: Mapping[str, Any] = field(hash=False)
    default: Any = None

    def value(self, dataset: str) -> Any:
        if dataset in self.values:
            return self.values[dataset]
        if self.default is None:
            raise ValueError(f"no value for dataset {dataset!r}: give one of {list(self.values)}.")
        return self.default


DATASET_FREE_BITS = PerDataset(FREE_BITS, default=0.25)
DATASET_COMMITTED_RATE = PerDataset(COMMITTED_RATE)


@dataclass(frozen=True)
class Row:
    """One row: its label and the settings it adds to its dataset's recipe.

    `settings` maps fields of `ModelArguments`, `DataArguments` or `VAETrainingArguments` to
    typed values (`{"objective": "beta", "beta": 0.2}`); a `PerDataset` value is filled in
    per dataset. `exact` marks the model without a latent (the baseline of the others);
    `decoder_from` names the row whose trained folder `init_decoder_from` takes.
    """

    name: str
    label: str
    settings: Settings = field(default_factory=dict, hash=False)
    exact: bool = False
    decoder_from: str | None = None
    about: str = ""

    def __post_init__(self) -> None:
        # Read-only: the row tables are module constants that every table shares.
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))


def _beta_rows() -> tuple[Row, ...]:
    return tuple(
        Row(f"beta_{beta}", f"β-VAE β={beta}", {"objective": "beta", "beta": beta})
        for beta in (0.2, 0.4, 0.6, 0.8)
    )


ANNEAL: Settings = {"beta_schedule": "linear"}
# Kim et al. (and He et al.'s SA-VAE) take their η = 1 SVI steps on the ELBO averaged over a
# batch, so each example's λ moves by 1/B of its own gradient; vaehub's steps are per example
# (Kim et al. 2018, Algorithm 1, run per example). At η = 1 per example and β = 1 from the
# first update, PTB's KL diverges; the rows without annealing take the published step as it
# acts on one example of a batch of 32. Annealed rows start at β = 0.1 and keep η = 1.
SVI_PER_EXAMPLE_LR: Settings = {"sa_vae_lr": 0.03125}
_SA_VAE_ABOUT = (
    "SVI steps of η = 1/32 per example: Kim et al.'s η = 1 on the mean ELBO of a batch of "
    "32; η = 1 per example diverged without annealing."
)
TEXT_ROWS: tuple[Row, ...] = (
    Row("lstm_lm", "LSTM-LM (exact)", {"model_type": "text_lm"}, exact=True),
    Row("vae", "VAE"),
    Row("vae_anneal", "VAE + anneal", {"objective": "anneal"}),
    *_beta_rows(),
    Row("free_bits", "free bits", {"objective": "free_bits", "free_bits": DATASET_FREE_BITS}),
    Row("sa_vae", "SA-VAE", {"objective": "sa_vae", **SVI_PER_EXAMPLE_LR}, about=_SA_VAE_ABOUT),
    Row("sa_vae_anneal", "SA-VAE + anneal", {"objective": "sa_vae", **ANNEAL}),
    Row("aggressive", "aggressive", {"objective": "aggressive"}),
    Row("aggressive_anneal", "aggressive + anneal", {"objective": "aggressive", **ANNEAL}),
    Row("delta_vae", "δ-VAE (AR(1))", {"prior": "ar1", "committed_rate": DATASET_COMMITTED_RATE}),
    Row("iaf", "VAE, IAF posterior", {"posterior": "iaf"}),
    Row(
        "lm_free_bits_aggressive",
        "LM decoder + free bits + aggressive (ours)",
        {"objective": "aggressive", "free_bits": DATASET_FREE_BITS},
        decoder_from="lstm_lm",
        about=(
            "The decoder starts from the trained LSTM-LM row (Li et al. 2019), so the "
            "likelihood starts where the exact baseline ends; free bits make the first λ "
            "nats of every latent dimension free, so nothing pays the encoder to switch a "
            "dimension off; aggressive inner steps (He et al.) let the encoder catch up with "
            "that decoder before it learns to ignore z."
        ),
    ),
)
# He et al. 2019's image code (github.com/jxhe/vae-lagging-encoder): inner-loop window 10, and
# aggressive training off only once the validation MI has failed 5 times in all to beat its best
# (text: at the first).
IMAGE_AGGRESSIVE: Settings = {"aggressive_window": 10, "aggressive_patience": 5}
DELTA_VAE: Settings = {"model_type": "delta_vae"}
IMAGE_ROWS: tuple[Row, ...] = (
    Row("pixelcnn", "PixelCNN (exact)", {"model_type": "pixelcnn"}, exact=True),
    Row("vae", "VAE", DELTA_VAE),
    Row("vae_anneal", "VAE + anneal", {**DELTA_VAE, "objective": "anneal"}),
    Row("beta_0.8", "β-VAE β=0.8", {**DELTA_VAE, "objective": "beta", "beta": 0.8}),
    Row("sa_vae", "SA-VAE", {**DELTA_VAE, "objective": "sa_vae", **SVI_PER_EXAMPLE_LR},
        about=_SA_VAE_ABOUT),
    Row("aggressive", "aggressive", {**DELTA_VAE, "objective": "aggressive", **IMAGE_AGGRESSIVE}),
    Row("delta_ar1", "δ-VAE (AR(1))",
        {**DELTA_VAE, "prior": "ar1", "committed_rate": DATASET_COMMITTED_RATE}),
    Row("delta_constrained", "δ-VAE (constrained)",
        {**DELTA_VAE, "prior": "constrained", "committed_rate": DATASET_COMMITTED_RATE}),
)  # fmt: skip

# He et al. 2019, Table 1, Yahoo: the published numbers the text table sits beside.
HE_2019_YAHOO = {
    "lstm_lm": {"nll": 328.0},
    "vae": {"nll": 329.0, "kl": 0.0, "mi": 0.0, "active_units": 0},
    "vae_anneal": {"nll": 328.6, "kl": 0.0, "mi": 0.0, "active_units": 0},
    "beta_0.4": {"nll": 328.7, "kl": 6.3, "mi": 2.8, "active_units": 8.0},
    "sa_vae_anneal": {"nll": 327.2, "kl": 5.2, "mi": 2.7, "active_units": 9.8},
    "aggressive": {"nll": 328.2, "kl": 5.6, "mi": 3.0, "active_units": 8.0},
    "aggressive_anneal": {"nll": 326.7, "kl": 5.7, "mi": 2.9, "active_units": 15.0},
}
# He et al. 2019, Table 2, Omniglot: ResNet encoder, PixelCNN decoder, latent 32.
HE_2019_OMNIGLOT = {
    "pixelcnn": {"nll": 89.73},
    "vae": {"nll": 89.41, "kl": 1.51, "mi": 1.43, "active_units": 3},
    "aggressive": {"nll": 89.05, "kl": 2.51, "mi": 2.19, "active_units": 5.6},
}
PUBLISHED = {"text": ("Yahoo", HE_2019_YAHOO), "image": ("Omniglot", HE_2019_OMNIGLOT)}
METRICS = ("nll", "kl", "mi", "active_units", "delta_nll")
TABLE_FILE, MARKDOWN_FILE, FIGURE_FILE = "table.json", "table.md", "collapse.png"
# Each row folder records how it was trained: the `vaehub train` command that reruns it by
# hand, and its settings, which resuming compares (folders from before settings.json have
# only the command).
COMMAND_FILE, SETTINGS_FILE = "command.txt", "settings.json"


@dataclass
class TableSettings:
    """What every row of one table shares: its stated budget (updates, batch, seed).

    `extra_flags` are `vaehub train` flags (`["--bf16", "True"]`) given to every row, parsed
    on top of its settings, so that they win.
    """

    dataset: str
    output_dir: str = "vaehub-reproduce"
    rows: Sequence[str] | None = None
    seeds: Sequence[int] = (0,)
    max_steps: int = 2000
    iw_samples: int = 100
    anneal_fraction: float = 0.3
    checkpoints: int = 4
    budget: str = "cpu"
    extra_flags: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.table_rows  # noqa: B018 - a bad dataset or row name fails here, before training
        if self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps} is not valid: give at least 1 update.")
        if not self.seeds:
            raise ValueError("seeds is empty: give at least one seed.")
        if self.budget not in BUDGETS:
            raise ValueError(
                f"budget={self.budget!r} is not valid: 'cpu' (aggressive and SA-VAE made to fit "
                "a few CPU hours, BUDGET_SETTINGS) or 'paper' (He et al.'s and Kim et al.'s "
                "settings, for a GPU)."
            )

    @property
    def kind(self) -> str:
        if self.dataset in TEXT_DATASETS:
            return "text"
        if self.dataset in IMAGE_DATASETS:
            return "image"
        raise ValueError(
            f"dataset {self.dataset!r} is not known: choose one of "
            f"{', '.join([*TEXT_DATASETS, *IMAGE_DATASETS])}."
        )

    @property
    def table_rows(self) -> tuple[Row, ...]:
        every = TEXT_ROWS if self.kind == "text" else IMAGE_ROWS
        if self.rows is None:
            return every
        names = {row.name: row for row in every}
        unknown = [name for name in self.rows if name not in names]
        if unknown:
            raise ValueError(
                f"unknown {self.kind} row {', '.join(unknown)}: choose from {', '.join(names)}."
            )
        chosen = [names[name] for name in self.rows]
        # Every latent row is measured against the exact row, and some start from it.
        if every[0] not in chosen:
            chosen.insert(0, every[0])
        return tuple(row for row in every if row in chosen)

    @property
    def folder(self) -> str:
        return os.path.join(self.output_dir, self.dataset)


def row_folder(settings: TableSettings, row: Row, seed: int) -> str:
    return os.path.join(settings.folder, row.name, f"seed-{seed}")


def row_settings(settings: TableSettings, row: Row, seed: int) -> dict[str, Any]:
    """The whole `vaehub train` recipe of one row and seed, before `extra_flags`: field name
    → typed value, in the order the command line writes them (dataset's recipe, row's own,
    budget, then what every row of the table shares)."""
    dataset = settings.dataset
    own = {
        name: value.value(dataset) if isinstance(value, PerDataset) else value
        for name, value in row.settings.items()
    }
    values = {**(TEXT_DATASETS.get(dataset) or IMAGE_DATASETS[dataset]), **own}
    if settings.budget == "cpu":
        values.update(BUDGET_SETTINGS.get(dataset, {}).get(own.get("objective"), {}))
    if dataset in WITH_TEST_SPLIT:
        # The table reports test: the validation split keeps the ELBO terms, MI and AU.
        values["final_iw_nll_splits"] = ["test"]
    if settings.kind == "text" and own.get("prior") == "ar1" and dataset in COMMITTED_LENGTH:
        values["latent_length"] = COMMITTED_LENGTH[dataset]
    values.update(
        max_steps=settings.max_steps,
        seed=seed,
        eval_iw_nll=True,
        iw_nll_after_training_only=True,
        iw_samples=settings.iw_samples,
        save_strategy="steps",
        save_steps=max(1, math.ceil(settings.max_steps / max(1, settings.checkpoints))),
        save_total_limit=1,
        logging_steps=max(1, settings.max_steps // 20),
        report_to="none",
        output_dir=row_folder(settings, row, seed),
    )
    if "beta_schedule" in values or own.get("objective") == "anneal":
        # He et al. anneal over the first tenth of their budget; a short budget needs longer.
        values["anneal_steps"] = max(1, round(settings.anneal_fraction * settings.max_steps))
    exact = settings.table_rows[0]
    if not row.exact:
        values["baseline"] = row_folder(settings, exact, seed)
    if row.decoder_from:
        values["init_decoder_from"] = row_folder(settings, exact, seed)
    return values


def row_arguments(
    settings: TableSettings, row: Row, seed: int
) -> tuple[ModelArguments, DataArguments, VAETrainingArguments]:
    """The three argument objects `run_training` trains one row and seed with: its
    `row_settings`, and `settings.extra_flags` parsed on top (HfArgumentParser)."""
    return build_arguments(row_settings(settings, row, seed), settings.extra_flags)


def row_chosen_settings(settings: TableSettings, row: Row, seed: int) -> dict[str, Any]:
    """What one row and seed is trained with, as `settings.json` records it: its settings
    with `extra_flags` applied, as JSON values (`vaehub.recipes.train.chosen_settings`)."""
    return chosen_settings(row_settings(settings, row, seed), settings.extra_flags)


def row_command_line(settings: TableSettings, row: Row, seed: int) -> list[str]:
    """The `vaehub train` flags equivalent to `row_arguments`: the row's settings written
    as flags, then `extra_flags` as given (later flags win, as they win over the settings)."""
    return [*settings_flags(row_settings(settings, row, seed)), *settings.extra_flags]


def render_command(settings: TableSettings, row: Row, seed: int) -> str:
    """`command.txt`'s line: `vaehub train ...`, shell-quoted, to rerun a row by hand."""
    return "vaehub train " + shlex.join(row_command_line(settings, row, seed))


def row_command(settings: TableSettings, row: Row, seed: int) -> str:
    """The command that trained a row, as its folder recorded it (a table put together
    over several invocations keeps each row's own flags)."""
    path = os.path.join(row_folder(settings, row, seed), COMMAND_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    return render_command(settings, row, seed)


def row_done(folder: str) -> bool:
    if not os.path.isfile(os.path.join(folder, "model.safetensors")):
        return False
    return "validation" in hub.read_results(folder)


def record_row(settings: TableSettings, row: Row, seed: int) -> str:
    """Write the row folder's `command.txt` and `settings.json`; returns the command."""
    folder = _mkdir(row_folder(settings, row, seed))
    command = render_command(settings, row, seed)
    write_text(os.path.join(folder, COMMAND_FILE), command + "\n")
    record = {
        "row": row.name,
        "seed": seed,
        "settings": row_chosen_settings(settings, row, seed),
        "extra_flags": list(settings.extra_flags),
    }
    write_json(os.path.join(folder, SETTINGS_FILE), record, "the row's settings")
    return command


def run_row(settings: TableSettings, row: Row, seed: int) -> str:
    """Train one row (resuming from its last checkpoint if one is there); returns its folder."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = row_folder(settings, row, seed)
    last = get_last_checkpoint(folder) if os.path.isdir(folder) else None
    if last is not None:
        check_resumable(settings, row, seed, last)
    values = row_settings(settings, row, seed)
    if last is not None:
        print(f"{row.name} seed {seed}: resuming from {last}")
        values["resume_from_checkpoint"] = last
    # Built (and checked) before anything is written: a bad flag leaves the folder as it was.
    arguments = build_arguments(values, settings.extra_flags)
    command = record_row(settings, row, seed)
    start = time.time()
    status = train_in_folder(*arguments, command)
    if status != 0:
        raise RuntimeError(f"{row.name} seed {seed}: vaehub train returned {status}")
    write_json(
        os.path.join(folder, "wall_seconds.json"),
        {"wall_seconds": time.time() - start, "resumed_from": last},
        indent=None,
    )
    # The finished model and its results stay; the optimiser states do not.
    for name in os.listdir(folder):
        if name.startswith("checkpoint-"):
            shutil.rmtree(os.path.join(folder, name))
    return folder


def check_resumable(settings: TableSettings, row: Row, seed: int, checkpoint: str) -> None:
    """Refuse to resume a row from `checkpoint` under other settings than those its folder
    recorded: its weights would mix two recipes.

    `settings.json` is compared field by field. A folder from before it has only
    `command.txt`: that command is compared with today's as a string, and where the strings
    differ, as the settings each parses to (a number written 3e-3 or 0.003 is one setting).
    A folder that recorded neither resumes.

    Raises:
        ValueError: naming the fields that changed (`iw_samples: 2 → 3`), and what to do.
    """
    folder = row_folder(settings, row, seed)
    now = row_chosen_settings(settings, row, seed)
    settings_path = os.path.join(folder, SETTINGS_FILE)
    command_path = os.path.join(folder, COMMAND_FILE)
    if os.path.isfile(settings_path):
        changed = changed_settings(_recorded_settings(settings_path), now)
        where = f"the earlier settings are in {settings_path}"
    elif os.path.isfile(command_path):
        with open(command_path, encoding="utf-8") as handle:
            before = handle.read().strip()
        command = render_command(settings, row, seed)
        if before == command:
            return
        recorded = chosen_by_command(before)
        changed = (
            changed_settings(recorded, now) if recorded is not None
            else _changed_words(before, command)
        )  # fmt: skip
        where = f"the earlier command is in {command_path}"
    else:
        return
    if changed:
        raise ValueError(
            f"{folder} holds {os.path.basename(checkpoint)} of a run started with other flags "
            f"({'; '.join(changed)}; {where}). Rerun with the flags that started it to "
            "resume, or delete the folder to train the row again."
        )


def _recorded_settings(path: str) -> dict[str, Any]:
    """The `settings` a row folder's `settings.json` recorded; a file that is not such a
    record (truncated, edited by hand) is named, with what to do."""
    try:
        with open(path, encoding="utf-8") as handle:
            recorded = json.load(handle)["settings"]
        if not isinstance(recorded, dict):
            raise TypeError(f"its settings are a {type(recorded).__name__}, not an object")
    except (OSError, ValueError, KeyError, TypeError) as error:
        problem = "no 'settings' key" if isinstance(error, KeyError) else str(error)
        raise ValueError(
            f"{path} is not a row's settings record ({problem}): restore it from the "
            "command.txt beside it, or delete the row's folder to train the row again."
        ) from error
    return recorded


def _changed_words(before: str, command: str) -> list[str]:
    # A recorded command today's parser refuses (a flag since renamed): compared word by word.
    old, new = before.split(), command.split()
    changed = [f"{a} → {b}" for a, b in zip(old, new, strict=False) if a != b][:3]
    if len(old) != len(new):
        changed.append(f"{len(old)} → {len(new)} words")
    return changed or ["the command's quoting"]


def _mkdir(folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    return folder


def read_row(settings: TableSettings, row: Row, seed: int) -> dict[str, Any]:
    """One finished row and seed: the test split's metrics (validation where the data has
    no test split), its training time and the split reported."""
    folder = row_folder(settings, row, seed)
    results = hub.read_results(folder)
    split = "test" if "test" in results else "validation"
    metrics = dict(results[split]["metrics"])
    with open(os.path.join(folder, hub.TRAINING_FILE), encoding="utf-8") as handle:
        training = json.load(handle)
    return {
        "split": split,
        "iw_samples": results[split].get("iw_samples"),
        "num_examples": metrics.get("num_examples"),
        **{key: metrics.get(key) for key in (*METRICS, "ppl", "bits_per_dim", "neg_elbo")},
        "updates": training.get("global_step"),
        "train_seconds": training.get("train_runtime_seconds"),
    }


def summarise(values: list[float | None]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "sd": None}
    return {
        "mean": statistics.fmean(present),
        "sd": statistics.stdev(present) if len(present) > 1 else None,
    }


def collect(settings: TableSettings) -> dict[str, Any]:
    """`table.json`'s content: every finished row, per seed and as mean and sd over seeds."""
    rows = {}
    for row in settings.table_rows:
        seeds = {
            str(seed): read_row(settings, row, seed)
            for seed in settings.seeds
            if row_done(row_folder(settings, row, seed))
        }
        if not seeds:
            continue
        keys = (*METRICS, "ppl", "bits_per_dim", "train_seconds")
        rows[row.name] = {
            "label": row.label,
            "exact": row.exact,
            "about": row.about,
            "command": row_command(settings, row, int(next(iter(seeds)))),
            "seeds": seeds,
            **{key: summarise([s[key] for s in seeds.values()]) for key in keys},
        }
    return {
        "dataset": settings.dataset,
        "max_steps": settings.max_steps,
        "budget": settings.budget,
        "seeds": list(settings.seeds),
        "iw_samples": settings.iw_samples,
        "rows": rows,
        "published_on": PUBLISHED[settings.kind][0],
        "published": PUBLISHED[settings.kind][1],
    }


def render_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown, numbers from `table.json` (mean ± sd over seeds)."""

    def cell(summary: dict, digits: int = 2) -> str:
        if summary["mean"] is None:
            return "–"
        text = f"{summary['mean']:.{digits}f}"
        return text + (f" ± {summary['sd']:.{digits}f}" if summary["sd"] is not None else "")

    def count(summary: dict) -> str:
        # Active units are whole numbers; a mean over seeds may not be.
        whole = all(
            summary[k] is None or float(summary[k]).is_integer() for k in ("mean", "sd")
        )
        return cell(summary, 0 if whole else 1)

    rows = table["rows"]
    if not rows:
        return "(no row finished yet)\n"
    first = next(iter(rows.values()))
    example = next(iter(first["seeds"].values()))
    unit = "PPL" if first["ppl"]["mean"] is not None else "bits/dim"
    unit_key = "ppl" if unit == "PPL" else "bits_per_dim"
    unit_digits = 1 if unit == "PPL" else 3  # image rows differ in the third decimal of bits/dim
    published = table["published"]
    lines = [
        f"**{table['dataset']}**: {table['max_steps']} updates per row, seeds "
        f"{', '.join(map(str, table['seeds']))}; {example['split']} split "
        f"({example['num_examples']:.0f} examples), NLL importance-weighted with K = "
        f"{table['iw_samples']} (exact for the baseline).",
        "",
        f"| row | NLL | {unit} | ΔNLL | KL | MI | AU | train s |"
        + (f" He et al. ({table['published_on']}) NLL / KL / MI / AU |" if published else ""),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        + (" --- |" if published else ""),
    ]
    for name, row in rows.items():
        latent = not row["exact"]
        line = (
            f"| {row['label']} | {cell(row['nll'])} | {cell(row[unit_key], unit_digits)} | "
            + " | ".join(
                (count(row[key]) if key == "active_units" else cell(row[key])) if latent else "–"
                for key in ("delta_nll", "kl", "mi", "active_units")
            )
            + f" | {row['train_seconds']['mean']:.0f} |"
        )
        if published:
            paper = published.get(name)
            line += (
                " " + " / ".join(f"{paper[k]:g}" if k in paper else "–"
                                 for k in ("nll", "kl", "mi", "active_units")) + " |"
                if paper else " |"
            )  # fmt: skip
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_table(settings: TableSettings) -> dict[str, Any]:
    """Rewrite `table.json`, `table.md` and `collapse.png` from the finished rows."""
    from vaehub.evaluation.plots import plot_collapse_table

    table = collect(settings)
    _mkdir(settings.folder)
    write_json(os.path.join(settings.folder, TABLE_FILE), table, "the table", indent=1)
    write_text(os.path.join(settings.folder, MARKDOWN_FILE), render_markdown(table))
    if any(not row["exact"] for row in table["rows"].values()):
        plot_collapse_table(table, os.path.join(settings.folder, FIGURE_FILE))
    return table


def reproduce_table(settings: TableSettings) -> dict[str, Any]:
    """Train every row and seed not finished yet, rewriting the table after each."""
    for row in settings.table_rows:
        for seed in settings.seeds:
            folder = row_folder(settings, row, seed)
            if row_done(folder):
                print(f"{row.name} seed {seed}: done before, kept ({folder})")
                continue
            print(f"=== {row.label}, seed {seed}: {settings.max_steps} updates ===")
            run_row(settings, row, seed)
            write_table(settings)
    table = write_table(settings)
    print(render_markdown(table))
    return table
