"""The collapse metrics on cases with known answers (He et al. 2019's protocol).

The linear-Gaussian VAE below is a complete model in its own right — p(z) = N(0, I),
p(x|z) = N(Wz + b, σ²I) — whose marginal log p(x) = log N(x; b, WWᵀ + σ²I) is exact, and
whose posterior is known in closed form: the metrics meet it through the same three
pieces (`encode`, `prior`, `log_likelihood`) as the text VAE.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal, Normal

from vaehub import DiagonalGaussian, StandardNormalPrior
from vaehub.data.batching import iterate_batches
from vaehub.evaluation.metrics import (
    active_unit_variance,
    bits_per_dim,
    collapsed,
    evaluate_vae,
    importance_weighted_log_likelihood,
    mutual_information_terms,
    perplexity,
)


class LinearGaussianVAE(nn.Module):
    """p(z) = N(0, I_d), p(x|z) = N(Wz + b, σ²I_D), with a diagonal Gaussian q(z|x).

    `posterior="exact"`: q is the exact posterior's mean with the diagonal of its
    covariance (exact itself when W has orthogonal columns); `"prior"`: q(z|x) = p(z).
    """

    nll_unit = "dim"

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor, noise_std: float, posterior: str = "exact"
    ) -> None:
        super().__init__()
        self.weight, self.bias, self.noise_std, self.kind = weight, bias, noise_std, posterior
        d = weight.shape[1]
        precision = torch.eye(d, dtype=weight.dtype) + weight.T @ weight / noise_std**2
        self.posterior_covariance = torch.linalg.inv(precision)

    @property
    def prior(self) -> StandardNormalPrior:
        return StandardNormalPrior(self.weight.shape[1], dtype=self.weight.dtype)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        if self.kind == "prior":
            return DiagonalGaussian(
                torch.zeros(x.shape[0], self.weight.shape[1], dtype=x.dtype),
                torch.ones(x.shape[0], self.weight.shape[1], dtype=x.dtype),
            )
        mean = (x - self.bias) @ self.weight @ self.posterior_covariance / self.noise_std**2
        std = self.posterior_covariance.diagonal().sqrt().expand_as(mean)
        return DiagonalGaussian(mean, std)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return Normal(z @ self.weight.T + self.bias, self.noise_std).log_prob(x).sum(-1)

    def units_per_example(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), x.shape[1])

    def exact_log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        covariance = self.weight @ self.weight.T + self.noise_std**2 * torch.eye(
            self.weight.shape[0], dtype=x.dtype
        )
        return MultivariateNormal(self.bias, covariance).log_prob(x)

    def sample_data(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.weight.shape[1], generator=generator, dtype=self.weight.dtype)
        noise = torch.randn(n, self.weight.shape[0], generator=generator, dtype=self.weight.dtype)
        return z @ self.weight.T + self.bias + self.noise_std * noise


def make_model(orthogonal: bool, posterior: str = "exact", seed: int = 0) -> LinearGaussianVAE:
    generator = torch.Generator().manual_seed(seed)
    d, big_d, noise_std = 3, 6, 0.5
    weight = torch.randn(big_d, d, generator=generator, dtype=torch.float64)
    if orthogonal:
        # Columns of squared norms σ²·(4, 1, 0.001): a_k = |w_k|²/σ² = 4, 1, 0.001.
        q, _ = torch.linalg.qr(weight)
        weight = q * (noise_std * torch.tensor([2.0, 1.0, 0.001**0.5], dtype=torch.float64))
    bias = torch.randn(big_d, generator=generator, dtype=torch.float64)
    return LinearGaussianVAE(weight, bias, noise_std, posterior)


def batches_of(x: torch.Tensor, size: int):
    return [{"x": x[i : i + size]} for i in range(0, len(x), size)]


def test_iw_nll_is_exact_when_q_is_the_true_posterior():
    model = make_model(orthogonal=True)
    x = model.sample_data(20, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    estimate = importance_weighted_log_likelihood(model, {"x": x}, num_samples=3)
    torch.testing.assert_close(estimate, model.exact_log_marginal(x), rtol=1e-10, atol=1e-10)


def test_iw_nll_approaches_the_exact_log_likelihood_as_k_grows():
    model = make_model(orthogonal=False)
    x = model.sample_data(256, torch.Generator().manual_seed(1))
    exact = model.exact_log_marginal(x)
    torch.manual_seed(0)
    gaps = []
    for k in (1, 10, 100, 3000):
        estimate = importance_weighted_log_likelihood(model, {"x": x}, num_samples=k)
        gaps.append((exact - estimate).mean().item())
    # A lower bound in expectation that tightens with K, reaching the exact value; beyond
    # K = 10 the remaining gap is below the Monte Carlo noise of 256 examples.
    assert gaps[0] > 0.1
    assert abs(gaps[1]) < gaps[0] / 5
    assert all(abs(gap) < 0.01 for gap in gaps[1:]), gaps


def test_iw_nll_chunks_cover_every_sample():
    model = make_model(orthogonal=False)
    x = model.sample_data(32, torch.Generator().manual_seed(2))
    exact = model.exact_log_marginal(x).mean().item()
    estimates = []
    for max_units in (6, 6 * 32 * 7, 10**9):  # one sample per pass, 7, all at once
        torch.manual_seed(0)
        estimate = importance_weighted_log_likelihood(model, {"x": x}, 2000, max_units)
        estimates.append(estimate.mean().item())
    assert all(abs(e - exact) < 0.01 for e in estimates), (estimates, exact)


def test_posterior_equal_to_the_prior_gives_zero_kl_mi_and_active_units():
    model = make_model(orthogonal=False, posterior="prior")
    x = model.sample_data(300, torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    results = evaluate_vae(model, batches_of(x, 50))
    assert results["kl"] == 0.0
    assert results["mi"] == pytest.approx(0.0, abs=1e-12)
    assert results["active_units"] == 0
    assert results["au_variance"] == [0.0, 0.0, 0.0]


def test_kl_mi_and_active_units_against_their_analytic_values():
    model = make_model(orthogonal=True)
    x = model.sample_data(4000, torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    results = evaluate_vae(model, batches_of(x, 1000))
    a = torch.tensor([4.0, 1.0, 0.001], dtype=torch.float64)
    # Exact posterior: the aggregate posterior is the prior, so MI = E_x KL = ½ Σ ln(1 + a_k).
    analytic = 0.5 * torch.log1p(a).sum().item()
    assert results["kl"] == pytest.approx(analytic, abs=0.03)
    assert results["mi"] == pytest.approx(analytic, abs=0.08)
    # Var_x of the posterior mean of dim k is a_k / (1 + a_k): 0.8, 0.5, 0.000999.
    torch.testing.assert_close(
        torch.tensor(results["au_variance"], dtype=torch.float64), a / (1 + a), rtol=0.1, atol=1e-4
    )
    assert results["active_units"] == 2


def test_mutual_information_estimator_on_one_batch_by_hand():
    posterior = DiagonalGaussian(
        torch.tensor([[0.0], [3.0]], dtype=torch.float64),
        torch.tensor([[1.0], [1.0]], dtype=torch.float64),
    )
    torch.manual_seed(0)
    log_conditional, log_aggregate = mutual_information_terms(posterior)
    torch.manual_seed(0)
    z = posterior.sample()[:, 0]
    own = (Normal(0.0, 1.0).log_prob(z[0]) + Normal(3.0, 1.0).log_prob(z[1])) / 2
    aggregate = torch.stack(
        [
            torch.logsumexp(
                torch.stack([Normal(0.0, 1.0).log_prob(z[i]), Normal(3.0, 1.0).log_prob(z[i])]), 0
            )
            - math.log(2)
            for i in range(2)
        ]
    ).mean()
    assert log_conditional.item() == pytest.approx(own.item())
    assert log_aggregate.item() == pytest.approx(aggregate.item())


def test_active_unit_variance_and_unit_conversions():
    means = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 1.0], [0.0, -1.0]])
    torch.testing.assert_close(
        active_unit_variance(means), torch.tensor([0.0, 4 / 3], dtype=torch.float64)
    )
    assert perplexity(2 * math.log(10), 2) == pytest.approx(10.0)
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 examples"):
        active_unit_variance(means[:1])
    with pytest.raises(ValueError, match="positive token count"):
        perplexity(1.0, 0)
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        importance_weighted_log_likelihood(make_model(True), {"x": torch.zeros(1, 6)}, 0)


def test_bits_per_dim_reported_for_pixel_models():
    model = make_model(orthogonal=True)
    x = model.sample_data(40, torch.Generator().manual_seed(5))
    results = evaluate_vae(model, batches_of(x, 20), iw_samples=5)
    assert results["bits_per_dim"] == pytest.approx(results["nll"] / (6 * math.log(2)))
    exact = -model.exact_log_marginal(x).mean().item()
    assert results["nll"] == pytest.approx(exact, abs=1e-8)


def test_text_vae_metrics_are_consistent(trained_ptb_model, ptb_slice):
    model = trained_ptb_model
    data = ptb_slice["data"]["validation"].select(range(64))
    torch.manual_seed(0)
    results = evaluate_vae(
        model, iterate_batches(data, 32, model.config.pad_token_id), iw_samples=20, max_units=2000
    )
    # The importance-weighted bound is tighter than the ELBO.
    assert results["nll"] < results["neg_elbo"]
    tokens = sum(length - 1 for length in data["length"])
    assert results["ppl"] == pytest.approx(math.exp(results["nll"] * 64 / tokens))
    assert len(results["kl_per_dim"]) == model.config.latent_size
    assert sum(results["kl_per_dim"]) == pytest.approx(results["kl"])
    assert 0 <= results["active_units"] <= model.config.latent_size
    assert results["mi"] > 0.5
    assert model.training is False


def test_encoder_only_pass_gives_the_same_kl_mi_and_active_units(trained_ptb_model, ptb_slice):
    """`reconstruction=False` runs no decoder (a forward hook on it never fires) and gives
    the values of the full pass, drawn from the same random numbers."""
    model = trained_ptb_model
    data = ptb_slice["data"]["validation"].select(range(96))
    torch.manual_seed(0)
    full = evaluate_vae(model, iterate_batches(data, 32, model.config.pad_token_id))
    calls = []
    hook = model.decoder.lstm.register_forward_hook(lambda *args: calls.append(1))
    try:
        torch.manual_seed(0)
        encoder_only = evaluate_vae(
            model, iterate_batches(data, 32, model.config.pad_token_id), reconstruction=False
        )
    finally:
        hook.remove()
    assert not calls and "reconstruction" not in encoder_only and "neg_elbo" not in encoder_only
    for key in ("kl", "mi", "active_units", "au_variance", "kl_per_dim"):
        assert encoder_only[key] == pytest.approx(full[key], rel=1e-6), key


def test_evaluation_shows_progress_with_a_total_and_a_rate(trained_ptb_model, ptb_slice, capsys):
    model = trained_ptb_model
    data = ptb_slice["data"]["validation"].select(range(48))
    batches = iterate_batches(data, 16, model.config.pad_token_id)
    evaluate_vae(model, batches, iw_samples=2, show_progress=True, total=len(data))
    bar = capsys.readouterr().err
    assert "evaluating (IW-NLL, K=2)" in bar and "/48 [" in bar and "sentence/s" in bar
    evaluate_vae(model, iterate_batches(data, 16, model.config.pad_token_id))
    assert capsys.readouterr().err == ""  # off unless asked for


@pytest.mark.parametrize(
    ("kl", "mi", "active_units", "rate", "expected"),
    [
        (0.05, 0.05, 3, 0.0, True),  # KL and MI both under 0.1 nats
        (5.0, 0.01, 0, 0.0, True),  # free bits' KL with no unit moving: collapsed all the same
        (0.05, 0.2, 1, 0.0, False),  # the MI says x is in z
        (2.05, 0.0, 1, 2.0, True),  # a δ-VAE holding only its committed rate
        (2.5, 0.0, 1, 2.0, False),  # 0.5 nats above the rate
    ],
)
def test_the_one_collapse_rule(kl, mi, active_units, rate, expected):
    results = {"kl": kl, "mi": mi, "active_units": active_units}
    assert collapsed(results, rate) is expected
