"""The network that turns an encoder's output into the config's posterior family.

    encoder(x) ─▶ PosteriorParameters (μ, scale, features h) ─▶ PosteriorHead ─▶ q(z|x)
        "gaussian"   the prior family's diagonal Gaussian (`vaehub.latent.posteriors`)
        "planar"     that Gaussian through planar flow steps (`vaehub.latent.flows`)
        "iaf"        that Gaussian through inverse autoregressive steps (`vaehub.latent.flows`)
        "auxiliary"  an auxiliary-variable posterior (`vaehub.latent.posteriors`)

It sits apart from both family modules because it needs both, and the flows build on the
Gaussian: a head inside `posteriors` would make the two import each other.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.distributions import Distribution

from vaehub.latent.flows import FlowHead
from vaehub.latent.posteriors import (
    FLOW_FAMILIES,
    AuxiliaryHead,
    GaussianHead,
    PosteriorParameters,
)


class PosteriorHead(nn.Module):
    """Turns the encoder's `PosteriorParameters` into the config's posterior family.

    Holds the family's own networks (flow steps, auxiliary networks); the Gaussian has
    none, so a Gaussian model's weights are the encoder's and decoder's alone.
    """

    def __init__(self, config: Any, context_size: int) -> None:
        super().__init__()
        self.family = getattr(config, "posterior", "gaussian")
        self.gaussian = GaussianHead()
        if self.family in FLOW_FAMILIES:
            self.flow = FlowHead(
                self.family,
                context_size,
                config.latent_size,
                config.flow_length,
                config.posterior_hidden_size,
            )
        elif self.family == "auxiliary":
            self.auxiliary = AuxiliaryHead(
                context_size,
                config.latent_size,
                config.auxiliary_size,
                config.posterior_hidden_size,
            )

    def forward(self, parameters: PosteriorParameters, prior: Any) -> Distribution:
        if self.family in FLOW_FAMILIES:
            return self.flow(parameters, self.gaussian(parameters, prior))
        if self.family == "auxiliary":
            return self.auxiliary(parameters, prior)
        return self.gaussian(parameters, prior)
