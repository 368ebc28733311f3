"""vaehub's model types in transformers' Auto classes, registered when those are in use.

`import vaehub` stays light (the `vaehub` command starts without torch), yet
`AutoModel.from_pretrained(folder)` must load a vaehub model after it. So the registration
(`vaehub.models.auto.register_auto_classes`) runs at once when transformers' Auto modules
are already imported, and otherwise as soon as they are:

- `AutoModel`'s module imports `AutoConfig`'s on its way, so the registration waits for the
  outer one; `AutoConfig`'s on its own brings `AutoModel`'s in, so both know vaehub's types;
- the registration imports every vaehub model, so while a vaehub module is itself being
  imported (its base class is what pulled transformers' Auto modules in) it waits until
  that import has finished;
- likewise while `transformers.modeling_utils` is being imported: it pulls the Auto modules
  in half way through (`import vaehub; import transformers.modeling_utils`, or
  `TrainingArguments(...)` after `import vaehub`), and the vaehub models subclass its
  `PreTrainedModel`, which does not exist yet. The registration runs when it has finished.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from typing import Any

CONFIG_AUTO = "transformers.models.auto.configuration_auto"
MODEL_AUTO = "transformers.models.auto.modeling_auto"
MODELING_UTILS = "transformers.modeling_utils"


class _State:
    registered = False
    models_loaded = False  # transformers' AutoModel module has been executed


def _import_in_progress(finishing: str | None) -> bool:
    """Whether a vaehub module or transformers' modeling_utils (other than `finishing`) is
    half imported: registering now would import the models on top of it."""
    return any(
        (name.startswith("vaehub.") or name == MODELING_UTILS)
        and name != finishing
        and getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
    )


def _settle(finishing: str | None = None) -> None:
    """Register if transformers' Auto modules are loaded and no import it needs is half done."""
    if _State.registered or not _State.models_loaded:
        return
    if _import_in_progress(finishing):
        return
    _State.registered = True
    from vaehub.models.auto import register_auto_classes

    register_auto_classes()


class _ThenSettle(importlib.abc.Loader):
    """A module's own loader, then the registration if it is now due."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        # get_code (python -m), get_resource_reader (importlib.resources), ...: the module's
        # own loader answers them.
        return getattr(self.loader, name)

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        name = module.__name__
        if name == MODEL_AUTO:
            _State.models_loaded = True
        elif name == CONFIG_AUTO and MODEL_AUTO not in sys.modules:
            importlib.import_module(MODEL_AUTO)  # AutoConfig alone: AutoModel's too
            return
        _settle(finishing=name)


class _Watcher(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if _State.registered or not (
            fullname in (CONFIG_AUTO, MODEL_AUTO, MODELING_UTILS) or fullname.startswith("vaehub.")
        ):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenSettle(spec.loader)
                return spec
        return None


def install() -> None:
    """Register now if transformers' Auto modules are loaded, else once they are."""
    if MODEL_AUTO in sys.modules:
        _State.models_loaded = True
        _settle()
    if not _State.registered and not any(isinstance(f, _Watcher) for f in sys.meta_path):
        sys.meta_path.insert(0, _Watcher())
