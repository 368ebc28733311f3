"""The posterior families q(z|x), built from the encoder's output (Kingma & Welling 2014;
the richer families' papers are cited where each is built).

    encoder(x) ─▶ PosteriorParameters: λ = (μ, scale) and the features h
               ─▶ config.posterior:
                    "gaussian"   N(μ, diag σ²), σ from `scale` as the prior's family says
                                 (log-variance; held in [σ_l, σ_u] for a δ-VAE)
                    "planar"     the Gaussian through `flow_length` planar flows (`flows`)
                    "iaf"        the Gaussian through `flow_length` IAF steps (`flows`)
                    "auxiliary"  q(v|x)·q(z|v,x) with a reverse model r(v|x,z)

Every posterior is a `torch.distributions.Distribution` with `rsample`, `log_prob`, `mean`
and `rsample_and_log_prob(shape)`: a reparameterised sample with its log q(z|x), in one
pass, which is what the ELBO, the KL estimate (`vaehub.latent.kl`) and the IW-NLL need. For the
auxiliary family the log q of a sample is the bound's term
log q(v|x) + log q(z|v,x) − log r(v|x,z) at the (z, v) drawn, so the ELBO becomes the
auxiliary bound (Ranganath et al. 2016; Maaløe et al. 2016) and the IW-NLL stays a lower
bound on log p(x) for every K; its `log_prob(z)` is an importance estimate of log q(z|x)
with r as the proposal.

SVI refinement (`vaehub.latent.svi`) changes λ alone and keeps the family: σ always comes from
the prior's map of `scale`, so a refined δ-VAE posterior still has KL ≥ δ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, constraints

POSTERIOR_FAMILIES = ("gaussian", "planar", "iaf", "auxiliary")
FLOW_FAMILIES = ("planar", "iaf")
# |log σ²| beyond this is clamped: e^30 ≈ 1e13 keeps σ², KL and log q finite in float32 and
# bfloat16, where e^(s/2) of an encoder's large output would overflow to inf (KL = NaN).
LOG_VARIANCE_LIMIT = 30.0
# Importance samples of the auxiliary family's log q(z|x) estimate.
AUXILIARY_LOG_PROB_SAMPLES = 16


@dataclass
class PosteriorParameters:
    """The encoder's output for a batch.

    Attributes:
        mean: `(*batch, *event)` μ, the local variational parameters with `scale`.
        scale: `(*batch, *event)` unconstrained; the prior family maps it to σ.
        context: `(*batch, [n], context_size)` the encoder's features, which condition
            flows and auxiliary variables (one row per latent position when sequential).
        mask: `(*batch, n)` 1 on the positions of a sequence latent of varying length.
    """

    mean: Tensor
    scale: Tensor
    context: Tensor | None = None
    mask: Tensor | None = None

    def with_local(self, mean: Tensor, scale: Tensor) -> PosteriorParameters:
        """The same features with other local parameters λ = (mean, scale)."""
        return replace(self, mean=mean, scale=scale)

    def detached(self) -> PosteriorParameters:
        context = None if self.context is None else self.context.detach()
        return replace(self, mean=self.mean.detach(), scale=self.scale.detach(), context=context)


class SampleWithLogProb:
    """`rsample_and_log_prob` for a distribution whose `log_prob` of its own samples is
    cheap; families where it is not override it."""

    def rsample_and_log_prob(self, sample_shape: Sequence[int] = ()) -> tuple[Tensor, Tensor]:
        """A reparameterised sample `(*sample_shape, *batch, *event)` and its log q
        `(*sample_shape, *batch)`."""
        z = self.rsample(sample_shape)
        return z, self.log_prob(z)

    @torch.no_grad()
    def sample_and_log_prob(self, sample_shape: Sequence[int] = ()) -> tuple[Tensor, Tensor]:
        return self.rsample_and_log_prob(sample_shape)


class DiagonalGaussian(SampleWithLogProb, Independent):
    """N(mean, diag(std²)) over the trailing `event_ndims` dimensions.

    Args:
        mean: `(*batch, *event)` posterior means.
        std: `(*batch, *event)` posterior standard deviations, > 0.
        event_ndims: 1 for a latent vector `(d,)`, 2 for a sequence `(n, d)`.
        mask: `(*batch, n)` for a sequence `(n, d)` of varying length: 1 where a
            position belongs to the example. Positions outside count nothing in
            `log_prob` and `entropy`, and are 0 in samples.
    """

    def __init__(
        self, mean: Tensor, std: Tensor, event_ndims: int = 1, mask: Tensor | None = None
    ) -> None:
        super().__init__(Normal(mean, std, validate_args=False), event_ndims, validate_args=False)
        if mask is not None and (event_ndims != 2 or mask.shape != mean.shape[:-1]):
            raise ValueError(
                f"mask must have shape {tuple(mean.shape[:-1])} for a sequence "
                f"latent, got {tuple(mask.shape)}."
            )
        self.mask = None if mask is None else mask.to(mean.dtype).unsqueeze(-1)

    @property
    def std(self) -> Tensor:
        return self.base_dist.scale

    @property
    def mean(self) -> Tensor:
        mean = self.base_dist.loc
        return mean if self.mask is None else mean * self.mask

    @property
    def event_ndims(self) -> int:
        return len(self.event_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        if self.mask is None:
            return super().log_prob(value)
        return (self.base_dist.log_prob(value) * self.mask).sum((-2, -1))

    def entropy(self) -> Tensor:
        if self.mask is None:
            return super().entropy()
        return (self.base_dist.entropy() * self.mask).sum((-2, -1))

    def rsample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        sample = super().rsample(torch.Size(sample_shape))
        return sample if self.mask is None else sample * self.mask

    def sample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    @property
    def log_var(self) -> Tensor:
        return 2 * torch.log(self.base_dist.scale)


def gaussian_from_log_var(
    mean: Tensor, log_var: Tensor, event_ndims: int, mask: Tensor | None = None
) -> DiagonalGaussian:
    """N(mean, diag e^{log_var}), the log-variance clamped to ±`LOG_VARIANCE_LIMIT`."""
    log_var = log_var.clamp(-LOG_VARIANCE_LIMIT, LOG_VARIANCE_LIMIT)
    return DiagonalGaussian(mean, torch.exp(0.5 * log_var), event_ndims, mask)


class LatentPosterior(SampleWithLogProb, Distribution):
    """A posterior family beyond the diagonal Gaussian; subclasses give
    `rsample_and_log_prob`, `log_prob` and `mean`."""

    arg_constraints: dict = {}
    support = constraints.real
    has_rsample = True

    def __init__(self, batch_shape: torch.Size, event_shape: torch.Size) -> None:
        super().__init__(batch_shape, event_shape, validate_args=False)

    def rsample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        return self.rsample_and_log_prob(sample_shape)[0]

    def sample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


def _with_context(context: Tensor, x: Tensor) -> Tensor:
    """`[h ; x]` along the last axis, h broadcast to x's leading shape."""
    lead = torch.broadcast_shapes(context.shape[:-1], x.shape[:-1])
    return torch.cat(
        [context.expand(*lead, context.shape[-1]), x.expand(*lead, x.shape[-1])], dim=-1
    )


class AuxiliaryHead(nn.Module):
    """The networks of the auxiliary family: q(v|x), the correction of (μ, scale) given v
    for q(z|v,x), and the reverse model r(v|x,z), each from the encoder's features."""

    def __init__(self, context_size: int, latent_size: int, auxiliary_size: int, hidden: int):
        super().__init__()
        self.auxiliary = nn.Linear(context_size, 2 * auxiliary_size)
        self.latent_given_auxiliary = nn.Sequential(
            nn.Linear(context_size + auxiliary_size, hidden), nn.Tanh(),
            nn.Linear(hidden, 2 * latent_size),
        )  # fmt: skip
        self.reverse = nn.Sequential(
            nn.Linear(context_size + latent_size, hidden), nn.Tanh(),
            nn.Linear(hidden, 2 * auxiliary_size),
        )  # fmt: skip

    def forward(self, parameters: PosteriorParameters, prior: Any) -> AuxiliaryPosterior:
        if parameters.context is None:
            raise ValueError("the auxiliary posterior needs the encoder's features (context).")
        return AuxiliaryPosterior(parameters, self, prior)


class AuxiliaryPosterior(LatentPosterior):
    """q(z, v|x) = q(v|x)·q(z|v,x) with the reverse model r(v|x,z) (Ranganath et al. 2016).

    `mean` is the mean of q(z|v,x) at v = E[v], a point estimate of E_q[z].
    """

    def __init__(self, parameters: PosteriorParameters, head: AuxiliaryHead, prior: Any):
        self.parameters, self.head, self.prior = parameters, head, prior
        self.event_ndims = prior.event_ndims
        mask = parameters.mask
        self.mask = None if mask is None else mask.to(parameters.mean.dtype).unsqueeze(-1)
        mean, log_var = head.auxiliary(parameters.context).chunk(2, dim=-1)
        self.auxiliary = gaussian_from_log_var(mean, log_var, self.event_ndims, parameters.mask)
        shape, split = parameters.mean.shape, parameters.mean.dim() - self.event_ndims
        super().__init__(shape[:split], shape[split:])

    def _mask_for(self, lead: torch.Size) -> Tensor | None:
        if self.parameters.mask is None:
            return None
        return self.parameters.mask.expand(*lead, self.parameters.mask.shape[-1])

    def latent_given(self, v: Tensor) -> Any:
        """q(z|v,x) for auxiliary values `(*sample, *batch, *event_v)`."""
        shift, scale_shift = self.head.latent_given_auxiliary(
            _with_context(self.parameters.context, v)
        ).chunk(2, dim=-1)
        mean, scale = self.parameters.mean + shift, self.parameters.scale + scale_shift
        lead = mean.shape[: mean.dim() - self.event_ndims]
        return self.prior.posterior(mean, scale, mask=self._mask_for(lead))

    def reverse_given(self, z: Tensor) -> DiagonalGaussian:
        """r(v|x,z) for latents `(*sample, *batch, *event)`."""
        mean, log_var = self.head.reverse(_with_context(self.parameters.context, z)).chunk(
            2, dim=-1
        )
        lead = mean.shape[: mean.dim() - self.event_ndims]
        return gaussian_from_log_var(mean, log_var, self.event_ndims, self._mask_for(lead))

    def rsample_and_log_prob(self, sample_shape: Sequence[int] = ()) -> tuple[Tensor, Tensor]:
        v = self.auxiliary.rsample(sample_shape)
        conditional = self.latent_given(v)
        z = conditional.rsample()
        log_q = (
            self.auxiliary.log_prob(v) + conditional.log_prob(z) - self.reverse_given(z).log_prob(v)
        )
        return z, log_q

    def log_prob(self, value: Tensor, samples: int = AUXILIARY_LOG_PROB_SAMPLES) -> Tensor:
        """log q(z|x) ≈ log mean_s q(v_s|x) q(z|v_s,x) / r(v_s|x,z), v_s ~ r(v|x,z)."""
        reverse = self.reverse_given(value)
        v = reverse.sample((samples,))
        log_weights = (
            self.auxiliary.log_prob(v) + self.latent_given(v).log_prob(value) - reverse.log_prob(v)
        )
        return torch.logsumexp(log_weights, dim=0) - math.log(samples)

    @property
    def mean(self) -> Tensor:
        return self.latent_given(self.auxiliary.mean).mean


class GaussianHead(nn.Module):
    """The diagonal Gaussian of the prior's family, straight from (μ, scale)."""

    def forward(self, parameters: PosteriorParameters, prior: Any) -> DiagonalGaussian:
        return prior.posterior(parameters.mean, parameters.scale, mask=parameters.mask)


