"""The import paths of vaehub 0.1's flat layout, kept for one release.

`import vaehub.hub`-style paths of the modules that moved into layer folders still work: the
old name gives the new module (or, for a module that was split, a module that finds each
name in its new home) with a `DeprecationWarning` naming where to import from instead.
`docs/architecture.md` lists the layers; this table is the map from the old names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Any

# old module (under vaehub.) -> its new homes (under vaehub.), the main one first
MOVED: dict[str, tuple[str, ...]] = {
    "allocator": ("utils.allocator",),
    "safe_io": ("utils.safe_io",),
    "network": ("utils.network",),
    "priors": ("latent.priors",),
    "posteriors": ("latent.posteriors", "latent.posterior_head"),
    "flows": ("latent.flows",),
    "kl": ("latent.kl",),
    "svi": ("latent.svi",),
    "svi_settings": ("latent.refinement",),
    "checkpoints": ("models.checkpoints",),
    "modeling_utils": ("models.modeling_utils",),
    "configuration_vae": (
        "models.configuration_utils",
        "models.text.configuration_text_vae",
        "models.text.configuration_text_lm",
        "models.image.configuration_delta_vae",
        "models.image.configuration_pixelcnn",
        "models.linear.configuration_linear_vae",
    ),
    "text_decoder": ("models.text.lstm_decoder",),
    "fused_loss": ("models.text.fused_loss",),
    "tokenization": ("models.text.tokenization", "data.text"),
    "decoding": ("models.text.decoding",),
    "modeling_text_vae": ("models.text.modeling_text_vae",),
    "modeling_text_lm": ("models.text.modeling_text_lm",),
    "pixelcnn": ("models.image.gated_pixelcnn",),
    "modeling_delta_vae": ("models.image.modeling_delta_vae",),
    "modeling_pixelcnn": ("models.image.modeling_pixelcnn",),
    "modeling_linear_vae": ("models.linear.modeling_linear_vae",),
    "ppca": ("models.linear.ppca",),
    "objectives": ("training.objectives",),
    "aggressive": ("training.aggressive",),
    "trainer": ("training.trainer", "training.arguments"),
    "metrics": ("evaluation.metrics",),
    "generation_report": ("evaluation.generation_report",),
    "diagnostics": ("evaluation.gaps",),
    "diagnosis": ("evaluation.diagnose",),
    "plots": ("evaluation.plots",),
    "posterior_grid": ("evaluation.posterior_grid",),
    "data_sources": ("data.sources",),
    "recipe": ("recipes.train",),
    "reproduction": ("recipes.reproduce",),
    "verification": ("recipes.release", "hub.verification"),
    "demo": ("recipes.demo",),
    "cli": ("commands.main",),
}


class _SplitModule(types.ModuleType):
    """An old module whose names now live in several modules: each looked up where it is."""

    def __init__(self, name: str, homes: tuple[types.ModuleType, ...]) -> None:
        super().__init__(name)
        self._homes = homes

    def __getattr__(self, attribute: str) -> Any:
        for home in self._homes:
            if hasattr(home, attribute):
                return getattr(home, attribute)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r}")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix, _, old = fullname.partition(".")
        if prefix != "vaehub" or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        homes = tuple(importlib.import_module(f"vaehub.{new}") for new in MOVED[spec.name[7:]])
        warnings.warn(
            f"{spec.name} moved to vaehub.{MOVED[spec.name[7:]][0]} "
            f"(see docs/architecture.md); the old path goes in the next release.",
            DeprecationWarning,
            stacklevel=3,
        )
        return homes[0] if len(homes) == 1 else _SplitModule(spec.name, homes)

    def exec_module(self, module: types.ModuleType) -> None:
        return None

    def get_code(self, fullname: str) -> types.CodeType | None:
        """`python -m vaehub.cli` (0.1's way to run the command): the new module's code."""
        new = f"vaehub.{MOVED[fullname[7:]][0]}"
        warnings.warn(
            f"{fullname} moved to {new}; run `vaehub` or `python -m vaehub` instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.util.find_spec(new).loader.get_code(new)


def install() -> None:
    """Serve the old paths (idempotent)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
