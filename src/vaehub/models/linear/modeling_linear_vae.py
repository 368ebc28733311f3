"""The linear VAE of Lucas, Tucker, Grosse and Norouzi (2019, §4), and the deep VAE with
the same Gaussian decoder that their collapse experiments compare it with.

    linear (hidden_sizes = []):
        q(z|x) = N(V(x − μ), diag(d))      d learned per latent dimension, input-independent
        p(x|z) = N(Wz + μ, σ²I)            the probabilistic PCA decoder (`ppca`)
    deep (hidden_sizes = [h₁, …]):
        q(z|x) = N(m(x), diag(s²(x)))     an MLP encoder
        p(x|z) = N(f(z), σ²I)              an MLP decoder, the same isotropic noise

p(z) = N(0, I) in both. σ² is fixed at `config.observation_variance` or learned. The
linear model's ELBO is closed form and is what it trains on; its marginal likelihood
log p(x) is exact (`log_marginal`), and its global optimum is the pPCA maximum-likelihood
solution (`from_ppca`, `set_ppca_solution`), where the ELBO equals log p(x).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from transformers import initialization as init

from vaehub.latent.kl import latent_kl
from vaehub.latent.posterior_head import PosteriorHead
from vaehub.latent.posteriors import PosteriorParameters
from vaehub.latent.priors import LatentPrior, prior_from_config
from vaehub.models.linear import ppca
from vaehub.models.linear.configuration_linear_vae import LinearVAEConfig
from vaehub.models.modeling_utils import VAEPreTrainedModel
from vaehub.models.outputs import LatentOutput

LOG_2PI = math.log(2 * math.pi)


@dataclass
class LinearVAEOutput(LatentOutput):
    """The ELBO's parts for a batch of vectors (`LatentOutput`'s fields: `reconstruction_nll`
    is −E_q[log p(x|z)], in closed form for the linear VAE and at one z ~ q (or the `z`
    given) for the deep one; `kl` against N(0, I)), and:

    Attributes:
        reconstruction_mean: `(batch, input_size)` the decoder's mean f(·) at the posterior
            mean (linear VAE, closed form) or at `z`.
    """

    reconstruction_mean: Tensor | None = None


class LinearEncoder(nn.Module):
    """q(z|x) = N(V(x − μ), diag(d)): `projection` is V `(k, D)`, `log_variance` log d `(k,)`."""

    def __init__(self, config: LinearVAEConfig) -> None:
        super().__init__()
        self.projection = nn.Linear(config.input_size, config.latent_size, bias=False)
        self.log_variance = nn.Parameter(torch.zeros(config.latent_size))

    def forward(self, centred: Tensor) -> tuple[Tensor, Tensor]:
        """`(batch, D)` x − μ → mean and log-variance `(batch, k)`."""
        mean = self.projection(centred)
        return mean, self.log_variance.expand_as(mean)


class LinearDecoder(nn.Linear):
    """p(x|z)'s mean Wz + μ: `weight` is W `(D, k)`, `bias` is μ `(D,)`."""


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """q(z|x) = N(m(x), diag(s²(x))) from an MLP D → h₁ → … → 2k."""

    def __init__(self, config: LinearVAEConfig) -> None:
        super().__init__()
        self.network = _mlp([config.input_size, *config.hidden_sizes, 2 * config.latent_size])

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """`(batch, D)` → mean and log-variance `(batch, k)`."""
        mean, log_variance = self.network(inputs).chunk(2, dim=-1)
        return mean, log_variance


class LinearVAEPreTrainedModel(VAEPreTrainedModel):
    config_class = LinearVAEConfig
    base_model_prefix = "linear_vae"
    main_input_name = "inputs"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # transformers' init functions leave weights loaded from a checkpoint alone.
        if isinstance(module, LinearDecoder):
            # Columns of W of norm ≈ 1 whatever D and k: fan-in initialisation (fan-in k)
            # would start ‖w_j‖² near D/(3k), far above the data's eigenvalues, and the
            # directions that should collapse would take long to shrink.
            init.normal_(module.weight, std=1 / math.sqrt(module.weight.shape[0]))
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight.shape[1])
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, LinearEncoder):
            init.zeros_(module.log_variance)
        elif isinstance(module, LinearVAEModel):
            init.constant_(
                module.log_observation_variance, math.log(self.config.observation_variance)
            )


class LinearVAEModel(LinearVAEPreTrainedModel):
    """Lucas et al.'s linear VAE (`hidden_sizes=[]`), or a deep VAE with the same decoder
    noise N(f(z), σ²I).

    Batches are `{"inputs": (batch, input_size)}` floats (`VectorCollator`). Training the
    linear VAE uses its closed-form ELBO: E_q[log p(x|z)] =
    −½[D log 2πσ² + (‖x − W m − μ‖² + Σ_j d_j ‖w_j‖²)/σ²], taken analytically rather than
    at a sample of q, so its gradients carry no Monte Carlo noise. The deep VAE's
    reconstruction term is at one reparameterised sample.
    """

    # A density of continuous data: its NLL is in nats per example. Bits/dim would read
    # as a compression rate, which a density of real values is not (it changes with the
    # data's scale, and can be negative).
    nll_unit = "example"
    output_class = LinearVAEOutput

    def __init__(self, config: LinearVAEConfig) -> None:
        super().__init__(config)
        if config.is_linear:
            self.encoder: nn.Module = LinearEncoder(config)
            self.decoder = LinearDecoder(config.latent_size, config.input_size)
        else:
            self.encoder = MLPEncoder(config)
            self.decoder = _mlp([config.latent_size, *reversed(config.hidden_sizes)]
                                + [config.input_size])  # fmt: skip
        self.posterior_head = PosteriorHead(config, 0)
        self.log_observation_variance = nn.Parameter(
            torch.tensor(math.log(config.observation_variance)),
            requires_grad=config.learn_observation_variance,
        )
        self.post_init()

    # --- parameters in the paper's terms ---------------------------------------------

    def _linear_only(self, what: str) -> None:
        if not self.config.is_linear:
            raise ValueError(
                f"{what} exists for the linear VAE only (hidden_sizes=[]); this model has "
                f"hidden_sizes={self.config.hidden_sizes}."
            )

    @property
    def decoder_weight(self) -> Tensor:
        """W `(input_size, latent_size)` of the linear decoder."""
        self._linear_only("decoder_weight")
        return self.decoder.weight

    @property
    def data_mean(self) -> Tensor:
        """μ `(input_size,)`, the linear decoder's offset and the encoder's centre."""
        self._linear_only("data_mean")
        return self.decoder.bias

    @property
    def observation_variance(self) -> Tensor:
        """σ² as a 0-d tensor."""
        return self.log_observation_variance.exp()

    # --- the three pieces every objective and metric uses -----------------------------

    @property
    def prior(self) -> LatentPrior:
        """p(z) = N(0, I_k)."""
        weight = self.log_observation_variance
        return prior_from_config(self.config, device=weight.device, dtype=weight.dtype)

    def encode(self, inputs: Tensor, **unused: Any) -> Any:
        """q(z|x), a `DiagonalGaussian` over `(batch, latent_size)`, for `(batch, D)` inputs."""
        return self.posterior_from(self.posterior_parameters(inputs))

    def posterior_parameters(self, inputs: Tensor, **unused: Any) -> PosteriorParameters:
        """λ = (mean, log-variance), each `(batch, latent_size)`, for `(batch, D)` inputs."""
        x = self._check_inputs(inputs)
        if self.config.is_linear:
            return PosteriorParameters(*self.encoder(x - self.data_mean))
        return PosteriorParameters(*self.encoder(x))

    def decoder_mean(self, z: Tensor) -> Tensor:
        """f(z) `(*lead, D)` for latents `(*lead, latent_size)`: Wz + μ, or the MLP's."""
        return self.decoder(z)

    def log_likelihood(self, inputs: Tensor, z: Tensor, **unused: Any) -> Tensor:
        """log N(x; f(z), σ²I) in nats.

        Args:
            inputs: `(batch, D)`.
            z: `(batch, latent_size)` or `(samples, batch, latent_size)`.
        Returns:
            `(batch,)` or `(samples, batch)`.
        """
        x = self._check_inputs(inputs)
        squared = (x - self.decoder_mean(z.to(x.dtype))).pow(2).sum(-1)
        return self._gaussian_log_likelihood(squared)

    def _gaussian_log_likelihood(self, squared_error: Tensor) -> Tensor:
        D, log_s2 = self.config.input_size, self.log_observation_variance
        return -0.5 * (D * (LOG_2PI + log_s2) + squared_error / log_s2.exp())

    def units_per_example(self, inputs: Tensor, **unused: Any) -> Tensor:
        """D, the dimensions of each example: `(batch,)`."""
        return torch.full((inputs.shape[0],), self.config.input_size, device=inputs.device)

    # --- forward ----------------------------------------------------------------------

    def forward(
        self,
        inputs: Tensor,
        z: Tensor | None = None,
        posterior_parameters: PosteriorParameters | None = None,
        **kwargs: Any,
    ) -> LinearVAEOutput:
        """The ELBO's parts for a batch.

        Args:
            inputs: `(batch, input_size)` observations.
            z: `(batch, latent_size)` a latent to decode instead of a sample of q(z|x)
                (the reconstruction term is then log p(x|z) at it, not its expectation).
            posterior_parameters: λ to use instead of the encoder's (SVI refinement).
        """
        batch = self.checked_batch(inputs)
        if posterior_parameters is None:
            posterior_parameters = self.posterior_parameters(**batch)
        return self.elbo_terms(batch, posterior_parameters, z)

    def checked_batch(self, inputs: Tensor, **unused: Any) -> dict[str, Tensor]:
        """The batch as the model's methods take it: `inputs`, checked."""
        return {"inputs": self._check_inputs(inputs)}

    def elbo_terms(
        self,
        batch: dict[str, Tensor],
        parameters: PosteriorParameters,
        z: Tensor | None = None,
        keep_logits: bool = True,
    ) -> LinearVAEOutput:
        """The ELBO's parts. The KL is closed form; E_q[log p(x|z)] is closed form for the
        linear VAE (see the class docstring), and log p(x|z) at one z ~ q for the deep one
        or at the `z` given."""
        x = batch["inputs"]
        posterior = self.posterior_from(parameters)
        kl, kl_per_dim = latent_kl(posterior, self.prior)
        if z is None and self.config.is_linear:
            z = posterior.rsample()
            reconstruction = self.decoder_mean(posterior.mean)
            variance = posterior.std.pow(2)
            spread = (variance * self.decoder_weight.pow(2).sum(0)).sum(-1)  # Σ_j d_j ‖w_j‖²
            nll = -self._gaussian_log_likelihood((x - reconstruction).pow(2).sum(-1) + spread)
        else:
            z = self.latent_for(posterior, z)
            reconstruction = self.decoder_mean(z)
            nll = -self._gaussian_log_likelihood((x - reconstruction).pow(2).sum(-1))
        return LinearVAEOutput(
            loss=(nll + kl).mean(),
            reconstruction_nll=nll,
            kl=kl,
            kl_per_dim=kl_per_dim,
            reconstruction_mean=reconstruction,
            z=z,
            posterior_mean=posterior.mean,
            posterior_std=posterior.std,
        )

    # --- exact likelihood and the pPCA optimum (linear VAE) ---------------------------

    def elbo(self, inputs: Tensor) -> Tensor:
        """The closed-form ELBO `(batch,)` in nats of the linear VAE (a sampled one for the
        deep VAE)."""
        output = self(inputs)
        return -(output.reconstruction_nll + output.kl)

    @property
    def has_exact_marginal(self) -> bool:
        """Whether `log_marginal` is exact: the linear VAE's is, the deep VAE has none."""
        return self.config.is_linear

    def log_marginal(self, inputs: Tensor) -> Tensor:
        """Exact log p(x) = log N(x; μ, WWᵀ + σ²I) `(batch,)` of the linear VAE
        (`vaehub.models.linear.ppca.ppca_log_marginal`)."""
        self._linear_only("log_marginal (the exact log p(x))")
        x = self._check_inputs(inputs)
        return ppca.ppca_log_marginal(
            x, self.decoder_weight, self.data_mean, self.observation_variance
        )

    @torch.no_grad()
    def set_optimal_encoder(self) -> None:
        """The encoder that maximises the ELBO for the current decoder.

        With M = WᵀW + σ²I the true posterior is N(M⁻¹Wᵀ(x − μ), σ²M⁻¹); the best
        diagonal q(z|x) = N(V(x − μ), diag(d)) has its mean, V = M⁻¹Wᵀ, and
        d_j = σ²/M_jj. It is the true posterior (ELBO = log p(x)) when M is diagonal,
        i.e. when W's columns are orthogonal.
        """
        self._linear_only("set_optimal_encoder")
        W, s2 = self.decoder_weight, self.observation_variance
        M = W.T @ W + s2 * torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
        self.encoder.projection.weight.copy_(torch.linalg.solve(M, W.T))
        self.encoder.log_variance.copy_(torch.log(s2 / torch.diagonal(M)))

    @torch.no_grad()
    def set_ppca_solution(
        self, weight: Tensor, mean: Tensor, observation_variance: float | None = None
    ) -> None:
        """Put a pPCA solution in the decoder and the optimal encoder for it in the encoder.

        Args:
            weight: `(input_size, latent_size)` W.
            mean: `(input_size,)` μ.
            observation_variance: σ²; `None` keeps the model's. With σ² fixed by the config
                (`learn_observation_variance=False`) it must equal the config's value.
        """
        self._linear_only("set_ppca_solution")
        D, k = self.config.input_size, self.config.latent_size
        if not isinstance(weight, Tensor) or tuple(weight.shape) != (D, k):
            raise ValueError(
                f"weight must have shape ({D}, {k}), got {getattr(weight, 'shape', weight)!r}."
            )
        if not isinstance(mean, Tensor) or tuple(mean.shape) != (D,):
            raise ValueError(f"mean must have shape ({D},), got {getattr(mean, 'shape', mean)!r}.")
        if observation_variance is not None:
            fixed = self.config.observation_variance
            if not self.config.learn_observation_variance and not math.isclose(
                observation_variance, fixed, rel_tol=1e-9
            ):
                raise ValueError(
                    f"observation_variance={observation_variance!r} differs from the fixed "
                    f"config value {fixed!r}; use learn_observation_variance=True to set another."
                )
            if not observation_variance > 0:
                raise ValueError(f"observation_variance must be > 0, got {observation_variance!r}.")
            self.log_observation_variance.fill_(math.log(observation_variance))
        self.decoder.weight.copy_(weight)
        self.decoder.bias.copy_(mean)
        self.set_optimal_encoder()

    @classmethod
    def from_ppca(cls, inputs: Tensor, config: LinearVAEConfig) -> LinearVAEModel:
        """A linear VAE at its global optimum on `inputs` `(n, input_size)`: the pPCA
        maximum-likelihood decoder (σ² the config's when fixed, the ML value when learned)
        and its optimal encoder. Built in `inputs`' floating dtype."""
        if not isinstance(config, LinearVAEConfig) or not config.is_linear:
            raise ValueError("from_ppca needs a LinearVAEConfig with hidden_sizes=[].")
        sigma2 = None if config.learn_observation_variance else config.observation_variance
        solution = ppca.ppca_mle(inputs, config.latent_size, sigma2)
        model = cls(config).to(inputs.dtype)
        model.set_ppca_solution(solution.weight, solution.mean, solution.sigma2)
        return model

    # --- inputs -----------------------------------------------------------------------

    def _check_inputs(self, inputs: Any) -> Tensor:
        D = self.config.input_size
        if not isinstance(inputs, Tensor):
            raise ValueError(f"inputs must be a tensor, got {type(inputs).__name__}.")
        if inputs.dim() != 2 or inputs.shape[1] != D:
            raise ValueError(f"inputs must have shape (batch, {D}), got {tuple(inputs.shape)}.")
        if inputs.shape[0] == 0:
            raise ValueError("inputs holds no example.")
        if not inputs.is_floating_point() or not torch.isfinite(inputs).all():
            raise ValueError("inputs must be finite floating-point values.")
        weight = self.log_observation_variance
        return inputs.to(device=weight.device, dtype=weight.dtype)


class VectorCollator:
    """Stacks the `inputs` rows of a dataset (each `(D,)`, or any shape, flattened) into
    `{"inputs": (batch, D)}` float32."""

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        if not rows:
            raise ValueError("cannot collate an empty batch.")
        if "inputs" not in rows[0]:
            raise ValueError(f"rows must have an 'inputs' column, got {sorted(rows[0])}.")
        stacked = np.stack(
            [np.asarray(row["inputs"], dtype=np.float32).reshape(-1) for row in rows]
        )
        return {"inputs": torch.from_numpy(stacked)}
