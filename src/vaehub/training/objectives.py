"""How the trainer weights the ELBO's parts: β schedules and free bits (`docs/formulas.md`).

    loss = mean_x reconstruction(x) + β(step) · KL_term
    KL_term = mean_x KL(q(z|x) ‖ p(z))                  without free bits
            = Σ_k max(λ, mean_x KL_k)                    with free bits λ per latent dim

Free bits are applied to the batch-mean KL of each latent dimension, as Kingma et al.
2016 do: a dimension below λ nats gets no gradient pushing it further towards the prior.
A posterior whose KL is only estimated (a flow) has no per-dimension split: its free bits
hold the whole KL above d·λ.

The capacity objective (Burgess et al. 2018, their Eq. 8) holds the rate at a target
instead of weighting it:

    loss = mean_x reconstruction(x) + γ · |KL_term − C(step)|,   C(step) = C_max · min(1, step/T)

Below C the KL term is pushed up as hard as it is pushed down above it, so a decoder that
would ignore z is handed C nats of code whether or not the ELBO wants them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

SCHEDULES = ("constant", "linear", "sigmoid", "cyclical")


@dataclass(frozen=True)
class BetaSchedule:
    """β as a function of the optimizer step.

    Attributes:
        kind: `"constant"` (β = `beta`), `"linear"` (β₀ → 1 over `length` steps, then 1),
            `"sigmoid"` (Bowman: β₀ + (1 − β₀)·σ(10·(step/length − ½)), then 1 from
            `length` on), `"cyclical"` (Fu et al.: `cycles` cycles of `length / cycles` steps;
            β rises linearly from β₀ to 1 over the first `ramp_ratio` of each cycle, then 1).
        beta: the constant β of `"constant"`.
        beta_start: β₀ of the annealing schedules.
        length: steps over which `"linear"`/`"sigmoid"` anneal, or the total steps that
            `"cyclical"` splits into cycles.
    """

    kind: str = "constant"
    beta: float = 1.0
    beta_start: float = 0.1
    length: int = 1
    cycles: int = 4
    ramp_ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(
                f"schedule kind={self.kind!r} is not valid: expected one of "
                f"{', '.join(map(repr, SCHEDULES))}."
            )
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta={self.beta!r} is not valid: expected a number >= 0.")
        if not 0 <= self.beta_start <= 1:
            raise ValueError(f"beta_start={self.beta_start!r} is not valid: expected [0, 1].")
        if self.length < 1:
            raise ValueError(f"schedule length={self.length!r} is not valid: expected >= 1 step.")
        if self.cycles < 1:
            raise ValueError(f"cycles={self.cycles!r} is not valid: expected an integer >= 1.")
        if not 0 < self.ramp_ratio <= 1:
            raise ValueError(f"ramp_ratio={self.ramp_ratio!r} is not valid: expected (0, 1].")

    def __call__(self, step: int) -> float:
        """β at optimizer step `step` (0 for the first update)."""
        if self.kind == "constant":
            return self.beta
        start = self.beta_start
        if self.kind == "linear":
            return min(1.0, start + (1 - start) * step / self.length)
        if self.kind == "sigmoid":
            if step >= self.length:
                return 1.0
            return start + (1 - start) / (1 + math.exp(-10 * (step / self.length - 0.5)))
        period = self.length / self.cycles
        if step >= self.length:
            return 1.0
        phase = (step % period) / period
        return min(1.0, start + (1 - start) * phase / self.ramp_ratio)


def check_free_bits(free_bits: float) -> None:
    """Refuse a λ that is not a finite number of nats >= 0 (the one check of free bits).

    `not >= 0` also refuses NaN, which compares false with everything: the KL term would
    silently drop out of the loss.
    """
    if not (math.isfinite(free_bits) and free_bits >= 0):
        raise ValueError(f"free_bits={free_bits!r} is not valid: expected a finite λ >= 0 nats.")


def kl_term(
    kl_per_dim: Tensor | None,
    free_bits: float = 0.0,
    kl: Tensor | None = None,
    latent_size: int | None = None,
) -> Tensor:
    """The KL part of the loss for a batch, before β.

    Args:
        kl_per_dim: `(batch, latent_size)` KL per example and latent dimension, or `None`
            for a posterior without a closed-form KL (flows, auxiliary variables).
        free_bits: λ in nats per latent dimension; 0 turns free bits off.
        kl: `(batch,)` the KL itself, needed when `kl_per_dim` is `None`.
        latent_size: d, for free bits without a per-dimension split.
    Returns:
        `()`: mean over the batch of the KL, or Σ_k max(λ, mean_x KL_k). Without a
        per-dimension split, free bits hold the whole KL: max(d·λ, mean_x KL).
    """
    check_free_bits(free_bits)
    if kl_per_dim is None:
        if kl is None:
            raise ValueError("kl_term needs kl_per_dim, or kl when there is no split.")
        if free_bits == 0:
            return kl.mean()
        if latent_size is None:
            raise ValueError("free bits without a per-dimension KL need latent_size.")
        return torch.clamp(kl.mean(), min=free_bits * latent_size)
    if free_bits == 0:
        return kl_per_dim.sum(-1).mean()
    return torch.clamp(kl_per_dim.mean(0), min=free_bits).sum()


def capacity_at(step: int, capacity: float, length: int) -> float:
    """C(step) = C_max · min(1, step / length): the capacity raised linearly from 0 to
    `capacity` nats over the first `length` optimizer steps (Burgess et al. 2018)."""
    if not (math.isfinite(capacity) and capacity > 0):
        raise ValueError(f"capacity={capacity!r} is not valid: expected a number of nats > 0.")
    if length < 1:
        raise ValueError(f"capacity ramp length={length!r} is not valid: expected >= 1 step.")
    return capacity * min(1.0, step / length)


def capacity_term(kl: Tensor, capacity: float, weight: float) -> Tensor:
    """γ · |KL_term − C|: the rate held near `capacity` nats (Burgess et al. 2018, Eq. 8).

    Args:
        kl: `()` the batch's KL term (`kl_term`, free bits applied if any).
        capacity: C in nats at this step (`capacity_at`).
        weight: γ, the weight of the deviation.
    Returns:
        `()`.
    """
    return weight * (kl - capacity).abs()
