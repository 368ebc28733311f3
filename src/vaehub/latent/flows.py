"""Normalizing-flow posteriors: planar flows (Rezende & Mohamed 2015) and IAF (Kingma et al. 2016).

    z₀ ~ q₀(z|x) = N(μ, diag σ²)        the encoder's Gaussian
    z_T = f_T ∘ … ∘ f_1(z₀)             each f_t conditioned on the encoder's features h
    log q(z_T|x) = log q₀(z₀|x) − Σ_t log |det ∂f_t/∂z_{t−1}|

- planar (Rezende & Mohamed 2015): f(z) = z + û·tanh(wᵀz + b) with u, w, b computed from h,
  and û = u + (m(wᵀu) − wᵀu)·w/‖w‖², m(a) = −1 + softplus(a), so that wᵀû ≥ −1 and f is
  invertible. Its inverse reduces to one monotone scalar equation, solved by bisection.
- IAF (Kingma et al. 2016): [m_t, s_t] = MADE_t(z_{t−1}, h), σ_t = sigmoid(s_t),
  z_t = σ_t ⊙ z_{t−1} + (1 − σ_t) ⊙ m_t, the variable order reversed between steps.
  Its inverse takes one MADE pass per latent dimension.

A flow acts on the last (channel) axis. Sequential latents `(n, d)` get one flow per
position, conditioned on that position's features; positions outside an example's mask
stay 0 and count nothing.

Shapes: z `(*sample, *batch, *event)`; the features h `(*batch, [n], context_size)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaehub.latent.posteriors import DiagonalGaussian, LatentPosterior, PosteriorParameters

# σ_t = sigmoid(s_t + offset): with the small weights of a fresh model s_t ≈ 0, so each
# IAF step starts near the identity (σ ≈ 0.95), as Kingma et al. initialise its bias.
IAF_GATE_OFFSET = 3.0
BISECTION_STEPS = 60


class FlowStep(nn.Module):
    """One invertible map of a flow, with its parameters computed from the features."""

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """`z` `(…, d)` → f(z) `(…, d)` and log |det ∂f/∂z| `(…)`."""
        raise NotImplementedError

    def inverse(self, y: Tensor, context: Tensor) -> Tensor:
        """f⁻¹(y), `(…, d)`."""
        raise NotImplementedError


def planar_parameters(raw: Tensor, latent_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """(û, w, b) from raw `(…, 2d + 1)` = [u ; w ; b], with û made to satisfy wᵀû ≥ −1."""
    d = latent_size
    u, w, b = raw[..., :d], raw[..., d : 2 * d], raw[..., 2 * d :]
    wu = (w * u).sum(-1, keepdim=True)
    # The smallest ‖w‖² keeps û finite where an encoder output makes w vanish.
    w_norm = w.pow(2).sum(-1, keepdim=True).clamp_min(1e-12)
    u_hat = u + (F.softplus(wu) - 1 - wu) * w / w_norm
    return u_hat, w, b


class PlanarStep(FlowStep):
    """f(z) = z + û·tanh(wᵀz + b), with (u, w, b) computed from the features."""

    def __init__(self, context_size: int, latent_size: int) -> None:
        super().__init__()
        self.latent_size = latent_size
        self.to_parameters = nn.Linear(context_size, 2 * latent_size + 1)

    def parameters_for(self, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return planar_parameters(self.to_parameters(context), self.latent_size)

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        u_hat, w, b = self.parameters_for(context)
        activation = torch.tanh((w * z).sum(-1, keepdim=True) + b)
        psi = (1 - activation.pow(2)) * w
        log_det = torch.log((1 + (u_hat * psi).sum(-1)).abs().clamp_min(1e-30))
        return z + u_hat * activation, log_det

    def inverse(self, y: Tensor, context: Tensor) -> Tensor:
        u_hat, w, b = self.parameters_for(context)
        # With a = wᵀz: wᵀy = a + (wᵀû)·tanh(a + b), increasing in a since wᵀû ≥ −1, and
        # |a − wᵀy| ≤ |wᵀû|: bisect a in that bracket, then z = y − û·tanh(a + b).
        c = (w * u_hat).sum(-1, keepdim=True)
        target = (w * y).sum(-1, keepdim=True)
        low, high = target - c.abs() - 1e-6, target + c.abs() + 1e-6
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (low + high)
            above = mid + c * torch.tanh(mid + b) > target
            high = torch.where(above, mid, high)
            low = torch.where(above, low, mid)
        a = 0.5 * (low + high)
        return y - u_hat * torch.tanh(a + b)


class LocalPlanarStep(PlanarStep):
    """A planar step with its own (u, w, b) per example, optimised for those examples
    alone (the optimal flow posterior of `vaehub.evaluation.gaps`); starts as the identity."""

    def __init__(self, shape: tuple[int, ...], latent_size: int, dtype: torch.dtype) -> None:
        FlowStep.__init__(self)
        self.latent_size = latent_size
        w = 0.1 * torch.randn(*shape, latent_size, dtype=dtype)
        # With u = ln(e − 1)·w/‖w‖², m(wᵀu) = 0, so û = u − (wᵀu)·w/‖w‖² = 0: f = identity.
        u = math.log(math.e - 1) * w / w.pow(2).sum(-1, keepdim=True)
        self.raw = nn.Parameter(torch.cat([u, w, torch.zeros(*shape, 1, dtype=dtype)], -1))

    def parameters_for(self, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return planar_parameters(self.raw, self.latent_size)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight only connects an output of degree k to inputs of degree
    below k (`strict`) or at most k. The mask is rebuilt from the degrees at every call:
    a buffer would not survive transformers' loading on the meta device."""

    def __init__(
        self, in_degrees: list[int], out_degrees: list[int], strict: bool, bias: bool = True
    ) -> None:
        super().__init__(len(in_degrees), len(out_degrees), bias=bias)
        self.in_degrees, self.out_degrees, self.strict = in_degrees, out_degrees, strict

    def mask(self) -> Tensor:
        device = self.weight.device
        inputs = torch.tensor(self.in_degrees, device=device)
        outputs = torch.tensor(self.out_degrees, device=device)[:, None]
        allowed = outputs > inputs if self.strict else outputs >= inputs
        return allowed.to(self.weight.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask(), self.bias)


class IAFStep(FlowStep):
    """A MADE (one hidden layer, conditioned on h) giving m and s, output i seeing only
    inputs before i in this step's order."""

    def __init__(self, context_size: int, latent_size: int, hidden_size: int, reverse: bool):
        super().__init__()
        d = latent_size
        self.latent_size, self.reverse = d, reverse
        inputs = list(range(1, d + 1))
        # Hidden degrees in 0 … d − 1: a unit of degree k sees inputs 1 … k (degree 0 only h);
        # output i (for m and for s) sees units of degree < i, so inputs before i.
        hidden = [k % d for k in range(hidden_size)]
        self.input_to_hidden = MaskedLinear(inputs, hidden, strict=False)
        self.context_to_hidden = nn.Linear(context_size, hidden_size, bias=False)
        self.hidden_to_output = MaskedLinear(hidden, inputs + inputs, strict=True)

    def _shift_and_gate(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        hidden = torch.relu(self.input_to_hidden(x) + self.context_to_hidden(context))
        m, s = self.hidden_to_output(hidden).chunk(2, dim=-1)
        return m, torch.sigmoid(s + IAF_GATE_OFFSET)

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        x = z.flip(-1) if self.reverse else z
        m, gate = self._shift_and_gate(x, context)
        y = gate * x + (1 - gate) * m
        return (y.flip(-1) if self.reverse else y), torch.log(gate).sum(-1)

    def inverse(self, y: Tensor, context: Tensor) -> Tensor:
        y = y.flip(-1) if self.reverse else y
        x = torch.zeros_like(y)
        for i in range(self.latent_size):
            m, gate = self._shift_and_gate(x, context)
            x = x.clone()
            x[..., i] = (y[..., i] - (1 - gate[..., i]) * m[..., i]) / gate[..., i]
        return x.flip(-1) if self.reverse else x


class FlowPosterior(LatentPosterior):
    """q(z_T|x): the encoder's Gaussian pushed through `steps`.

    `mean` is the flow's image of the Gaussian's mean, a point estimate: the mean of q has
    no closed form. Active units and reconstructions use it.
    """

    def __init__(self, base: DiagonalGaussian, steps: Sequence[FlowStep], context: Tensor) -> None:
        super().__init__(base.batch_shape, base.event_shape)
        self.base, self.steps, self.context = base, list(steps), context
        self.mask = base.mask

    def _push(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z₀ → z_T and Σ_t log|det|, summed over the event."""
        total = torch.zeros((), dtype=z.dtype, device=z.device)
        for step in self.steps:
            z, log_det = step(z, self.context)
            if self.mask is not None:
                z, log_det = z * self.mask, log_det * self.mask[..., 0]
            total = total + (log_det.sum(-1) if self.base.event_ndims == 2 else log_det)
        return z, total

    def rsample_and_log_prob(self, sample_shape: Sequence[int] = ()) -> tuple[Tensor, Tensor]:
        z0 = self.base.rsample(sample_shape)
        z, log_det = self._push(z0)
        return z, self.base.log_prob(z0) - log_det

    def log_prob(self, value: Tensor) -> Tensor:
        # Inverting needs z at the full broadcast shape: MI scores every latent under every
        # example's posterior, z `(N, 1, *event)` against a batch of N.
        z = value.expand(torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape))
        for step in reversed(self.steps):
            z = step.inverse(z, self.context)
            if self.mask is not None:
                z = z * self.mask
        _, log_det = self._push(z)
        return self.base.log_prob(z) - log_det

    @property
    def mean(self) -> Tensor:
        return self._push(self.base.mean)[0]


class FlowHead(nn.Module):
    """Builds a `FlowPosterior` from the encoder's parameters and features."""

    def __init__(self, kind: str, context_size: int, latent_size: int, length: int, hidden: int):
        super().__init__()
        if kind == "planar":
            steps = [PlanarStep(context_size, latent_size) for _ in range(length)]
        else:
            steps = [
                IAFStep(context_size, latent_size, hidden, reverse=t % 2 == 1)
                for t in range(length)
            ]
        self.steps = nn.ModuleList(steps)

    def forward(self, parameters: PosteriorParameters, base: DiagonalGaussian) -> FlowPosterior:
        if parameters.context is None:
            raise ValueError("a flow posterior needs the encoder's features (context).")
        return FlowPosterior(base, self.steps, parameters.context)
