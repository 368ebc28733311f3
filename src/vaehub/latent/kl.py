"""KL(q(z|x) ‖ p(z)): the one place every model, objective and metric gets it from.

    closed form    where `torch.distributions` has one registered (a diagonal Gaussian
                   against every vaehub prior, split over latent channels)
    Monte Carlo    otherwise (flows, auxiliary variables): mean over samples of
                   log q(z|x) − log p(z), at the sample(s) the decoder is given in
                   training (one), and at `samples` fresh ones in evaluation

Shapes: the posterior and prior over `(*batch, *event)`; KL `(*batch,)`; the per-channel
split `(*batch, latent_size)` (summed over positions), or `None` without a closed form.
"""

from __future__ import annotations

from torch import Tensor
from torch.distributions import Distribution
from torch.distributions import kl_divergence as registered_kl

from vaehub.latent.posteriors import DiagonalGaussian


def has_closed_form(posterior: Distribution, prior: Distribution) -> bool:
    """Whether KL(posterior ‖ prior) has a closed form split over latent channels."""
    return isinstance(posterior, DiagonalGaussian) and hasattr(prior, "kl_per_dim")


def kl_divergence(q: Distribution, p: Distribution, z: Tensor | None = None) -> Tensor:
    """KL(q‖p) in closed form where one is registered, else log q(z) − log p(z) at `z`.

    Args:
        z: `(*batch, *event)` a sample from q, needed only without a closed form.
    """
    try:
        return registered_kl(q, p)
    except NotImplementedError:
        if z is None:
            raise ValueError(
                f"no closed-form KL({type(q).__name__} ‖ {type(p).__name__}) is registered; "
                "pass a sample z from q for the Monte Carlo estimate."
            ) from None
        return q.log_prob(z) - p.log_prob(z)


def latent_kl(
    posterior: Distribution,
    prior: Distribution,
    z: Tensor | None = None,
    log_q: Tensor | None = None,
    samples: int = 1,
) -> tuple[Tensor, Tensor | None]:
    """KL(q‖p) per example, and its split over latent channels where one exists.

    Args:
        z: `(*sample, *batch, *event)` samples of q to estimate at (the decoder's), or
            `None` to draw `samples` of them.
        log_q: `(*sample, *batch)` log q of `z` when the caller has it (a flow gets it
            with the sample, where evaluating it again would invert the flow).
    Returns:
        KL `(*batch,)` and per channel `(*batch, latent_size)` or `None`.
    """
    if has_closed_form(posterior, prior):
        kl_per_dim = prior.kl_per_dim(posterior)
        return kl_per_dim.sum(-1), kl_per_dim
    try:
        return registered_kl(posterior, prior), None
    except NotImplementedError:
        pass
    if z is None:
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}.")
        z, log_q = posterior.rsample_and_log_prob((samples,))
    elif log_q is None:
        log_q = posterior.log_prob(z)
    estimate = log_q - prior.log_prob(z)
    lead = estimate.dim() - len(posterior.batch_shape)
    return (estimate.mean(tuple(range(lead))) if lead > 0 else estimate), None
