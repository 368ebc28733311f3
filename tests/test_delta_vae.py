"""The image δ-VAE against the paper's mathematics (Razavi et al. 2019, §2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoModel

from vaehub import CheckpointError, DeltaVAEConfig, DeltaVAEModel, DiagonalGaussian
from vaehub.data.images import ImageCollator, image_batches, load_digits, load_mnist
from vaehub.evaluation.metrics import evaluate_vae
from vaehub.latent.priors import ar1_committed_rate, kl_divergence
from vaehub.models.image.modeling_delta_vae import GatedPixelCNN, MaskedConv2d, save_image_grid

SIZE = 8


def small(**overrides) -> DeltaVAEConfig:
    values = dict(image_size=SIZE, latent_size=2, encoder_channels=8, encoder_layers=2,
                  decoder_channels=8, decoder_layers=3, decoder_first_kernel_size=5)
    return DeltaVAEConfig(**{**values, **overrides})


def binary_images(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, SIZE, SIZE, generator=generator) > 0.5).float()


# --- causality ---------------------------------------------------------------------------


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_convolution_sees_only_earlier_pixels(mask_type):
    torch.manual_seed(0)
    conv = MaskedConv2d(1, 1, 5, mask_type)
    x = torch.randn(1, 1, SIZE, SIZE, requires_grad=True)
    out = conv(x)
    for i in (0, 9, 27, 36, 63):
        (gradient,) = torch.autograd.grad(out.flatten()[i], x, retain_graph=True)
        flat = gradient.flatten()
        later = flat[i + 1:] if mask_type == "B" else flat[i:]
        assert torch.all(later == 0), (i, mask_type)
        if mask_type == "B":
            assert flat[i] != 0
        if i >= 9:
            assert flat[:i].abs().sum() > 0


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_pixelcnn_log_likelihood_of_pixel_i_ignores_pixels_from_i_on(distribution):
    torch.manual_seed(1)
    decoder = GatedPixelCNN(small(output_distribution=distribution))
    x = torch.rand(1, 1, SIZE, SIZE, requires_grad=True)
    conditioning = decoder.conditioning(torch.randn(1, 2, SIZE, SIZE))
    logits = decoder(x, conditioning)
    for i in (0, 1, 7, 8, 20, 35, 63):
        row, column = divmod(i, SIZE)
        target = logits[0, 0, row, column] if distribution == "bernoulli" else (
            torch.log_softmax(logits[0, 0, :, row, column], 0)[17])
        (gradient,) = torch.autograd.grad(target, x, retain_graph=True)
        flat = gradient.flatten()
        assert torch.all(flat[i:] == 0), i
        # No blind spot: the pixel to the left and the one above both matter.
        if column > 0:
            assert flat[i - 1] != 0, i
        if row > 0:
            assert flat[i - SIZE] != 0, i
            if column < SIZE - 1:
                assert flat[i - SIZE + 1] != 0, i  # up and to the right


def test_encoder_is_anticausal():
    torch.manual_seed(2)
    model = DeltaVAEModel(small(prior="ar1", committed_rate=3.0)).eval()
    x = binary_images(1)
    mean = model.encode(x).mean[0]  # (positions, channels)
    for t in (5, 20, 40, 63):
        changed = x.clone().flatten()
        changed[:t] = 1 - changed[:t]  # every pixel before t
        other = model.encode(changed.view_as(x)).mean[0]
        torch.testing.assert_close(other[t:], mean[t:], rtol=0, atol=1e-6)
        assert not torch.allclose(other[:t], mean[:t])


# --- committed rate ------------------------------------------------------------------------


@pytest.mark.parametrize("prior", ["ar1", "constrained"])
def test_kl_never_below_delta_on_random_inputs_and_parameters(prior):
    for seed in range(3):
        torch.manual_seed(seed)
        model = DeltaVAEModel(small(prior=prior, committed_rate=4.0)).eval()
        for parameter in model.encoder.parameters():
            parameter.data.normal_(0, 0.5)
        kl = model(binary_images(16, seed)).kl
        assert (kl >= model.committed_rate - 1e-5).all()
        assert model.committed_rate == pytest.approx(4.0, abs=1e-6)


def test_kl_reaches_delta_at_the_analytic_minimiser():
    model = DeltaVAEModel(small(prior="ar1", ar1_alpha=[0.3, 0.8]))
    prior = model.prior
    # μ = 0 and σ_t² = 1/Λ_tt, the diagonal of the AR(1) precision.
    diagonal, _, _ = prior._precision(torch.device("cpu"), torch.float32)
    q = DiagonalGaussian(torch.zeros(1, SIZE * SIZE, 2), diagonal.rsqrt().unsqueeze(0), 2)
    assert kl_divergence(q, prior).item() == pytest.approx(model.committed_rate, rel=1e-5)
    assert model.committed_rate == pytest.approx(ar1_committed_rate([0.3, 0.8], SIZE * SIZE))
    wider = DiagonalGaussian(q.mean, q.std * 1.1, 2)
    assert kl_divergence(wider, prior).item() > model.committed_rate


def test_target_committed_rate_is_reached_within_1e_6():
    for rate in (0.5, 7.0, 60.0):
        config = small(prior="ar1", committed_rate=rate)
        assert abs(ar1_committed_rate(config.ar1_alphas(), config.latent_length) - rate) < 1e-6
        constrained = small(prior="constrained", committed_rate=rate)
        assert abs(DeltaVAEModel(constrained).committed_rate - rate) < 1e-6


# --- the model's interface ---------------------------------------------------------------


def test_output_terms_and_log_likelihood_agree():
    torch.manual_seed(3)
    model = DeltaVAEModel(small(prior="ar1", committed_rate=2.0)).eval()
    x = binary_images(4)
    out = model(x)
    assert out.reconstruction_nll.shape == out.kl.shape == (4,)
    assert out.kl_per_dim.shape == (4, 2) and out.z.shape == (4, SIZE * SIZE, 2)
    torch.testing.assert_close(out.loss, (out.reconstruction_nll + out.kl).mean())
    z = torch.randn(3, 4, SIZE * SIZE, 2)
    log_likelihood = model.log_likelihood(x, z)
    for k in range(3):
        torch.testing.assert_close(log_likelihood[k], -model(x, z=z[k]).reconstruction_nll)


@pytest.mark.parametrize(
    ("overrides", "low", "high"),
    [({}, 0, 1), ({"output_distribution": "categorical"}, 0, 255),
     ({"encoder_type": "resnet", "latent_size": 4}, 0, 1)],
)
def test_generation_shapes_and_value_ranges(overrides, low, high):
    torch.manual_seed(4)
    model = DeltaVAEModel(small(**overrides)).eval()
    images = model.generate(num_samples=3, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, SIZE, SIZE)
    assert images.min() >= low and images.max() <= high
    assert torch.equal(images, images.round())
    again = model.generate(z=torch.zeros(2, *model.config.latent_shape), greedy=True)
    assert torch.equal(again[0], again[1])
    path = model.interpolate(images[0], images[1], steps=4)
    assert path.shape == (4, 1, SIZE, SIZE)
    assert model.reconstruct(images).shape == images.shape


def test_decoding_pixel_by_pixel_matches_the_full_forward_pass():
    # Greedy decoding must pick, at every pixel, the argmax of the teacher-forced logits:
    # the cropped, cached passes compute the same conditionals as one full pass.
    torch.manual_seed(5)
    model = DeltaVAEModel(small()).eval()
    z = torch.randn(2, *model.config.latent_shape)
    images = model.decode(z, greedy=True)
    logits = model(images, z=z).logits
    assert torch.equal((logits > 0).float(), images)


def test_save_and_load_through_auto_model(tmp_path):
    torch.manual_seed(6)
    model = DeltaVAEModel(small(prior="ar1", committed_rate=2.5)).eval()
    x = binary_images(3)
    z = torch.randn(3, *model.config.latent_shape)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, DeltaVAEModel) and loaded.config == model.config
    assert torch.equal(loaded(x, z=z).logits, model(x, z=z).logits)
    assert torch.equal(loaded.encode(x).mean, model.encode(x).mean)
    assert loaded.committed_rate == pytest.approx(2.5, abs=1e-6)
    with pytest.raises(CheckpointError, match="type 'delta_vae', not a vaehub 'text_vae'"):
        from vaehub import TextVAEModel

        TextVAEModel.from_pretrained(tmp_path)


def test_bad_images_are_refused():
    model = DeltaVAEModel(small())
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 8, 8\)"):
        model(torch.zeros(2, 1, 9, 9))
    with pytest.raises(ValueError, match="must be 0 or 1"):
        model(torch.full((1, 1, SIZE, SIZE), 0.5))
    with pytest.raises(ValueError, match="integers in 0–255"):
        DeltaVAEModel(small(output_distribution="categorical"))(torch.full((1, 1, 8, 8), 300.0))
    with pytest.raises(ValueError, match="tensor of images"):
        model.encode([[0, 1]])
    with pytest.raises(ValueError, match=r"AR\(1\) latents need encoder_type='anticausal'"):
        small(encoder_type="resnet", prior="ar1", ar1_alpha=0.5)
    with pytest.raises(ValueError, match="latent_length=5"):
        small(latent_length=5)
    with pytest.raises(ValueError, match="odd kernel size"):
        small(decoder_kernel_size=4)


# --- data and metrics ----------------------------------------------------------------------


def test_image_data_and_dynamic_binarization(tmp_path):
    digits = load_digits()
    assert len(digits) + len(load_digits("test")) == 1797
    rows = digits.select(range(64))
    first = ImageCollator(generator=torch.Generator().manual_seed(0))(rows)["pixel_values"]
    second = ImageCollator(generator=torch.Generator().manual_seed(1))(rows)["pixel_values"]
    assert first.shape == (64, 1, SIZE, SIZE) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)  # resampled each time
    grey = torch.as_tensor(rows["pixel_values"])
    # The binarized mean matches the grey level: 5 s.e. over 64·64 pixel draws.
    assert (first.mean() - grey.mean()).abs() < 5 * 0.5 / 64
    assert save_image_grid(first[:16], tmp_path / "grid.png").endswith("grid.png")
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_mnist_loads_with_its_published_size():
    from helpers import SHARED_DATA

    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip("MNIST not found beside the project")
    test = load_mnist(SHARED_DATA / "mnist", "test")
    assert len(test) == 10000 and test[0]["pixel_values"].shape == (1, 28, 28)
    labels = np.asarray(test["label"])
    assert labels.min() == 0 and labels.max() == 9


def test_metrics_run_unchanged_on_the_image_model():
    torch.manual_seed(7)
    model = DeltaVAEModel(small(prior="ar1", committed_rate=2.0))
    results = evaluate_vae(model, image_batches(load_digits("test").select(range(40)), 20),
                           iw_samples=3)
    assert results["kl"] >= 2.0 - 1e-5
    assert results["bits_per_dim"] == pytest.approx(results["nll"] / (64 * math.log(2)))
    assert results["nll"] <= results["neg_elbo"] + 1.0
