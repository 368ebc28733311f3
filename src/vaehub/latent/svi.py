"""SVI refinement of the encoder's local parameters λ = (μ, scale) (Kim et al. 2018, Algorithm 1).

    λ₀ = enc_φ(x)
    for k = 0 … K−1:                         θ and φ fixed; one z sample per step
        g_k = ∇_λ ELBO_β(x; λ_k)            per example, clipped to norm ≤ max_grad_norm
        v_{k+1} = m·v_k + g_k ;  λ_{k+1} = λ_k + η·v_{k+1}

The semi-amortised VAE trains on ELBO(x; λ_K) (`VAETrainer`, objective `sa_vae`), and any
trained model can be evaluated with a refined posterior (`evaluate_vae(refinement=Refinement(K))`):
how much of its gap is the encoder's.

No weight gets a gradient inside the loop: every parameter of the model is frozen while
it runs, so autograd computes ∇_λ only and never a decoder weight gradient. With
`create_graph=True` (SA-VAE's backpropagated encoder update) the steps stay
differentiable in λ₀, so a backward pass through ELBO(x; λ_K) reaches the encoder
through Hessian-vector products, while the decoder's weights see only their direct
gradient ∂ELBO(x; λ_K, θ)/∂θ, as Kim et al. update them.

λ lives in the family's unconstrained parametrisation: the prior family maps `scale` to σ
(log-variance, or σ ∈ [σ_l, σ_u] for a δ-VAE), so a refined δ-VAE posterior keeps KL ≥ δ.
Flow and auxiliary networks stay amortised; their Gaussian's λ is what is refined.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from vaehub.latent.kl import latent_kl
from vaehub.latent.posteriors import PosteriorParameters
from vaehub.latent.priors import prior_of
from vaehub.latent.refinement import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_MAX_GRAD_NORM,
    DEFAULT_MOMENTUM,
    DEFAULT_STEPS,
    Refinement,
)


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """No parameter of `model` requires a gradient inside; restored on the way out."""
    with frozen_except(model, ()):
        yield


@contextmanager
def frozen_except(model: nn.Module, keep: Any) -> Iterator[None]:
    """Only the parameters in `keep` may require a gradient inside; restored after."""
    kept = {id(p) for p in keep}
    flags = [(p, p.requires_grad) for p in model.parameters() if id(p) not in kept]
    try:
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def example_elbo(
    model: nn.Module, batch: dict[str, Tensor], parameters: PosteriorParameters, beta: float = 1.0
) -> Tensor:
    """log p(x|z) − β·KL(q‖p) per example `(batch,)`, at one z ~ q(z|x; λ)."""
    posterior = model.posterior_from(parameters)
    z, log_q = posterior.rsample_and_log_prob()
    kl, _ = latent_kl(posterior, prior_of(model, batch), z, log_q)
    return model.log_likelihood(**batch, z=z.unsqueeze(0))[0] - beta * kl


def _clip_per_example(gradients: tuple[Tensor, Tensor], max_norm: float) -> tuple[Tensor, Tensor]:
    mean, scale = gradients
    batch = mean.shape[0]
    norm = torch.cat([mean.reshape(batch, -1), scale.reshape(batch, -1)], 1).norm(dim=1)
    factor = (max_norm / (norm + 1e-12)).clamp(max=1.0)
    shape = (batch,) + (1,) * (mean.dim() - 1)
    return mean * factor.view(shape), scale * factor.view(shape)


def refine(
    model: nn.Module,
    batch: dict[str, Tensor],
    parameters: PosteriorParameters,
    steps: int = DEFAULT_STEPS,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    momentum: float = DEFAULT_MOMENTUM,
    max_grad_norm: float = DEFAULT_MAX_GRAD_NORM,
    beta: float = 1.0,
    create_graph: bool = False,
) -> PosteriorParameters:
    """λ_K after `steps` SVI steps from `parameters` (the encoder's λ₀).

    Args:
        batch: the model's checked inputs (`input_ids`/`attention_mask`, `pixel_values`).
        beta: weight of the KL in each step's ELBO (an annealed run's current β).
        create_graph: keep the steps differentiable in λ₀ (SA-VAE's encoder update);
            otherwise λ₀ is detached and the result carries no graph.
    Returns:
        the parameters with λ replaced; `mean` and `scale` `(batch, *latent_shape)`.
    """
    Refinement(steps, learning_rate, momentum, max_grad_norm)  # checks the settings
    if steps == 0:
        return parameters
    if not create_graph:
        parameters = parameters.detached()
    # λ stays in float32 under autocast: steps of η/B on bfloat16 values (8 significant
    # bits) would round away.
    mean, scale = (
        x.to(torch.promote_types(x.dtype, torch.float32))
        for x in (parameters.mean, parameters.scale)
    )
    with torch.enable_grad(), frozen(model):
        if not mean.requires_grad:
            mean = mean.detach().requires_grad_()
            scale = scale.detach().requires_grad_()
        velocity_mean, velocity_scale = torch.zeros_like(mean), torch.zeros_like(scale)
        for _ in range(steps):
            elbo = example_elbo(model, batch, parameters.with_local(mean, scale), beta)
            gradients = torch.autograd.grad(elbo.sum(), (mean, scale), create_graph=create_graph)
            grad_mean, grad_scale = _clip_per_example(gradients, max_grad_norm)
            velocity_mean = momentum * velocity_mean + grad_mean
            velocity_scale = momentum * velocity_scale + grad_scale
            mean = mean + learning_rate * velocity_mean
            scale = scale + learning_rate * velocity_scale
            if not create_graph:
                velocity_mean, velocity_scale = velocity_mean.detach(), velocity_scale.detach()
                mean, scale = mean.detach().requires_grad_(), scale.detach().requires_grad_()
    if not create_graph:
        mean, scale = mean.detach(), scale.detach()
    return parameters.with_local(mean, scale)


def refine_with(
    model: nn.Module,
    batch: dict[str, Tensor],
    parameters: PosteriorParameters,
    refinement: Refinement,
    beta: float = 1.0,
    create_graph: bool = False,
) -> PosteriorParameters:
    """`refine` with the settings of one `Refinement` (λ returned as given for 0 steps)."""
    return refine(
        model, batch, parameters, refinement.steps, refinement.learning_rate,
        refinement.momentum, refinement.max_grad_norm, beta=beta, create_graph=create_graph,
    )  # fmt: skip
