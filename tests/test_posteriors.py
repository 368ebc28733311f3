"""The posterior families: each flow's log-det against a brute-force Jacobian, inverses,
the flow of length 0 against the Gaussian, the auxiliary bound against an exact log p(x),
and every family inside both models, saved and loaded."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import small_config
from torch import nn

from vaehub import DeltaVAEConfig, DeltaVAEModel, TextVAEModel, build_tokenizer
from vaehub.evaluation.metrics import evaluate_vae
from vaehub.latent.flows import FlowPosterior, IAFStep, PlanarStep
from vaehub.latent.kl import latent_kl
from vaehub.latent.posteriors import AuxiliaryHead, DiagonalGaussian, PosteriorParameters
from vaehub.latent.priors import StandardNormalPrior

FAMILIES = ["gaussian", "planar", "iaf", "auxiliary"]


def random_step(kind: str, d: int = 4, context: int = 5, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    step = PlanarStep(context, d) if kind == "planar" else IAFStep(context, d, 12, reverse=True)
    with torch.no_grad():
        for parameter in step.parameters():
            parameter.normal_(0, 0.7)  # far from the identity, so the check means something
    return step.double()


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_each_flow_log_det_matches_the_brute_force_jacobian(kind):
    step = random_step(kind)
    context = torch.randn(5, dtype=torch.float64)
    for seed in range(4):
        z = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        jacobian = torch.autograd.functional.jacobian(lambda x: step(x, context)[0], z)
        _, log_det = step(z, context)
        assert log_det.item() == pytest.approx(torch.linalg.slogdet(jacobian)[1].item(), abs=1e-9)
    if kind == "iaf":
        # Autoregressive: output i depends on inputs before i in the step's (reversed) order.
        assert torch.all(jacobian.flip(0, 1).triu(1) == 0)


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_each_flow_inverts_its_forward_map(kind):
    step = random_step(kind)
    context = torch.randn(7, 5, dtype=torch.float64)
    z = 2 * torch.randn(7, 4, dtype=torch.float64)
    y, _ = step(z, context)
    torch.testing.assert_close(step.inverse(y, context), z, atol=1e-8, rtol=0)


def test_planar_steps_stay_invertible_whatever_the_network_outputs():
    step = random_step("planar", seed=3)
    context = 5 * torch.randn(1000, 5, dtype=torch.float64)
    u_hat, w, _ = step.parameters_for(context)
    assert ((u_hat * w).sum(-1) >= -1 - 1e-12).all()


def flow_posterior(kind: str, length: int, seed: int = 0) -> FlowPosterior:
    steps = [random_step(kind, seed=seed + t) for t in range(length)]
    torch.manual_seed(seed)
    base = DiagonalGaussian(
        torch.randn(6, 4, dtype=torch.float64), torch.rand(6, 4, dtype=torch.float64) + 0.3
    )
    return FlowPosterior(base, steps, torch.randn(6, 5, dtype=torch.float64))


def test_a_flow_of_length_0_is_the_gaussian_exactly():
    posterior = flow_posterior("iaf", 0)
    torch.manual_seed(1)
    z, log_q = posterior.rsample_and_log_prob((3,))
    torch.manual_seed(1)
    z_gauss = posterior.base.rsample((3,))
    assert torch.equal(z, z_gauss)
    assert torch.equal(log_q, posterior.base.log_prob(z_gauss))
    assert torch.equal(posterior.log_prob(z), posterior.base.log_prob(z))
    assert torch.equal(posterior.mean, posterior.base.mean)


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_flow_log_q_of_a_sample_equals_its_log_prob_by_inversion(kind):
    posterior = flow_posterior(kind, 3)
    z, log_q = posterior.rsample_and_log_prob((2,))
    torch.testing.assert_close(posterior.log_prob(z), log_q, atol=1e-7, rtol=0)
    # Pairwise, as the MI estimator scores every sample under every posterior.
    pairwise = posterior.log_prob(z[0].unsqueeze(1))
    assert pairwise.shape == (6, 6)
    torch.testing.assert_close(pairwise.diagonal(), log_q[0], atol=1e-7, rtol=0)


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_flow_density_integrates_to_one_on_a_grid(kind):
    # 2-d latent: Σ q(z) ΔA over a wide grid must be 1 if log-dets and inverses agree.
    steps = [random_step(kind, d=2, seed=t) for t in range(2)]
    base = DiagonalGaussian(
        torch.tensor([[0.3, -0.2]], dtype=torch.float64),
        torch.tensor([[0.8, 0.5]], dtype=torch.float64),
    )
    posterior = FlowPosterior(base, steps, torch.randn(1, 5, dtype=torch.float64))
    axis = torch.linspace(-9, 9, 301, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis).unsqueeze(1)
    area = (axis[1] - axis[0]) ** 2
    total = (posterior.log_prob(grid).exp() * area).sum().item()
    assert total == pytest.approx(1.0, abs=2e-3)


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I): log p(x) = log N(x; b, WWᵀ + σ²I)."""

    def __init__(self, x_dim: int = 3, z_dim: int = 2) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.W = torch.randn(x_dim, z_dim, generator=generator, dtype=torch.float64)
        self.b = torch.randn(x_dim, generator=generator, dtype=torch.float64)
        self.noise = 0.5
        self.prior = StandardNormalPrior(z_dim, dtype=torch.float64)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean = z @ self.W.T + self.b
        return torch.distributions.Normal(mean, self.noise).log_prob(x).sum(-1)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        covariance = self.W @ self.W.T + self.noise**2 * torch.eye(self.W.shape[0])
        return torch.distributions.MultivariateNormal(self.b, covariance).log_prob(x)


def test_auxiliary_bound_is_below_the_exact_log_marginal_and_iw_closes_in():
    model = LinearGaussian()
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]], dtype=torch.float64)
    torch.manual_seed(0)
    head = AuxiliaryHead(context_size=3, latent_size=2, auxiliary_size=2, hidden=16).double()
    parameters = PosteriorParameters(
        torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64), x
    )
    posterior = head(parameters, model.prior)
    exact = model.log_marginal(x)
    with torch.no_grad():
        z, log_q = posterior.rsample_and_log_prob((20000,))
        bound = (model.log_likelihood(x, z) + model.prior.log_prob(z) - log_q).mean(0)
        weights = model.log_likelihood(x, z) + model.prior.log_prob(z) - log_q
        iw = torch.logsumexp(weights, 0) - math.log(weights.shape[0])
    assert (bound < exact).all()
    assert (iw <= exact + 0.05).all() and (iw > bound).all()
    assert (exact - iw < 0.5 * (exact - bound)).all()


def test_auxiliary_log_prob_estimates_the_marginal_density():
    # q(z|x) = ∫ q(v|x) q(z|v,x) dv; integrate the estimate over a 2-d grid: about 1.
    torch.manual_seed(0)
    head = AuxiliaryHead(context_size=3, latent_size=2, auxiliary_size=2, hidden=8).double()
    parameters = PosteriorParameters(
        torch.zeros(1, 2, dtype=torch.float64),
        torch.full((1, 2), -0.5, dtype=torch.float64),
        torch.randn(1, 3, dtype=torch.float64),
    )
    posterior = head(parameters, StandardNormalPrior(2, dtype=torch.float64))
    axis = torch.linspace(-5, 5, 101, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis).unsqueeze(1)
    with torch.no_grad():
        density = posterior.log_prob(grid, samples=256).exp()
    assert (density.sum() * (axis[1] - axis[0]) ** 2).item() == pytest.approx(1.0, abs=0.03)


# --- every family inside both models -----------------------------------------------------


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return [
        "the cat sat on the mat",
        "a dog ran in the park",
        "the bird sang a song",
        "we walked to the river",
        "the sun rose over the hills",
        "they ate bread and cheese",
    ]


def text_model(sentences, family: str, **overrides) -> TextVAEModel:
    tokenizer = build_tokenizer(sentences, vocab_size=100)
    torch.manual_seed(0)
    model = TextVAEModel(small_config(len(tokenizer), posterior=family, **overrides))
    model.tokenizer = tokenizer
    return model.eval()


def image_model(family: str, **overrides) -> DeltaVAEModel:
    torch.manual_seed(0)
    config = DeltaVAEConfig(
        image_size=6, latent_size=2, encoder_channels=8, encoder_layers=2, decoder_channels=8,
        decoder_layers=2, decoder_first_kernel_size=3, posterior=family, **overrides,
    )  # fmt: skip
    return DeltaVAEModel(config).eval()


def images(n: int = 6) -> torch.Tensor:
    return (torch.rand(n, 1, 6, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("prior", ["standard", "ar1"])
def test_every_family_trains_saves_and_loads_in_the_text_vae(sentences, family, prior, tmp_path):
    extra = {"committed_rate": 1.0} if prior == "ar1" else {}
    model = text_model(sentences, family, prior=prior, **extra)
    ids, mask = model.tokenize(sentences)
    out = model(input_ids=ids, attention_mask=mask)
    assert torch.isfinite(out.loss) and out.kl.shape == (6,)
    assert (out.kl_per_dim is None) == (family != "gaussian")
    out.loss.backward()
    if family != "gaussian":
        head = [p.grad for p in model.posterior_head.parameters()]
        assert head and all(g is not None and g.abs().sum() > 0 for g in head)
    model.save_pretrained(tmp_path)
    loaded = TextVAEModel.from_pretrained(tmp_path).eval()
    assert loaded.config.posterior == family
    z = out.z.detach()
    again = loaded(input_ids=ids, attention_mask=mask, z=z)
    torch.testing.assert_close(again.logits, model(input_ids=ids, attention_mask=mask, z=z).logits)
    torch.manual_seed(3)
    before = model.encode(ids, mask).sample_and_log_prob()
    torch.manual_seed(3)
    after = loaded.encode(ids, mask).sample_and_log_prob()
    torch.testing.assert_close(after, before)
    results = evaluate_vae(loaded, [{"input_ids": ids, "attention_mask": mask}], iw_samples=8)
    assert math.isfinite(results["mi"]) and math.isfinite(results["nll"])
    assert results["nll"] <= results["neg_elbo"] + 5  # a bound, up to sampling noise


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("encoder", ["anticausal", "resnet"])
def test_every_family_trains_saves_and_loads_in_the_image_vae(family, encoder, tmp_path):
    prior = {"prior": "ar1", "committed_rate": 1.0} if encoder == "anticausal" else {}
    model = image_model(family, encoder_type=encoder, **prior)
    x = images()
    out = model(pixel_values=x)
    assert torch.isfinite(out.loss) and out.kl.shape == (6,)
    out.loss.backward()
    model.save_pretrained(tmp_path)
    loaded = DeltaVAEModel.from_pretrained(tmp_path).eval()
    z = out.z.detach()
    torch.testing.assert_close(
        loaded(pixel_values=x, z=z).logits, model(pixel_values=x, z=z).logits
    )
    results = evaluate_vae(loaded, [{"pixel_values": x}], iw_samples=4)
    assert math.isfinite(results["mi"]) and math.isfinite(results["bits_per_dim"])


def test_a_gaussian_model_has_no_posterior_weights_so_old_checkpoints_load(sentences):
    model = text_model(sentences, "gaussian")
    assert not any(name.startswith("posterior_head") for name in model.state_dict())


def test_mc_kl_of_a_gaussian_agrees_with_its_closed_form():
    # The one KL function: with a wrapper that hides the closed form, the estimate it
    # falls back to converges on the closed form.
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.randn(3, 4), torch.rand(3, 4) + 0.2)
    prior = StandardNormalPrior(4)
    closed, per_dim = latent_kl(q, prior)
    assert per_dim is not None
    estimate, none = latent_kl(FlowPosterior(q, [], torch.zeros(3, 1)), prior, samples=200000)
    assert none is None
    torch.testing.assert_close(estimate, closed, atol=0.02, rtol=0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"posterior": "maf"}, "posterior='maf' is not valid"),
        ({"flow_length": 3}, "flow_length=3 is not valid: it is not used by posterior='gaussian'"),
        ({"posterior": "iaf", "flow_length": -1}, "flow_length=-1 is not valid"),
        ({"posterior": "planar", "auxiliary_size": 2}, "auxiliary_size=2 is not valid"),
    ],
)
def test_bad_posterior_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        DeltaVAEConfig(image_size=6, latent_size=2, **overrides)
