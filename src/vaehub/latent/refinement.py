"""Kim et al.'s SVI settings (text), apart from the SVI code that uses them.

`svi` refines posteriors with them by default. The CLI, a release's verification slice and
a model card name a refinement's step size, momentum and clipping only where they differ
from these; they read them here rather than from `svi`, which imports torch and the
posteriors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_STEPS = 20
DEFAULT_LEARNING_RATE = 1.0
DEFAULT_MOMENTUM = 0.5
DEFAULT_MAX_GRAD_NORM = 5.0

# A refinement's settings under the names `evaluate_vae` takes, evaluation results record and
# `vaehub evaluate` reads (as --NAME), each with Kim et al.'s value.
REFINEMENT_DEFAULTS = {
    "refine_lr": DEFAULT_LEARNING_RATE,
    "refine_momentum": DEFAULT_MOMENTUM,
    "refine_max_grad_norm": DEFAULT_MAX_GRAD_NORM,
}


def refinement(settings: Mapping[str, Any]) -> dict[str, float]:
    """The three refinement settings of `settings` (a result's metrics, a card's dataset
    arguments), Kim et al.'s value for any it does not name."""
    return {
        key: float(default if settings.get(key) is None else settings[key])
        for key, default in REFINEMENT_DEFAULTS.items()
    }


def changed_refinement(settings: Mapping[str, Any]) -> dict[str, float]:
    """Those refinement settings of `settings` that differ from Kim et al.'s: what a card,
    a verification slice or a command must name to refine the same way."""
    return {
        key: value
        for key, value in refinement(settings).items()
        if value != REFINEMENT_DEFAULTS[key]
    }
