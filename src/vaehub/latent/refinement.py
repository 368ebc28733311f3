"""A posterior's SVI refinement (Kim et al. 2018, Algorithm 1) as one value, `Refinement`,
apart from the SVI code that runs it (`svi`, which imports torch and the posteriors).

The same four settings go by three sets of names outside: the command line's and the
results files' `refine_steps`, `refine_lr`, `refine_momentum`, `refine_max_grad_norm`;
training's `sa_vae_steps`, `sa_vae_lr`, ...; the SVI code's `steps`, `learning_rate`, ....
Inside vaehub they travel as a `Refinement`, converted at those edges only
(`Refinement.from_record`, `Refinement.record`). A card, a verification slice and a command
name the step size, momentum and clipping only where they differ from Kim et al.'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Refinement:
    """`steps` SVI steps on λ = (μ, σ) from the encoder's, of step size `learning_rate` per
    example, with `momentum` and each example's gradient clipped at norm `max_grad_norm`.
    `steps=0` is the encoder's own posterior. Checked on construction: a setting that cannot
    run or cannot converge raises `ValueError` naming it.
    """

    steps: int = 0
    learning_rate: float = DEFAULT_LEARNING_RATE
    momentum: float = DEFAULT_MOMENTUM
    max_grad_norm: float = DEFAULT_MAX_GRAD_NORM

    def __post_init__(self) -> None:
        steps = self.steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"refine steps={steps!r} is not valid: expected an integer >= 0.")
        for name in ("learning_rate", "max_grad_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"SVI {name}={value!r} is not valid: expected a number > 0.")
        momentum = self.momentum
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, (int, float))
            or not (0 <= momentum < 1)
        ):
            raise ValueError(
                f"SVI momentum={momentum!r} is not valid: expected a number in [0, 1)."
            )

    @classmethod
    def from_record(cls, settings: Mapping[str, Any]) -> Refinement:
        """The refinement a results record, a card's dataset arguments or a config's
        `inference_refinement` names (`refine_steps`, `refine_lr`, ...), Kim et al.'s value
        for any setting it leaves out."""
        values = refinement(settings)
        return cls(
            int(settings.get("refine_steps") or 0),
            values["refine_lr"],
            values["refine_momentum"],
            values["refine_max_grad_norm"],
        )

    def record(self) -> dict[str, Any]:
        """The refinement under the names results files, configs and `vaehub evaluate` use."""
        return {
            "refine_steps": self.steps,
            "refine_lr": float(self.learning_rate),
            "refine_momentum": float(self.momentum),
            "refine_max_grad_norm": float(self.max_grad_norm),
        }

    def describe(self) -> str:
        """One phrase for what a command prints beside its numbers."""
        return (
            f"posterior refined by {self.steps} SVI steps of η = {self.learning_rate:g}, "
            f"momentum {self.momentum:g}, gradients clipped at norm {self.max_grad_norm:g}"
        )


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
