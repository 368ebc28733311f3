"""Priors as `torch.distributions` objects (Kingma & Welling 2014; Razavi et al. 2019, §2).

Three families, each pairing a prior p(z) with the way a diagonal Gaussian posterior
is built from the encoder's output:

- `StandardNormalPrior`: p(z) = N(0, I); posterior σ unconstrained (log-variance).
- `VarianceConstrainedPrior`: p(z) = N(0, I); posterior σ ∈ [σ_l, σ_u], σ_u < 1,
  so KL(q‖p) ≥ δ = ½ Σ_k (σ_u² − ln σ_u² − 1).
- `AR1Prior`: each channel an AR(1) process over n positions,
  so KL(q‖p) ≥ δ = ½ Σ_k [(n − 2) ln(1 + α_k²) − ln(1 − α_k²)].

KL(q‖p) from a `DiagonalGaussian` is registered with `torch.distributions.kl_divergence`
in closed form; the AR(1) one costs O(n·d) through the prior's tridiagonal precision, and
no dense covariance is ever built. The posterior families themselves live in
`vaehub.latent.posteriors`; `vaehub.latent.kl` is where every caller gets KL(q‖p),
closed form or not.

Latent shapes: a single vector `(..., d)`, or a sequence `(..., n, d)` with channels last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints, register_kl

from vaehub.latent.kl import kl_divergence  # noqa: F401  (its home before vaehub.latent.kl)
from vaehub.latent.posteriors import LOG_VARIANCE_LIMIT, DiagonalGaussian

LOG_2PI = math.log(2 * math.pi)


class LatentPrior(Distribution):
    """A prior p(z) together with the posterior family it is paired with.

    Subclasses give `kl_per_dim`, `log_prob`, `rsample` and `committed_rate`.
    """

    arg_constraints: dict = {}
    support = constraints.real
    has_rsample = True

    def __init__(self, latent_size: int, latent_length: int | None) -> None:
        self.latent_size = latent_size
        self.latent_length = latent_length
        event = (latent_size,) if latent_length is None else (latent_length, latent_size)
        super().__init__(torch.Size(), torch.Size(event), validate_args=False)

    @property
    def event_ndims(self) -> int:
        return len(self.event_shape)

    def posterior(
        self, mean: Tensor, scale_param: Tensor, mask: Tensor | None = None
    ) -> DiagonalGaussian:
        """The Gaussian q(z|x) of this family from the encoder's outputs; `scale_param` is
        a log-variance, clamped to ±`LOG_VARIANCE_LIMIT` so that no encoder output overflows.

        Args:
            mean: `(*batch, *event)`.
            scale_param: `(*batch, *event)` unconstrained; see the family for its meaning.
            mask: `(*batch, n)` positions of a sequence latent of varying length.
        """
        log_var = scale_param.clamp(-LOG_VARIANCE_LIMIT, LOG_VARIANCE_LIMIT)
        return DiagonalGaussian(mean, torch.exp(0.5 * log_var), self.event_ndims, mask)

    def kl_per_dim(self, posterior: DiagonalGaussian) -> Tensor:
        """KL(q‖p) split over latent channels, summed over positions: `(*batch, d)`."""
        raise NotImplementedError

    @property
    def committed_rate(self) -> float:
        """δ = min over the posterior family of KL(q‖p), in nats."""
        raise NotImplementedError


class StandardNormalPrior(LatentPrior):
    """p(z) = N(0, I) with an unconstrained diagonal Gaussian posterior."""

    def __init__(
        self,
        latent_size: int,
        latent_length: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(latent_size, latent_length)
        self._zero = torch.zeros((), device=device, dtype=dtype or torch.get_default_dtype())

    @property
    def mean(self) -> Tensor:
        return self._zero.expand(self.event_shape)

    @property
    def stddev(self) -> Tensor:
        return (self._zero + 1).expand(self.event_shape)

    def rsample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        shape = torch.Size(sample_shape) + self.event_shape
        return torch.randn(shape, device=self._zero.device, dtype=self._zero.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        dims = tuple(range(-self.event_ndims, 0))
        return (-0.5 * (value.pow(2) + LOG_2PI)).sum(dims)

    def kl_per_dim(self, posterior: DiagonalGaussian) -> Tensor:
        mean, var = posterior.mean, posterior.std.pow(2)
        kl = 0.5 * (mean.pow(2) + var - 1 - torch.log(var))
        return kl.sum(-2) if self.event_ndims == 2 else kl

    @property
    def committed_rate(self) -> float:
        return 0.0


class VarianceConstrainedPrior(StandardNormalPrior):
    """p(z) = N(0, I) with posterior σ held in [`std_min`, `std_max`], `std_max` < 1.

    The posterior's scale parameter is a logit: σ = σ_l + (σ_u − σ_l)·sigmoid(scale_param).
    """

    def __init__(
        self,
        latent_size: int,
        std_min: float,
        std_max: float,
        latent_length: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not 0 < std_min < std_max < 1:
            raise ValueError(
                f"need 0 < std_min < std_max < 1, got std_min={std_min}, std_max={std_max}."
            )
        super().__init__(latent_size, latent_length, device, dtype)
        self.std_min, self.std_max = std_min, std_max

    def posterior(
        self, mean: Tensor, scale_param: Tensor, mask: Tensor | None = None
    ) -> DiagonalGaussian:
        std = self.std_min + (self.std_max - self.std_min) * torch.sigmoid(scale_param)
        return DiagonalGaussian(mean, std, self.event_ndims, mask)

    @property
    def committed_rate(self) -> float:
        positions = self.latent_length or 1
        return positions * constrained_committed_rate(self.std_max, self.latent_size)


class AR1Prior(LatentPrior):
    """Each channel k an AR(1) process with unit marginal variance (Razavi et al. 2019, §2.1):
    z_1 ~ N(0, 1), z_t = α_k z_{t−1} + √(1 − α_k²) ε_t.

    Args:
        alpha: `(d,)` coefficients in [0, 1).
        latent_length: n, the number of positions.
        lengths: `(batch,)` optional per-example lengths ≤ n for sequences of varying
            length; positions at and after an example's length are outside its latent
            (zero in samples, ignored by `log_prob` and KL).
    """

    def __init__(
        self, alpha: Tensor | Sequence[float], latent_length: int, lengths: Tensor | None = None
    ) -> None:
        alpha = torch.as_tensor(alpha, dtype=torch.get_default_dtype())
        if alpha.dim() != 1 or ((alpha < 0) | (alpha >= 1)).any():
            raise ValueError(f"alpha must be a 1-d tensor of values in [0, 1), got {alpha}.")
        super().__init__(alpha.numel(), latent_length)
        self.alpha = alpha
        self.lengths = lengths
        if lengths is not None:
            if lengths.dim() != 1 or (lengths < 1).any() or (lengths > latent_length).any():
                raise ValueError(
                    f"lengths must be a 1-d tensor of values in [1, {latent_length}], "
                    f"got {lengths}."
                )
            self._batch_shape = lengths.shape

    def _mask(self, device: torch.device) -> Tensor:
        """`(*batch, n, 1)`: 1 where a position is inside the example's latent."""
        if self.lengths is None:
            return torch.ones(self.latent_length, 1, device=device)
        positions = torch.arange(self.latent_length, device=device)
        return (positions < self.lengths.to(device)[:, None]).unsqueeze(-1).float()

    def _precision(self, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """The tridiagonal precision, masked to each example's length.

        Returns: diagonal `(*batch, n, d)`, off-diagonal `(*batch, n − 1, d)`
        (entry t couples positions t and t + 1), and the mask `(*batch, n, 1)`.
        """
        alpha = self.alpha.to(device=device, dtype=dtype)
        one_minus = 1 - alpha.pow(2)
        mask = self._mask(device).to(dtype)
        n = self.latent_length
        first = torch.zeros(n, 1, device=device, dtype=dtype)
        first[0] = 1
        # z_t's own conditional term (1 for z_1, 1/(1−α²) after) plus α²/(1−α²) from z_{t+1}.
        has_next = torch.cat([mask[..., 1:, :], torch.zeros_like(mask[..., :1, :])], dim=-2)
        own = first + (1 - first) / one_minus
        diag = (own + has_next * alpha.pow(2) / one_minus) * mask
        off = -(alpha / one_minus) * has_next[..., :-1, :]
        return diag, off, mask

    def kl_per_dim(self, posterior: DiagonalGaussian) -> Tensor:
        mean, std = posterior.mean, posterior.std
        diag, off, mask = self._precision(mean.device, mean.dtype)
        var = std.pow(2)
        cross = (off * mean[..., :-1, :] * mean[..., 1:, :]).sum(-2)
        quad = (diag * (var + mean.pow(2))).sum(-2) + 2 * cross
        length = mask.sum(-2)
        log_det_prior = (length - 1) * torch.log1p(-self.alpha.to(mean).pow(2))
        log_det_post = (torch.log(var) * mask).sum(-2)
        return 0.5 * (quad - length + log_det_prior - log_det_post)

    def log_prob(self, value: Tensor) -> Tensor:
        alpha = self.alpha.to(value)
        one_minus = 1 - alpha.pow(2)
        mask = self._mask(value.device).to(value.dtype)
        first = -0.5 * (value[..., :1, :].pow(2) + LOG_2PI) * mask[..., :1, :]
        resid = value[..., 1:, :] - alpha * value[..., :-1, :]
        rest = -0.5 * (resid.pow(2) / one_minus + LOG_2PI + torch.log(one_minus)) * mask[..., 1:, :]
        return first.sum((-2, -1)) + rest.sum((-2, -1))

    def rsample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        alpha = self.alpha
        eps = torch.randn(shape + self.event_shape, dtype=alpha.dtype, device=alpha.device)
        innovation = torch.sqrt(1 - alpha.pow(2))
        steps = [eps[..., 0, :]]
        for t in range(1, self.latent_length):
            steps.append(alpha * steps[-1] + innovation * eps[..., t, :])
        return torch.stack(steps, dim=-2) * self._mask(alpha.device)

    @property
    def committed_rate(self) -> float:
        return ar1_committed_rate(self.alpha.tolist(), self.latent_length)

    def continue_mean(self, z: Tensor, lengths: Tensor, total: int) -> Tensor:
        """Extend latent sequences past their lengths with the prior's conditional mean,
        z_t = α z_{t−1}: how a sequence goes on when nothing more is known of it.

        Args:
            z: `(batch, n, d)`, valid up to `lengths` `(batch,)`.
            total: the length wanted, ≥ n.
        Returns:
            `(batch, total, d)`.
        """
        batch, n, d = z.shape
        out = torch.cat([z, z.new_zeros(batch, max(0, total - n), d)], dim=1)[:, :total]
        alpha = self.alpha.to(z)
        steps = [out[:, 0]]
        for t in range(1, total):
            inside = (t < lengths.to(z.device)).unsqueeze(-1)
            steps.append(torch.where(inside, out[:, t], alpha * steps[-1]))
        return torch.stack(steps, dim=1)

    def committed_rate_per_example(self) -> Tensor:
        """δ for each example's own length: `(batch,)`."""
        lengths = self.lengths.tolist() if self.lengths is not None else [self.latent_length]
        rates = [ar1_committed_rate(self.alpha.tolist(), n) for n in lengths]
        return torch.tensor(rates, dtype=self.alpha.dtype)


@register_kl(DiagonalGaussian, LatentPrior)
def _kl_diagonal_latent_prior(q: DiagonalGaussian, p: LatentPrior) -> Tensor:
    return p.kl_per_dim(q).sum(-1)


# --- committed rates (Razavi et al. 2019, §2) ---------------------------------------------


def constrained_committed_rate(std_max: float, latent_size: int) -> float:
    """δ = ½ Σ_k (σ_u² − ln σ_u² − 1) for `latent_size` channels at one position."""
    s = std_max**2
    return 0.5 * latent_size * (s - math.log(s) - 1)


def std_max_for_committed_rate(rate: float, latent_size: int) -> float:
    """The σ_u < 1 whose constrained family commits to `rate` nats over `latent_size` dims."""
    if rate <= 0:
        raise ValueError(f"committed_rate must be > 0 to constrain the posterior, got {rate}.")
    target = 2 * rate / latent_size

    # In u = ln σ², u − … is monotone: e^u − u − 1 falls from +∞ to 0 on u ∈ (−∞, 0].
    def excess(u: float) -> float:
        return math.expm1(u) - u - target

    return math.exp(0.5 * _bisect(excess, -(target + 2), 0.0, decreasing=True))


def ar1_committed_rate(alphas: Sequence[float], latent_length: int) -> float:
    """δ = ½ Σ_k [(n − 2) ln(1 + α_k²) − ln(1 − α_k²)], and 0 for a single position."""
    n = latent_length
    if n < 2:
        return 0.0
    return 0.5 * sum((n - 2) * math.log1p(a * a) - math.log1p(-a * a) for a in alphas)


def ar1_alpha_for_committed_rate(
    rate: float, latent_size: int, latent_length: int, spread: str = "shared"
) -> list[float]:
    """The α_k (`latent_size` values) whose AR(1) prior commits to `rate` nats.

    `spread="shared"` gives one α for all channels; `"linear"` gives α_k = s·(k + 1)/d
    with s solved for, a spread of time scales across channels.
    """
    if rate <= 0:
        raise ValueError(f"committed_rate must be > 0 for an AR(1) prior, got {rate}.")
    if latent_length < 2:
        raise ValueError(f"an AR(1) prior over {latent_length} position commits to no rate.")
    if spread not in ("shared", "linear"):
        raise ValueError(f"spread must be 'shared' or 'linear', got {spread!r}.")
    d, n = latent_size, latent_length
    fractions = [1.0] * d if spread == "shared" else [(k + 1) / d for k in range(d)]

    # Solve in v = −ln(1 − s²) ∈ [0, ∞): the rate is smooth in v with a bounded slope, and
    # 1 − f²s² = (1 − f²) + f²e^(−v) is exact even where s rounds to 1.
    def excess(v: float) -> float:
        total = 0.0
        for f in fractions:
            one_minus = (1 - f * f) + f * f * math.exp(-v)
            total += (n - 2) * math.log(2 - one_minus) - math.log(one_minus)
        return 0.5 * total - rate

    high = 1.0
    while excess(high) < 0:
        high *= 2
    s = math.sqrt(-math.expm1(-_bisect(excess, 0.0, high, decreasing=False)))
    alphas = [s * f for f in fractions]
    if max(alphas) >= 1 or abs(ar1_committed_rate(alphas, n) - rate) > 1e-6 * max(1.0, rate):
        raise ValueError(
            f"committed_rate={rate} over {n} positions needs α within float precision of 1 "
            f"with spread={spread!r}; use spread='shared', more positions or a lower rate."
        )
    return alphas


def _bisect(f, low: float, high: float, decreasing: bool, iterations: int = 200) -> float:
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        if (f(mid) > 0) == decreasing:
            low = mid
        else:
            high = mid
        if high - low <= 1e-15 * max(1.0, abs(mid)):
            break
    return 0.5 * (low + high)


def prior_from_config(
    config,
    latent_length: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    lengths: Tensor | None = None,
) -> LatentPrior:
    """The prior a `VAEConfig` describes.

    Args:
        latent_length: n positions for sequential latents; `None` for a single vector.
        lengths: `(batch,)` per-example lengths for AR(1) latents of varying length.
    """
    if config.prior == "standard":
        return StandardNormalPrior(config.latent_size, latent_length, device, dtype)
    if config.prior == "constrained":
        return VarianceConstrainedPrior(
            config.latent_size,
            config.posterior_std_min,
            config.posterior_std_max,
            latent_length,
            device,
            dtype,
        )
    n = latent_length or config.latent_length
    alpha = torch.tensor(
        config.ar1_alphas(), device=device, dtype=dtype or torch.get_default_dtype()
    )
    return AR1Prior(alpha, n, lengths)


def prior_of(model: Any, batch: dict[str, Tensor]) -> Any:
    """p(z) for this batch: `model.prior_for(**batch)` where the model has it (latents
    whose length follows the sentence), else `model.prior`."""
    prior_for = getattr(model, "prior_for", None)
    return prior_for(**batch) if prior_for is not None else model.prior
