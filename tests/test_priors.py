"""The three prior families against direct computations (Razavi et al. 2019, §2)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, StudentT

from vaehub import (
    AR1Prior,
    DiagonalGaussian,
    StandardNormalPrior,
    VAEConfig,
    VarianceConstrainedPrior,
    kl_divergence,
    prior_from_config,
)
from vaehub.latent.priors import (
    ar1_alpha_for_committed_rate,
    ar1_committed_rate,
    constrained_committed_rate,
    std_max_for_committed_rate,
)


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def random_posterior(*shape: int, seed: int = 0) -> DiagonalGaussian:
    generator = torch.Generator().manual_seed(seed)
    mean = torch.randn(*shape, generator=generator)
    std = torch.rand(*shape, generator=generator) * 1.5 + 0.1
    return DiagonalGaussian(mean, std, event_ndims=len(shape) - 1)


def ar1_covariance(alpha: float, n: int) -> torch.Tensor:
    """Dense Σ_ij = α^|i−j|, the stationary AR(1) covariance with unit variance."""
    index = torch.arange(n)
    return torch.tensor(alpha) ** (index[:, None] - index[None, :]).abs()


# --- standard normal ---------------------------------------------------------------------


def test_standard_log_prob_matches_normal():
    prior = StandardNormalPrior(5)
    z = torch.randn(7, 5)
    expected = Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(prior.log_prob(z), expected)


def test_standard_kl_matches_closed_form_and_torch():
    prior = StandardNormalPrior(6)
    q = random_posterior(4, 6)
    mean, var = q.mean, q.std**2
    closed_form = 0.5 * (mean**2 + var - 1 - torch.log(var)).sum(-1)
    torch.testing.assert_close(kl_divergence(q, prior), closed_form)
    torch_kl = torch.distributions.kl_divergence(q.base_dist, Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(prior.kl_per_dim(q).sum(-1), torch_kl)


def test_standard_rsample_shape_and_moments():
    torch.manual_seed(0)
    samples = StandardNormalPrior(3).rsample((20000,))
    assert samples.shape == (20000, 3)
    # mean within 5 standard errors of 0, variance within 5 s.e. of 1.
    assert samples.mean(0).abs().max() < 5 / math.sqrt(20000)
    assert (samples.var(0) - 1).abs().max() < 5 * math.sqrt(2 / 20000)


def test_posterior_equal_to_prior_has_zero_kl():
    q = DiagonalGaussian(torch.zeros(3, 4), torch.ones(3, 4))
    assert torch.equal(kl_divergence(q, StandardNormalPrior(4)), torch.zeros(3))


# --- variance-constrained ----------------------------------------------------------------


def test_constrained_posterior_std_stays_in_bounds():
    prior = VarianceConstrainedPrior(4, std_min=0.05, std_max=0.6)
    q = prior.posterior(torch.zeros(3, 4), torch.tensor([-1e4, -3.0, 0.0, 1e4]).expand(3, 4))
    assert q.std.min() >= 0.05 and q.std.max() <= 0.6
    torch.testing.assert_close(q.std[0, 0], torch.tensor(0.05))
    torch.testing.assert_close(q.std[0, 3], torch.tensor(0.6))


def test_constrained_committed_rate_formula():
    std_max, d = 0.7, 8
    expected = 0.5 * d * (std_max**2 - math.log(std_max**2) - 1)
    assert VarianceConstrainedPrior(d, 1e-3, std_max).committed_rate == pytest.approx(expected)
    assert constrained_committed_rate(std_max, d) == pytest.approx(expected)


def test_constrained_kl_never_below_committed_rate():
    prior = VarianceConstrainedPrior(8, 1e-3, 0.7)
    generator = torch.Generator().manual_seed(1)
    mean = torch.randn(500, 8, generator=generator) * 0.3
    scale = torch.randn(500, 8, generator=generator) * 5
    kl = kl_divergence(prior.posterior(mean, scale), prior)
    assert (kl >= prior.committed_rate - 1e-12).all()


def test_constrained_minimum_kl_found_numerically_equals_committed_rate():
    prior = VarianceConstrainedPrior(3, 0.01, 0.5)
    # Every (μ, σ) on a grid over the family's whole range, one latent dim at a time.
    mean = torch.linspace(-1, 1, 801)
    std = torch.linspace(prior.std_min, prior.std_max, 801)
    grid = DiagonalGaussian(
        mean[:, None, None].expand(801, 801, 3), std[None, :, None].expand(801, 801, 3)
    )
    per_dim_minimum = prior.kl_per_dim(grid).flatten(0, 1).min(0).values
    assert per_dim_minimum.sum().item() == pytest.approx(prior.committed_rate, rel=1e-12)
    # Gradient descent through the posterior's own parameterisation approaches it too.
    mean = torch.full((1, 3), 0.8, requires_grad=True)
    scale = torch.zeros(1, 3, requires_grad=True)
    optimizer = torch.optim.Adam([mean, scale], lr=0.1)
    for _ in range(1000):
        optimizer.zero_grad()
        kl = kl_divergence(prior.posterior(mean, scale), prior).sum()
        kl.backward()
        optimizer.step()
    assert prior.committed_rate <= kl.item() < prior.committed_rate + 5e-3


def test_std_max_for_committed_rate_reaches_the_target():
    for rate, d in ((0.5, 32), (3.0, 4), (40.0, 2)):
        std_max = std_max_for_committed_rate(rate, d)
        assert 0 < std_max < 1
        assert constrained_committed_rate(std_max, d) == pytest.approx(rate, abs=1e-9)


# --- AR(1) -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_ar1_log_prob_matches_dense_multivariate_normal(n):
    alphas = torch.tensor([0.0, 0.5, 0.95])
    prior = AR1Prior(alphas, n)
    z = torch.randn(4, n, 3)
    expected = sum(
        MultivariateNormal(torch.zeros(n), ar1_covariance(a.item(), n)).log_prob(z[..., k])
        for k, a in enumerate(alphas)
    )
    torch.testing.assert_close(prior.log_prob(z), expected)


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_ar1_kl_matches_dense_multivariate_normal(n):
    alphas = torch.tensor([0.3, 0.9])
    prior = AR1Prior(alphas, n)
    q = random_posterior(3, n, 2, seed=n)
    dense = torch.stack(
        [
            torch.distributions.kl_divergence(
                MultivariateNormal(q.mean[..., k], torch.diag_embed(q.std[..., k] ** 2)),
                MultivariateNormal(torch.zeros(n), ar1_covariance(a.item(), n)),
            )
            for k, a in enumerate(alphas)
        ],
        dim=-1,
    )
    torch.testing.assert_close(prior.kl_per_dim(q), dense)
    torch.testing.assert_close(kl_divergence(q, prior), dense.sum(-1))


def test_ar1_with_lengths_matches_each_example_on_its_own():
    alphas = torch.tensor([0.6, 0.2])
    lengths = torch.tensor([5, 2, 1])
    prior = AR1Prior(alphas, 5, lengths)
    q = random_posterior(3, 5, 2, seed=3)
    z = torch.randn(3, 5, 2)
    kl, log_prob = kl_divergence(q, prior), prior.log_prob(z)
    for i, n in enumerate(lengths.tolist()):
        alone = AR1Prior(alphas, n)
        q_alone = DiagonalGaussian(q.mean[i, :n], q.std[i, :n], 2)
        torch.testing.assert_close(kl[i], kl_divergence(q_alone, alone))
        torch.testing.assert_close(log_prob[i], alone.log_prob(z[i, :n]))
    samples = prior.rsample((2,))
    assert samples.shape == (2, 3, 5, 2)
    assert torch.equal(samples[:, 1, 2:], torch.zeros(2, 3, 2))


def test_ar1_committed_rate_matches_spec_formula():
    alphas, n = [0.2, 0.5, 0.9], 12
    expected = 0.5 * sum((n - 2) * math.log(1 + a * a) - math.log(1 - a * a) for a in alphas)
    assert AR1Prior(torch.tensor(alphas), n).committed_rate == pytest.approx(expected)
    assert ar1_committed_rate(alphas, n) == pytest.approx(expected)


@pytest.mark.parametrize("n", [2, 6])
def test_ar1_minimum_kl_found_numerically_equals_committed_rate(n):
    prior = AR1Prior(torch.tensor([0.4, 0.8]), n)
    mean = torch.randn(1, n, 2).requires_grad_()
    log_std = torch.zeros(1, n, 2, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [mean, log_std],
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        kl = kl_divergence(DiagonalGaussian(mean, log_std.exp(), 2), prior).sum()
        kl.backward()
        return kl

    optimizer.step(closure)
    minimum = closure().item()
    assert minimum == pytest.approx(prior.committed_rate, abs=1e-8)


def test_ar1_kl_never_below_committed_rate():
    prior = AR1Prior(torch.tensor([0.5, 0.7, 0.95]), 10)
    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        mean = torch.randn(200, 10, 3, generator=generator) * 0.5
        std = torch.rand(200, 10, 3, generator=generator) * 2 + 1e-3
        assert (
            kl_divergence(DiagonalGaussian(mean, std, 2), prior) >= prior.committed_rate - 1e-9
        ).all()


@pytest.mark.parametrize("spread", ["shared", "linear"])
@pytest.mark.parametrize("rate", [0.1, 5.0, 100.0])
def test_ar1_alpha_for_committed_rate_reaches_the_target(rate, spread):
    alphas = ar1_alpha_for_committed_rate(rate, 16, 64, spread)
    assert len(alphas) == 16 and all(0 <= a < 1 for a in alphas)
    assert abs(ar1_committed_rate(alphas, 64) - rate) < 1e-6
    if spread == "linear":
        assert alphas == sorted(alphas) and alphas[0] < alphas[-1]
    else:
        assert len(set(alphas)) == 1


def test_ar1_alpha_for_unreachable_rate_says_so():
    with pytest.raises(ValueError, match="spread='shared'"):
        ar1_alpha_for_committed_rate(300.0, 16, 64, "linear")
    assert abs(ar1_committed_rate(ar1_alpha_for_committed_rate(300.0, 16, 64), 64) - 300) < 1e-6


def test_ar1_samples_have_the_stated_autocorrelation():
    torch.manual_seed(0)
    alphas = torch.tensor([0.0, 0.5, 0.9])
    n, samples = 40, 20000
    z = AR1Prior(alphas, n).rsample((samples,))
    for lag in (1, 3):
        # Each sample's lag-k product averaged over its positions: iid across samples, so
        # the CLT gives the standard error; 5 s.e. fails by chance with p < 1e-6, while a
        # wrong α (0.8 for 0.9) misses by more than 40 s.e.
        per_sample = (z[:, lag:] * z[:, :-lag]).mean(1)
        estimate = per_sample.mean(0)
        standard_error = per_sample.std(0) / math.sqrt(samples)
        assert ((estimate - alphas**lag).abs() < 5 * standard_error + 1e-12).all(), (
            lag,
            estimate,
            alphas**lag,
            standard_error,
        )
    per_sample_var = z.pow(2).mean(1)
    assert (
        (per_sample_var.mean(0) - 1).abs() < 5 * per_sample_var.std(0) / math.sqrt(samples)
    ).all()


def test_ar1_costs_linear_time_and_memory():
    # A dense covariance over 200,000 positions would need 320 GB; this must be instant.
    n = 200_000
    prior = AR1Prior(torch.tensor([0.9, 0.5]), n)
    q = DiagonalGaussian(torch.zeros(1, n, 2), torch.ones(1, n, 2), 2)
    kl = kl_divergence(q, prior)
    expected = 0.5 * sum(
        (n - 1) * (a * a / (1 - a * a)) * 2 + (n - 1) * math.log(1 - a * a) for a in (0.9, 0.5)
    )
    # μ = 0, σ = 1: KL = ½[tr(Λ) − n + ln det Σ_p], tr(Λ) = n + 2(n − 1)α²/(1 − α²).
    assert kl.item() == pytest.approx(expected, rel=1e-9)
    assert prior.log_prob(torch.zeros(1, n, 2)).shape == (1,)


def test_ar1_rejects_alpha_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        AR1Prior(torch.tensor([0.5, 1.0]), 4)


# --- fallbacks and configs ---------------------------------------------------------------


def test_kl_falls_back_to_monte_carlo_without_closed_form():
    q = DiagonalGaussian(torch.zeros(2, 3), torch.ones(2, 3))
    p = Independent(StudentT(3.0, torch.zeros(3), torch.ones(3)), 1)
    z = q.rsample()
    torch.testing.assert_close(kl_divergence(q, p, z), q.log_prob(z) - p.log_prob(z))
    with pytest.raises(ValueError, match="pass a sample z"):
        kl_divergence(q, p)


def test_prior_from_config_builds_each_family():
    assert isinstance(prior_from_config(VAEConfig(latent_size=4)), StandardNormalPrior)
    constrained = prior_from_config(
        VAEConfig(latent_size=4, prior="constrained", committed_rate=2.0)
    )
    assert isinstance(constrained, VarianceConstrainedPrior)
    assert constrained.committed_rate == pytest.approx(2.0, abs=1e-9)
    config = VAEConfig(latent_size=4, prior="ar1", committed_rate=3.0, latent_length=20)
    ar1 = prior_from_config(config)
    assert isinstance(ar1, AR1Prior) and ar1.event_shape == (20, 4)
    assert ar1.committed_rate == pytest.approx(3.0, abs=1e-6)
