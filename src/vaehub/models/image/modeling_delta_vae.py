"""The image δ-VAE (Razavi et al. 2019, §2): committed-rate latents, an anti-causal
encoder and a Gated PixelCNN decoder.

    pixel_values ─▶ encoder ─▶ (μ, scale, features) ─▶ q(z|x) of config.posterior
        anticausal: reverse raster order → masked causal conv stack → reverse back, so the
                    latent at pixel t (a `latent_size`-channel map at image resolution,
                    the AR(1) sequence in raster order) sees only pixels ≥ t
        resnet:     He et al.'s convolutional ResNet to one latent vector
    z ─▶ conditioning map, projected and added in every gated layer
    Gated PixelCNN (vertical and horizontal stacks, no blind spot) ─▶ per-pixel logits:
        Bernoulli for binary images, 256-way categorical for 8-bit images

With `prior="ar1"` or `"constrained"` the families guarantee KL(q‖p) ≥ δ for every input
(`config.committed_rate`); `prior="standard"` is He et al.'s PixelCNN-VAE baseline.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaehub.latent.posterior_head import PosteriorHead
from vaehub.latent.posteriors import PosteriorParameters
from vaehub.latent.priors import LatentPrior, prior_from_config
from vaehub.models.image.configuration_delta_vae import PIXEL_DECODER_FIELDS, DeltaVAEConfig
from vaehub.models.image.gated_pixelcnn import GatedPixelCNN, MaskedConv2d, PixelModelMixin
from vaehub.models.modeling_utils import VAEPreTrainedModel, interpolate_latents
from vaehub.models.outputs import LatentOutput


@dataclass
class DeltaVAEOutput(LatentOutput):
    """The ELBO's parts for a batch of images (`LatentOutput`'s fields: `reconstruction_nll`
    summed over pixel values, `kl` ≥ the committed rate, `kl_per_dim` split over latent
    channels), and:

    Attributes:
        logits: `(batch, channels, height, width)` (Bernoulli) or
            `(batch, channels, 256, height, width)` (categorical).
    """

    logits: Tensor | None = None


class AntiCausalEncoder(nn.Module):
    """Reverse the raster order, a masked causal conv stack, reverse back: the latent at
    pixel t depends on pixels ≥ t only."""

    def __init__(self, config: DeltaVAEConfig) -> None:
        super().__init__()
        k, width = config.encoder_kernel_size, config.encoder_channels
        layers: list[nn.Module] = [MaskedConv2d(config.num_channels, width, k, "B"), nn.ReLU()]
        for _ in range(config.encoder_layers - 1):
            layers += [MaskedConv2d(width, width, k, "B"), nn.ReLU()]
        self.stack = nn.Sequential(*layers)
        self.to_posterior = nn.Conv2d(width, 2 * config.latent_size, 1)
        self.context_size = width

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`(batch, channels, H, W)` → mean and scale parameter `(batch, H·W, latent_size)`
        and each pixel's features `(batch, H·W, encoder_channels)`, in raster order."""
        reverse = torch.flip(inputs, dims=(2, 3))
        hidden = self.stack(reverse)
        features = torch.flip(self.to_posterior(hidden), dims=(2, 3))
        sequence = features.flatten(2).transpose(1, 2)  # raster order
        mean, scale = sequence.chunk(2, dim=-1)
        context = torch.flip(hidden, dims=(2, 3)).flatten(2).transpose(1, 2)
        return mean, scale, context


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1, stride)
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.convs(x) + self.skip(x))


class ResNetEncoder(nn.Module):
    """He et al.'s Omniglot encoder, in outline: residual blocks halving the resolution,
    then a linear map to (μ, scale) of one latent vector."""

    def __init__(self, config: DeltaVAEConfig) -> None:
        super().__init__()
        width = config.encoder_channels
        blocks: list[nn.Module] = [ResidualBlock(config.num_channels, width, 1)]
        size = config.image_size
        for i in range(config.encoder_layers - 1):
            stride = 2 if size > 4 and i % 2 == 0 else 1
            blocks.append(ResidualBlock(width, width, stride))
            size = (size + stride - 1) // stride
        self.blocks = nn.Sequential(*blocks)
        self.to_posterior = nn.Linear(width * size * size, 2 * config.latent_size)
        self.context_size = width * size * size

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`(batch, channels, H, W)` → mean and scale parameter `(batch, latent_size)` and
        the features they come from `(batch, encoder_channels · h · w)`."""
        features = self.blocks(inputs).flatten(1)
        mean, scale = self.to_posterior(features).chunk(2, dim=-1)
        return mean, scale, features


class DeltaVAEPreTrainedModel(VAEPreTrainedModel):
    config_class = DeltaVAEConfig
    base_model_prefix = "delta_vae"
    main_input_name = "pixel_values"


class DeltaVAEModel(PixelModelMixin, DeltaVAEPreTrainedModel):
    """δ-VAE for images (Razavi et al. 2019) with a prior family from the shared configs."""

    def __init__(self, config: DeltaVAEConfig) -> None:
        super().__init__(config)
        self.encoder = (
            AntiCausalEncoder(config)
            if config.encoder_type == "anticausal"
            else ResNetEncoder(config)
        )
        self.decoder = GatedPixelCNN(config)
        self.posterior_head = PosteriorHead(config, self.encoder.context_size)
        self.post_init()

    @classmethod
    def from_decoder(
        cls, pixelcnn: Any, config: DeltaVAEConfig | None = None, **overrides: Any
    ) -> DeltaVAEModel:
        """A δ-VAE whose decoder starts from a trained `PixelCNNModel` (Li et al. 2019's
        pretraining).

        Args:
            pixelcnn: the `PixelCNNModel` whose weights to take.
            config: the VAE's config; its decoder fields must equal the PixelCNN's. By
                default, the PixelCNN's fields with `overrides` (`prior=`,
                `committed_rate=`, `latent_size=`, ...).
        """
        decoder_fields = {f: getattr(pixelcnn.config, f) for f in PIXEL_DECODER_FIELDS}
        if config is None:
            config = DeltaVAEConfig(**{**decoder_fields, **overrides})
        elif overrides:
            raise ValueError("give either a config or keyword overrides, not both.")
        model = cls(config)
        model.init_decoder_from(pixelcnn)
        return model

    @torch.no_grad()
    def init_decoder_from(self, pixelcnn: Any) -> None:
        """Copy a `PixelCNNModel`'s decoder into this VAE's; the projection of z into each
        gated layer keeps its initialisation: the PixelCNN has none."""
        theirs = pixelcnn.config
        differ = [
            f"{f}={getattr(self.config, f)!r} (PixelCNN: {getattr(theirs, f)!r})"
            for f in PIXEL_DECODER_FIELDS
            if getattr(self.config, f) != getattr(theirs, f)
        ]
        if differ:
            raise ValueError("the VAE's decoder differs from the PixelCNN's: " + "; ".join(differ))
        missing, unexpected = self.decoder.load_state_dict(
            pixelcnn.decoder.state_dict(), strict=False
        )
        if unexpected or any(not name.startswith("condition.") for name in missing):
            raise ValueError(f"decoder weights do not match: {missing + unexpected}")

    # --- the three pieces every objective and metric uses -----------------------------

    @property
    def prior(self) -> LatentPrior:
        """p(z) over `config.latent_shape`."""
        weight = self.decoder.condition.weight
        length = None if self.config.encoder_type == "resnet" else self.config.latent_length
        return prior_from_config(
            self.config, latent_length=length, device=weight.device, dtype=weight.dtype
        )

    @property
    def committed_rate(self) -> float:
        """δ: no input's KL(q(z|x) ‖ p(z)) is below it, in nats."""
        return self.prior.committed_rate

    def encode(self, pixel_values: Tensor) -> Any:
        """q(z|x), of `config.posterior`'s family, for `(batch, channels, H, W)` images
        (binary, or 0–255 for categorical)."""
        return self.posterior_from(self.posterior_parameters(pixel_values))

    def posterior_parameters(self, pixel_values: Tensor, **unused: Any) -> PosteriorParameters:
        """The encoder's λ = (μ, scale) and features for `(batch, channels, H, W)` images."""
        return PosteriorParameters(*self.encoder(self._inputs(pixel_values)))

    def log_likelihood(self, pixel_values: Tensor, z: Tensor) -> Tensor:
        """log p(x|z) in nats, summed over pixel values.

        Args:
            pixel_values: `(batch, channels, H, W)`.
            z: `(batch, *latent_shape)` or `(samples, batch, *latent_shape)`.
        Returns:
            `(batch,)` or `(samples, batch)`.
        """
        targets = self._check_pixels(pixel_values)
        latent_dims = len(self.config.latent_shape)
        lead = z.shape[: z.dim() - latent_dims - 1]
        batch = targets.shape[0]
        samples = math.prod(lead)
        flat_z = z.reshape(samples * batch, *self.config.latent_shape)
        repeated = targets.repeat(samples, 1, 1, 1)
        nll = self._reconstruction_nll(repeated, flat_z)[0]
        return -nll.reshape(*lead, batch)

    # --- forward ----------------------------------------------------------------------

    def forward(
        self,
        pixel_values: Tensor,
        z: Tensor | None = None,
        posterior_parameters: PosteriorParameters | None = None,
        **kwargs: Any,
    ) -> DeltaVAEOutput:
        """The ELBO's parts for a batch of images.

        Args:
            pixel_values: `(batch, channels, H, W)`: 0/1 for Bernoulli, 0–255 for
                categorical output.
            z: `(batch, *latent_shape)` a latent to decode instead of a sample of q(z|x).
            posterior_parameters: λ to use instead of the encoder's (SVI refinement).
        """
        batch = self.checked_batch(pixel_values)
        if posterior_parameters is None:
            posterior_parameters = self.posterior_parameters(**batch)
        return self.elbo_terms(batch, posterior_parameters, z)

    output_class = DeltaVAEOutput

    def reconstruction(
        self, batch: dict[str, Tensor], z: Tensor, keep_logits: bool = True
    ) -> tuple[Tensor, Tensor]:
        # Per-pixel logits are small next to a text model's; they are always returned.
        return self._reconstruction_nll(batch["pixel_values"], z)

    def _latent_map(self, z: Tensor) -> Tensor:
        """`(batch, *latent_shape)` → `(batch, latent_size, h, w)`, h = w = image size or 1."""
        if self.config.encoder_type == "resnet":
            return z[:, :, None, None]
        size = self.config.image_size
        return z.transpose(1, 2).reshape(z.shape[0], self.config.latent_size, size, size)

    def _reconstruction_nll(self, targets: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._pixel_nll(targets, self.decoder.conditioning(self._latent_map(z)))

    # --- images out -------------------------------------------------------------------

    @torch.no_grad()
    def decode(
        self, z: Tensor, greedy: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """Images for latents, pixel by pixel in raster order.

        The conditioning map is computed once; each pass re-runs only the masked stack,
        on the rows up to the current one (the rows below cannot matter).

        Args:
            z: `(batch, *latent_shape)`.
            greedy: take each pixel's most likely value instead of sampling it.
        Returns:
            `(batch, channels, H, W)`: 0/1 floats (Bernoulli) or 0–255 (categorical).
        """
        shape = tuple(self.config.latent_shape)
        if z.dim() != 1 + len(shape) or tuple(z.shape[1:]) != shape:
            raise ValueError(
                f"z must have shape (batch, {', '.join(map(str, shape))}), got {tuple(z.shape)}."
            )
        z = z.to(self.decoder.condition.weight)
        conditioning = self.decoder.conditioning(self._latent_map(z))
        return self._sample_images(z.shape[0], conditioning, greedy, generator)

    @torch.no_grad()
    def generate(
        self,
        z: Tensor | None = None,
        num_samples: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Images from latents given, or drawn from the prior (sequentially, for AR(1)):
        the same leading arguments as `TextVAEModel.generate`.

        Args:
            z: `(batch, *latent_shape)` latents to decode; `None` samples `num_samples`.
            greedy: take each pixel's most likely value instead of sampling it.
        Returns:
            `(batch or num_samples, channels, H, W)`.
        """
        z = self.latents_to_decode(z, num_samples)
        return self.decode(z, greedy=greedy, generator=generator)

    @torch.no_grad()
    def reconstruct(
        self,
        pixel_values: Tensor,
        sample: bool = False,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Encode images and decode them again: x → q(z|x) → z → x̂."""
        posterior = self.encode(pixel_values)
        return self.decode(
            posterior.sample() if sample else posterior.mean, greedy=greedy, generator=generator
        )

    @torch.no_grad()
    def interpolate(
        self,
        image_a: Tensor,
        image_b: Tensor,
        steps: int = 5,
        seed: int = 0,
        greedy: bool = False,
        method: str = "lerp",
    ) -> Tensor:
        """Decode `steps` points t in [0, 1] of the path between the posterior means of two
        images, with the same pixel noise at every step: `method="lerp"`, z(t) = (1 − t)·z_a
        + t·z_b, or `"slerp"`, along the great circle (as the text VAE's `interpolate`).

        Returns:
            `(steps, channels, H, W)`.
        """
        means = self.encode(
            torch.stack(
                [self._check_pixels(image_a[None])[0], self._check_pixels(image_b[None])[0]]
            )
        ).mean
        z = interpolate_latents(means[0], means[1], steps, method)  # (steps, *latent_shape)
        images = [
            self.decode(
                z[i : i + 1],
                greedy=greedy,
                generator=torch.Generator(device=z.device).manual_seed(seed),
            )
            for i in range(steps)
        ]
        return torch.cat(images)


def save_image_grid(
    images: Tensor, path: str | os.PathLike, columns: int = 8, scale: int = 4
) -> str:
    """Write `(batch, channels, H, W)` images (0/1 or 0–255) as one PNG grid.

    Returns:
        the path written.
    """
    from PIL import Image

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (batch, 1 or 3, H, W), got {tuple(images.shape)}.")
    images = images.detach().float().cpu()
    if images.max() <= 1:
        images = images * 255
    batch, channels, height, width = images.shape
    columns = min(columns, batch)
    rows = math.ceil(batch / columns)
    grid = torch.full((channels, rows * (height + 2) + 2, columns * (width + 2) + 2), 128.0)
    for i in range(batch):
        top, left = 2 + (i // columns) * (height + 2), 2 + (i % columns) * (width + 2)
        grid[:, top : top + height, left : left + width] = images[i]
    array = grid.clamp(0, 255).byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[:, :, 0] if channels == 1 else array)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    picture.save(path)
    return os.fspath(path)
