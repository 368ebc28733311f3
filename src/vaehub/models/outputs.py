"""The fields every vaehub model's `forward` returns, declared once.

`ELBOOutput` is what every objective and metric reads (an exact baseline fills it too, with
a zero KL); `LatentOutput` adds the latent a VAE drew and its posterior. Each model's own
output (`TextVAEOutput`, `DeltaVAEOutput`, ...) adds only what its modality has: logits,
token counts, a closed-form reconstruction mean.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from transformers.utils import ModelOutput


@dataclass
class ELBOOutput(ModelOutput):
    """The negative ELBO's parts for a batch (for an exact baseline: its NLL and KL = 0).

    Attributes:
        loss: `()` mean over the batch of the negative ELBO, reconstruction_nll + kl (an
            exact baseline: of reconstruction_nll).
        reconstruction_nll: `(batch,)` −log p(x|z) in nats, summed over the example's
            units (tokens, pixel values, coordinates); an exact baseline's −log p(x), named
            alike so that every objective and metric reads it.
        kl: `(batch,)` KL(q(z|x) ‖ p(z)) in nats (zeros where there is no latent).
        kl_per_dim: `(batch, latent_size)` the KL split over latent dimensions (`None` for
            a posterior family whose KL has no closed form, or no latent).
    """

    loss: Tensor | None = None
    reconstruction_nll: Tensor | None = None
    kl: Tensor | None = None
    kl_per_dim: Tensor | None = None


@dataclass
class LatentOutput(ELBOOutput):
    """`ELBOOutput` with the latent the decoder was given and the posterior it came from.

    Attributes:
        z: `(batch, *latent_shape)` the latent the decoder was given (a sample of q(z|x),
            or the `z` passed in).
        posterior_mean: `(batch, *latent_shape)` the mean of q(z|x).
        posterior_std: `(batch, *latent_shape)` its standard deviation (Gaussian
            posteriors only).
    """

    z: Tensor | None = None
    posterior_mean: Tensor | None = None
    posterior_std: Tensor | None = None
