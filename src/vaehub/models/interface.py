"""The interface the metrics, the objectives and SVI refinement use, written down.

He et al. (2019)'s protocol needs three things of a VAE: the posterior q(z|x), the prior
p(z) and log p(x|z). vaehub's metrics (`vaehub.evaluation.metrics`), the trainer's objectives
(`vaehub.training`) and SVI refinement (`vaehub.latent.svi`) ask a model for those through
the methods below and nothing else, so a model type that has them gets every metric and
objective unchanged. `tests/test_interface.py` holds every registered model type to them.

Batches are the model's own keyword arguments (`input_ids`/`attention_mask`,
`pixel_values` or `inputs`); per-example values are `(batch,)`; latents are
`(batch, *latent_shape)`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn
from torch.distributions import Distribution

from vaehub.latent.posteriors import PosteriorParameters


@runtime_checkable
class ScoredModel(Protocol):
    """What every vaehub model has, the exact baselines included."""

    def checked_batch(self, **batch: Any) -> dict[str, Tensor]:
        """The batch with its inputs checked (ids in range, pixels in [0, 1], ...)."""

    def units_per_example(self, **batch: Any) -> Tensor:
        """`(batch,)` tokens or pixels per example: what per-unit rates divide by."""

    def log_likelihood(self, *args: Any, **kwargs: Any) -> Tensor:
        """`(batch,)` log p(x) of a baseline, or log p(x|z) of a VAE given `z`."""


@runtime_checkable
class LatentVariableModel(ScoredModel, Protocol):
    """A VAE: the posterior, the prior and the decoder's likelihood, apart."""

    def posterior_parameters(self, **batch: Any) -> PosteriorParameters:
        """The encoder's λ = (μ, scale) and features: what SVI refinement moves."""

    def posterior_from(self, parameters: PosteriorParameters) -> Distribution:
        """q(z|x) of the config's posterior family for these parameters."""

    def encode(self, *args: Any, **kwargs: Any) -> Distribution:
        """q(z|x) straight from the encoder."""

    def prior_for(self, **batch: Any) -> Distribution:
        """p(z) for a batch (a committed-rate prior may depend on its lengths)."""

    def inference_network_parameters(self) -> list[nn.Parameter]:
        """φ: what the aggressive inner loop trains."""

    def elbo_terms(
        self,
        batch: dict[str, Tensor],
        parameters: PosteriorParameters,
        z: Tensor | None = None,
        keep_logits: bool = True,
    ) -> Any:
        """The ELBO's parts per example: reconstruction NLL and KL, never pre-weighted."""
