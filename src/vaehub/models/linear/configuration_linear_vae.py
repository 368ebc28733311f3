"""`LinearVAEConfig`: the linear VAE of Lucas et al. (2019) and the deep VAE with the same
Gaussian decoder that their collapse experiments set beside it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from vaehub.models.configuration_utils import VAEConfig, _fail, check_float, check_int


class LinearVAEConfig(VAEConfig):
    r"""Configuration of `LinearVAEModel` (Lucas et al. 2019).

    Args:
        input_size (`int`, defaults to 784):
            D, the dimension of an observation x.
        latent_size (`int`, defaults to 16):
            k, the dimension of z.
        observation_variance (`float`, defaults to 0.1):
            σ² of p(x|z) = N(f(z), σ²I): the fixed value, or the initial one when learned.
        learn_observation_variance (`bool`, defaults to `False`):
            Train σ² with the other weights (as maximum likelihood pPCA does); fixed σ² is
            the setting of Lucas et al.'s collapse experiments.
        hidden_sizes (`list[int]`, defaults to `[]`):
            Empty: the linear VAE. Otherwise the widths of the hidden layers of an MLP
            encoder (D → h₁ → … → 2k) and decoder (k → … → h₁ → D), tanh activations,
            with an input-dependent diagonal Gaussian posterior.
        **kwargs: `VAEConfig`'s; only `prior="standard"` and `posterior="gaussian"`.
    """

    model_type = "linear_vae"

    def __init__(
        self,
        input_size: int = 784,
        latent_size: int = 16,
        observation_variance: float = 0.1,
        learn_observation_variance: bool = False,
        hidden_sizes: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.input_size = input_size
        self.observation_variance = observation_variance
        self.learn_observation_variance = learn_observation_variance
        # A tuple is a list once through JSON; anything else is left for _validate to refuse.
        self.hidden_sizes = [] if hidden_sizes is None else hidden_sizes
        if isinstance(self.hidden_sizes, tuple):
            self.hidden_sizes = list(self.hidden_sizes)
        super().__init__(latent_size=latent_size, **kwargs)

    def _validate(self) -> None:
        super()._validate()
        if self.prior != "standard":
            raise _fail("prior", self.prior, "the linear VAE has p(z) = N(0, I): 'standard'")
        if self.posterior != "gaussian":
            raise _fail(
                "posterior", self.posterior, "the linear VAE has a diagonal Gaussian: 'gaussian'"
            )
        check_int("input_size", self.input_size)
        check_float(
            "observation_variance",
            self.observation_variance,
            0.0,
            math.inf,
            low_open=True,
            high_open=True,
        )
        if not isinstance(self.learn_observation_variance, bool):
            raise _fail("learn_observation_variance", self.learn_observation_variance, "a bool")
        if not isinstance(self.hidden_sizes, list):
            raise _fail("hidden_sizes", self.hidden_sizes, "expected a list of integers >= 1")
        for size in self.hidden_sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise _fail("hidden_sizes", self.hidden_sizes, "expected a list of integers >= 1")

    @property
    def is_linear(self) -> bool:
        """Whether this is the linear VAE (no hidden layer)."""
        return not self.hidden_sizes
