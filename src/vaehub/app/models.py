"""The models an explorer serves: named, loaded on first use and kept, one job at a time.

The page only ever sends a model's *name*; `ModelStore` maps it back to the folder or Hub
id the app was started with. A name it was not started with is refused unless the app
was started with `allow_any=True` (`--allow-any-model`), and even then only an existing
folder or a well-formed Hub id is accepted: nothing typed reaches a shell, and models are
loaded by vaehub's own classes (`vaehub.models.auto.load_model`), never with `trust_remote_code`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

# A Hub id as the Hub spells one: `name` or `org/name`, letters, digits, `-`, `_`, `.`;
# no `..` (a folder name in the Hub cache is made from it).
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")

# Where the shipped checkpoints lie in a clone: <repo>/model_cards (this file is
# <repo>/src/vaehub/app/models.py).
REPOSITORY_CARDS = Path(__file__).resolve().parents[3] / "model_cards"


class UserError(ValueError):
    """Something the person at the page can fix; its message is shown to them as is."""


class Cancelled(RuntimeError):
    """Long work stopped at the user's request."""


def default_sources() -> list[str]:
    """The shipped checkpoints: each folder of `model_cards/` holding a `config.json`,
    from the clone this package runs from, else from the current folder."""
    for root in (REPOSITORY_CARDS, Path.cwd() / "model_cards"):
        if root.is_dir():
            return sorted(
                str(folder) for folder in root.iterdir() if (folder / "config.json").is_file()
            )
    return []


def display_name(source: str) -> str:
    """What the page calls a model: a folder's name, or the Hub id itself."""
    if os.path.isdir(source):
        return os.path.basename(os.path.normpath(source))
    return source


def model_kind(model: nn.Module) -> str:
    """`text_vae`, `text_lm`, `image_vae`, `image_lm` (a PixelCNN) or `other`."""
    text = getattr(model, "main_input_name", None) == "input_ids"
    image = getattr(model, "main_input_name", None) == "pixel_values"
    has_latent = hasattr(model, "prior") and getattr(model, "has_latent", True)
    if text:
        return "text_vae" if has_latent else "text_lm"
    if image:
        return "image_vae" if has_latent else "image_lm"
    return "other"


@dataclass
class Entry:
    """A model the app serves: where it comes from and, once loaded, the model."""

    name: str
    source: str
    model: nn.Module | None = None
    lock: threading.Lock | None = None


class ModelStore:
    """The models of one app: names → sources, each loaded once, used by one job at a time.

    Args:
        sources: folders or Hub ids (default: the shipped checkpoints).
        allow_any: let the page ask for a folder or Hub id it was not started with.
        loader: how a source becomes a model (default `vaehub.models.auto.load_model`).
    """

    def __init__(
        self,
        sources: Sequence[str] | None = None,
        allow_any: bool = False,
        loader: Callable[[str], nn.Module] | None = None,
    ) -> None:
        self.allow_any = allow_any
        self._loader = loader
        self._entries: dict[str, Entry] = {}
        self._guard = threading.Lock()
        for source in default_sources() if sources is None else sources:
            name = display_name(source)
            if name in self._entries:  # two folders of one name: keep both, told apart
                name = source
            self._entries[name] = Entry(name, source)
        self._started = frozenset(self._entries)

    @property
    def names(self) -> list[str]:
        """The models the page may choose among, in the order given."""
        return [name for name in self._entries if name in self._started]

    def source(self, name: str) -> str:
        """The folder or Hub id behind a name the page sent."""
        return self._entry(name).source

    def _entry(self, name: Any) -> Entry:
        if not isinstance(name, str) or not name.strip():
            raise UserError("Choose a model first.")
        name = name.strip()
        with self._guard:
            entry = self._entries.get(name)
            if entry is not None:
                return entry
            if not self.allow_any:
                raise UserError(
                    f"{name!r} is not one of the models this explorer was started with "
                    f"({', '.join(self._entries) or 'none'}); start it with "
                    "--allow-any-model to open others."
                )
            if not (os.path.isdir(name) or HUB_ID.match(name)):
                raise UserError(
                    f"{name!r} is neither a folder on this machine nor a Hub id (org/name)."
                )
            entry = self._entries[name] = Entry(name, name)
            return entry

    def load(self, name: str) -> nn.Module:
        """The model called `name`, loaded on first use (in eval mode) and kept.

        Raises:
            UserError: the name is not served, or loading failed (the folder is not a vaehub
                model, the Hub id does not exist, the server did not answer): the message
                says which.
        """
        entry = self._entry(name)
        with self._guard:
            if entry.lock is None:
                entry.lock = threading.Lock()
        with entry.lock:
            if entry.model is None:
                entry.model = self._load_source(entry)
        return entry.model

    def _load_source(self, entry: Entry) -> nn.Module:
        from vaehub import hub
        from vaehub.models.checkpoints import CheckpointError

        loader = self._loader
        if loader is None:
            from vaehub.models.auto import load_model as loader
        try:
            model = loader(entry.source)
        except (CheckpointError, hub.HubError, OSError, ValueError) as error:
            # vaehub's load errors name the folder or repository and what is wrong with it.
            if entry.name not in self._started:
                with self._guard:  # a name typed in the page that failed is not kept
                    self._entries.pop(entry.name, None)
            raise UserError(f"Could not open {entry.name}: {error}") from error
        return model.eval()

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[nn.Module]:
        """The model called `name`, held for one job: work on a model runs one at a time,
        so the progress and cancellation hooks of a job see only its own calls."""
        model = self.load(name)
        entry = self._entry(name)
        assert entry.lock is not None
        # Nothing here trains: no autograd graph is kept (SVI refinement enables its own).
        with entry.lock, torch.no_grad():
            yield model


class Job:
    """Progress and cancellation of long work on a model, through forward pre-hooks.

    Every module call of the model checks the job's stop flag, so a stop request ends
    the work at its next layer call (freeing the CPU), and each call of `counted` (the
    module whose calls measure the work, e.g. a PixelCNN's decoder: one call per pixel)
    reports progress.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()

    def request_stop(self) -> None:
        self.stop.set()

    @contextlib.contextmanager
    def watching(
        self,
        model: nn.Module,
        counted: nn.Module | None = None,
        total: int | None = None,
        report: Callable[[int, int], None] | None = None,
    ) -> Iterator[None]:
        """Hooks in place on `model` while the block runs; removed after, whatever happens."""
        self.stop.clear()
        done = [0]

        def check(module: nn.Module, inputs: Any) -> None:
            if self.stop.is_set():
                raise Cancelled("Stopped.")

        def tick(module: nn.Module, inputs: Any) -> None:
            done[0] += 1
            if report is not None and total:
                report(min(done[0], total), total)

        handles = [module.register_forward_pre_hook(check) for module in model.modules()]
        if counted is not None:
            handles.append(counted.register_forward_pre_hook(tick))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
