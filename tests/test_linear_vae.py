"""Probabilistic PCA and the linear VAE of Lucas et al. 2019 (§4) against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from torch.distributions import MultivariateNormal

from vaehub.evaluation.metrics import (
    evaluate_vae,
    importance_weighted_log_likelihood,
    log_importance_weights,
)
from vaehub.models.linear.modeling_linear_vae import LinearVAEConfig, LinearVAEModel, VectorCollator
from vaehub.models.linear.ppca import (
    collapsed_dimensions_expected,
    ppca_log_marginal,
    ppca_mle,
    ppca_mle_from_covariance,
)
from vaehub.training.arguments import VAETrainingArguments
from vaehub.training.trainer import VAETrainer

D, K = 7, 3


def gaussian_data(n: int, spectrum: list[float], seed: int = 0) -> torch.Tensor:
    """`(n, len(spectrum))` float64 rows of N(m, U diag(spectrum) Uᵀ), U a random rotation."""
    generator = torch.Generator().manual_seed(seed)
    size = len(spectrum)
    rotation, _ = torch.linalg.qr(torch.randn(size, size, generator=generator, dtype=torch.float64))
    scales = torch.tensor(spectrum, dtype=torch.float64).sqrt()
    noise = torch.randn(n, size, generator=generator, dtype=torch.float64)
    offset = torch.randn(size, generator=generator, dtype=torch.float64)
    return noise * scales @ rotation.T + offset


def random_model(seed: int, orthogonal: bool = False, **overrides) -> LinearVAEModel:
    """A float64 linear VAE with every parameter random (encoder included)."""
    torch.manual_seed(seed)
    config = LinearVAEConfig(
        **{"input_size": D, "latent_size": K, "learn_observation_variance": True, **overrides}
    )
    model = LinearVAEModel(config).double().eval()
    with torch.no_grad():
        weight = torch.randn(D, K, dtype=torch.float64)
        if orthogonal:
            weight = torch.linalg.qr(weight)[0] * torch.tensor([2.0, 1.5, 0.7])
        model.decoder.weight.copy_(weight)
        model.decoder.bias.normal_()
        model.log_observation_variance.fill_(math.log(0.3 + seed % 3))
        model.encoder.projection.weight.normal_(0, 0.3)
        model.encoder.log_variance.normal_(0, 0.5)
    return model


# --- pPCA ---------------------------------------------------------------------------------


def test_log_marginal_matches_the_dense_multivariate_normal():
    torch.manual_seed(0)
    W = torch.randn(D, K, dtype=torch.float64, requires_grad=True)
    mu = torch.randn(D, dtype=torch.float64)
    x = torch.randn(2, 5, D, dtype=torch.float64) * 2
    sigma2 = 0.37
    dense = MultivariateNormal(mu, W @ W.T + sigma2 * torch.eye(D, dtype=torch.float64))
    expected = dense.log_prob(x)
    got = ppca_log_marginal(x, W, mu, sigma2)
    assert got.shape == (2, 5)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    # The gradient in W too: training through it must see the same surface.
    (grad_fast,) = torch.autograd.grad(got.sum(), W)
    (grad_dense,) = torch.autograd.grad(expected.sum(), W)
    torch.testing.assert_close(grad_fast, grad_dense, rtol=1e-9, atol=1e-9)


def test_log_marginal_refuses_bad_shapes_and_variances():
    W, mu, x = torch.zeros(D, K), torch.zeros(D), torch.zeros(4, D)
    with pytest.raises(ValueError, match="columns"):
        ppca_log_marginal(torch.zeros(4, D + 1), W, mu, 1.0)
    with pytest.raises(ValueError, match="mu"):
        ppca_log_marginal(x, W, torch.zeros(D + 1), 1.0)
    with pytest.raises(ValueError, match="W"):
        ppca_log_marginal(x, torch.zeros(D), mu, 1.0)
    for sigma2 in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="sigma2"):
            ppca_log_marginal(x, W, mu, sigma2)


def test_ppca_mle_matches_numpy_eigendecomposition():
    x = gaussian_data(400, [5.0, 3.0, 2.0, 0.5, 0.4, 0.3, 0.2])
    solution = ppca_mle(x, K)
    array = x.numpy()
    values, vectors = np.linalg.eigh(np.cov(array, rowvar=False, bias=True))
    values, vectors = values[::-1], vectors[:, ::-1]
    sigma2 = values[K:].mean()
    assert solution.sigma2 == pytest.approx(sigma2, rel=1e-10)
    np.testing.assert_allclose(solution.eigenvalues.numpy(), values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(solution.mean.numpy(), array.mean(0), rtol=1e-12)
    # Eigenvectors have arbitrary signs; W Wᵀ does not.
    expected_weight = vectors[:, :K] * np.sqrt(values[:K] - sigma2)
    np.testing.assert_allclose(
        (solution.weight @ solution.weight.T).numpy(),
        expected_weight @ expected_weight.T,
        atol=1e-10,
    )
    # Tipping & Bishop's columns are orthogonal, with ‖w_i‖² = λ_i − σ².
    gram = (solution.weight.T @ solution.weight).numpy()
    np.testing.assert_allclose(gram, np.diag(values[:K] - sigma2), atol=1e-10)


def test_ppca_mle_beats_perturbed_solutions_and_ties_with_rotations():
    x = gaussian_data(400, [5.0, 3.0, 2.0, 0.5, 0.4, 0.3, 0.2], seed=1)
    solution = ppca_mle(x, K)
    W, mu, sigma2 = solution.weight, solution.mean, solution.sigma2
    best = ppca_log_marginal(x, W, mu, sigma2).mean()
    generator = torch.Generator().manual_seed(0)
    for scale in (1e-3, 1e-2, 1e-1):
        for _ in range(5):
            noise = torch.randn(W.shape, generator=generator, dtype=torch.float64)
            assert ppca_log_marginal(x, W + scale * noise, mu, sigma2).mean() < best
    for factor in (0.9, 1.1):
        assert ppca_log_marginal(x, W, mu, sigma2 * factor).mean() < best
    rotation, _ = torch.linalg.qr(torch.randn(K, K, generator=generator, dtype=torch.float64))
    rotated = ppca_log_marginal(x, W @ rotation, mu, sigma2).mean()
    assert rotated.item() == pytest.approx(best.item(), abs=1e-10)


def test_fixed_sigma2_zeroes_the_columns_of_small_eigenvalues():
    covariance = torch.diag(torch.tensor([4.0, 2.0, 0.8, 0.5, 0.1], dtype=torch.float64))
    solution = ppca_mle_from_covariance(covariance, 4, sigma2=1.0)
    norms = solution.weight.norm(dim=0)
    torch.testing.assert_close(norms, torch.tensor([3.0, 1.0, 0.0, 0.0]).double().sqrt())
    assert solution.collapsed_dimensions == 2
    assert collapsed_dimensions_expected(solution.eigenvalues, 4, 1.0) == 2
    assert collapsed_dimensions_expected(torch.tensor([0.1, 4.0, 0.5]), 2, 0.5) == 1
    assert collapsed_dimensions_expected(solution.eigenvalues, 5, 0.05) == 0
    with pytest.raises(ValueError, match="latent_size"):
        collapsed_dimensions_expected(solution.eigenvalues, 6, 1.0)
    with pytest.raises(ValueError, match="give sigma2"):
        ppca_mle_from_covariance(covariance, 5)
    with pytest.raises(ValueError, match="symmetric"):
        ppca_mle_from_covariance(covariance + torch.triu(torch.ones(5, 5), 1).double(), 2)


# --- the linear VAE's ELBO ----------------------------------------------------------------


def test_closed_form_reconstruction_term_is_the_expectation_under_q():
    model = random_model(0)
    x = torch.randn(6, D, dtype=torch.float64)
    output = model(x)
    z = model.encode(x).sample((200_000,))  # (samples, batch, k)
    monte_carlo = -model.log_likelihood(x, z)
    standard_error = monte_carlo.std(0) / math.sqrt(z.shape[0])
    assert ((monte_carlo.mean(0) - output.reconstruction_nll).abs() < 4 * standard_error).all()


@pytest.mark.parametrize("seed", range(4))
def test_elbo_never_exceeds_the_exact_log_likelihood(seed):
    x = torch.randn(32, D, dtype=torch.float64) * 1.5
    model = random_model(seed)
    with torch.no_grad():
        log_px = model.log_marginal(x)
        assert (model.elbo(x) <= log_px + 1e-10).all()
        # The best diagonal encoder for a W with non-orthogonal columns still leaves a gap:
        # the true posterior's covariance σ²M⁻¹ is not diagonal.
        model.set_optimal_encoder()
        gap = log_px - model.elbo(x)
        assert (gap > 1e-6).all()
        # ... and no perturbed encoder does better, example by example.
        best = model.elbo(x)
        model.encoder.log_variance.add_(0.05)
        assert (model.elbo(x) < best).all()


def test_elbo_equals_log_likelihood_at_the_ppca_optimum():
    x = gaussian_data(300, [5.0, 3.0, 0.6, 0.5, 0.4, 0.3, 0.2], seed=2)
    for learn in (True, False):
        config = LinearVAEConfig(
            input_size=D, latent_size=K, observation_variance=1.5, learn_observation_variance=learn
        )
        model = LinearVAEModel.from_ppca(x, config).eval()
        with torch.no_grad():
            elbo, log_px = model.elbo(x), model.log_marginal(x)
        torch.testing.assert_close(elbo, log_px, rtol=0, atol=1e-6)
        if not learn:
            # λ₃ ≈ 0.6 < σ² = 1.5: that direction collapses, and q is the prior on it.
            kl_per_dim = model(x).kl_per_dim.mean(0)
            assert kl_per_dim[2].item() < 1e-12 and (kl_per_dim[:2] > 0.1).all()
    # The same decoder rotated has the same log p(x) but non-orthogonal columns, so the
    # diagonal posterior no longer reaches it.
    rotation = torch.linalg.qr(torch.randn(K, K, dtype=torch.float64))[0]
    with torch.no_grad():
        model.set_ppca_solution(model.decoder_weight @ rotation, model.data_mean.clone())
        torch.testing.assert_close(model.log_marginal(x), log_px, rtol=0, atol=1e-9)
        assert (model.log_marginal(x) - model.elbo(x)).mean() > 1e-3


def test_importance_weighted_bound_converges_to_exact_log_likelihood():
    model = random_model(1)
    with torch.no_grad():
        # A proposal wider than the true posterior (the best diagonal one, variances × 4):
        # its importance weights stay bounded, so their variance is finite and the
        # delta-method tolerance below holds; the gap at K = 1 is about 2 nats.
        model.set_optimal_encoder()
        model.encoder.log_variance.add_(math.log(4))
    x = torch.randn(200, D, dtype=torch.float64)
    batch = {"inputs": x}
    with torch.no_grad():
        exact = model.log_marginal(x)
    torch.manual_seed(0)
    error_1 = (exact - importance_weighted_log_likelihood(model, batch, 1)).mean()
    torch.manual_seed(1)
    posterior = model.encode(x)
    log_weights = log_importance_weights(model, batch, posterior, 1000)
    estimate = torch.logsumexp(log_weights, 0) - math.log(1000)
    error_1000 = (exact - estimate).mean()
    # Delta method: with relative weight variance v = Var(w)/E[w]² the estimate of log p(x)
    # has bias ≈ −v/(2K) and standard deviation ≈ √(v/K); averaged over n examples the
    # mean error is within bias + 4·√(v/(K·n)) unless something is wrong.
    weights = torch.exp(log_weights - exact)
    v = (weights.var(0) / weights.mean(0).pow(2)).mean().item()
    tolerance = v / (2 * 1000) + 4 * math.sqrt(v / (1000 * x.shape[0]))
    assert error_1 > 1.0
    assert abs(error_1000.item()) < tolerance
    assert tolerance < 0.05 * error_1.item()
    # IW bounds are lower bounds in expectation: the mean error is not negative beyond noise.
    assert error_1000.item() > -4 * math.sqrt(v / (1000 * x.shape[0]))


# --- training -----------------------------------------------------------------------------


def test_trainer_collapses_exactly_the_directions_below_the_noise(tmp_path):
    spectrum = [6.0, 3.0, 0.35, 0.25, 0.2, 0.15]  # σ² = 1: λ₃, λ₄ (and below) collapse
    x = gaussian_data(1500, spectrum, seed=3).float()
    latent_size, sigma2 = 4, 1.0
    sample = ppca_mle(x.double(), latent_size, sigma2)
    expected = collapsed_dimensions_expected(sample.eigenvalues, latent_size, sigma2)
    assert expected == 2
    torch.manual_seed(0)
    model = LinearVAEModel(
        LinearVAEConfig(
            input_size=len(spectrum), latent_size=latent_size, observation_variance=sigma2
        )
    )
    data = Dataset.from_dict({"inputs": x.numpy()})
    args = VAETrainingArguments(
        output_dir=str(tmp_path),
        objective="elbo",
        num_train_epochs=12,
        per_device_train_batch_size=50,
        learning_rate=3e-2,
        lr_scheduler_type="constant",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=1000,
        seed=0,
        per_device_eval_batch_size=500,
    )
    trainer = VAETrainer(
        model=model, args=args, train_dataset=data, eval_dataset=data,
        data_collator=VectorCollator(),
    )  # fmt: skip
    trainer.train()
    results = evaluate_vae(model, [{"inputs": x}])
    kl_per_dim = torch.tensor(results["kl_per_dim"])
    assert int((kl_per_dim < 0.01).sum()) == expected, kl_per_dim
    # The active directions reach pPCA's: ‖w_i‖² → λ_i − σ² for the two above σ².
    norms = model.decoder_weight.detach().pow(2).sum(0).sort(descending=True).values
    target = (sample.eigenvalues[:2] - sigma2).float()
    torch.testing.assert_close(norms[:2], target, rtol=0.1, atol=0.05)
    with torch.no_grad():
        gap = (model.log_marginal(x) - model.elbo(x)).mean().item()
    assert 0 <= gap < 0.05


# --- saving and configuration -------------------------------------------------------------


@pytest.mark.parametrize("hidden_sizes", [[], [16, 8]])
def test_save_and_load_give_the_same_outputs(tmp_path, hidden_sizes):
    x = gaussian_data(20, [3.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.1], seed=4).float()
    config = LinearVAEConfig(input_size=D, latent_size=K, hidden_sizes=hidden_sizes,
                             learn_observation_variance=True, observation_variance=0.5)  # fmt: skip
    torch.manual_seed(0)
    model = LinearVAEModel(config).eval()
    with torch.no_grad():
        model.log_observation_variance.fill_(-0.3)  # trained away from its initial value
    model.save_pretrained(tmp_path)
    loaded = LinearVAEModel.from_pretrained(tmp_path).eval()
    assert loaded.config.hidden_sizes == hidden_sizes
    assert loaded.log_observation_variance.item() == pytest.approx(-0.3)
    z = torch.randn(4, 20, K)
    torch.testing.assert_close(loaded.log_likelihood(x, z), model.log_likelihood(x, z))
    torch.testing.assert_close(loaded.encode(x).mean, model.encode(x).mean)
    torch.testing.assert_close(loaded.encode(x).std, model.encode(x).std)
    if not hidden_sizes:
        torch.testing.assert_close(loaded.log_marginal(x), model.log_marginal(x))
        torch.testing.assert_close(loaded(x).reconstruction_nll, model(x).reconstruction_nll)
    else:
        with pytest.raises(ValueError, match="linear VAE only"):
            loaded.log_marginal(x)


@pytest.mark.parametrize(
    "field, value",
    [
        ("input_size", 0),
        ("input_size", 2.5),
        ("latent_size", 0),
        ("observation_variance", 0.0),
        ("observation_variance", -1.0),
        ("observation_variance", math.inf),
        ("learn_observation_variance", "yes"),
        ("hidden_sizes", [16, 0]),
        ("hidden_sizes", "16"),
        ("hidden_sizes", [True]),
        ("posterior", "iaf"),
    ],
)
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        LinearVAEConfig(**{field: value})


def test_priors_other_than_the_standard_normal_are_refused():
    with pytest.raises(ValueError, match="prior"):
        LinearVAEConfig(prior="constrained", posterior_std_max=0.5)


def test_fixed_observation_variance_cannot_be_overwritten_and_inputs_are_checked():
    model = LinearVAEModel(LinearVAEConfig(input_size=D, latent_size=K, observation_variance=1.0))
    assert not model.log_observation_variance.requires_grad
    with pytest.raises(ValueError, match="observation_variance"):
        model.set_ppca_solution(torch.zeros(D, K), torch.zeros(D), observation_variance=2.0)
    with pytest.raises(ValueError, match="weight"):
        model.set_ppca_solution(torch.zeros(K, D), torch.zeros(D))
    with pytest.raises(ValueError, match="inputs"):
        model(torch.zeros(3, D + 1))
    with pytest.raises(ValueError, match="finite"):
        model(torch.full((3, D), math.nan))
