"""The image δ-VAE (Razavi et al. 2019; SPEC §4): committed-rate latents, an anti-causal
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
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import initialization as init
from transformers.utils import ModelOutput

from vaehub.configuration_vae import DeltaVAEConfig
from vaehub.modeling_utils import VAEPreTrainedModel, in_loss_precision, interpolate_latents
from vaehub.posteriors import PosteriorHead, PosteriorParameters
from vaehub.priors import LatentPrior, prior_from_config


@dataclass
class DeltaVAEOutput(ModelOutput):
    """The ELBO's parts for a batch of images.

    Attributes:
        loss: `()` mean over the batch of the negative ELBO.
        reconstruction_nll: `(batch,)` −log p(x|z) in nats, summed over pixel values.
        kl: `(batch,)` KL(q(z|x) ‖ p(z)) in nats, ≥ the committed rate.
        kl_per_dim: `(batch, latent_size)` the KL split over latent channels (`None` for
            a posterior family whose KL has no closed form).
        logits: `(batch, channels, height, width)` (Bernoulli) or
            `(batch, channels, 256, height, width)` (categorical).
        z: `(batch, *latent_shape)` the latent the decoder was given.
        posterior_mean, posterior_std: `(batch, *latent_shape)` (the std of a Gaussian
            posterior only).
    """

    loss: Tensor | None = None
    reconstruction_nll: Tensor | None = None
    kl: Tensor | None = None
    kl_per_dim: Tensor | None = None
    logits: Tensor | None = None
    z: Tensor | None = None
    posterior_mean: Tensor | None = None
    posterior_std: Tensor | None = None


class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only the pixels before the centre in raster order.

    Mask `"A"` excludes the centre pixel (the first layer over the data), `"B"` includes
    it (layers over features that already exclude it).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str
    ) -> None:
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.mask_type = mask_type

    def kernel_mask(self) -> Tensor:
        """`(k, k)`: 1 on the kernel positions before the centre (and on it, for "B")."""
        k = self.kernel_size[0]
        mask = torch.ones(k, k, device=self.weight.device, dtype=self.weight.dtype)
        centre = k // 2
        mask[centre, centre + (self.mask_type == "B") :] = 0
        mask[centre + 1 :] = 0
        return mask

    def forward(self, x: Tensor) -> Tensor:
        # Built on each call rather than kept as a buffer: a few dozen numbers, and nothing
        # for loading to leave uninitialised.
        return F.conv2d(x, self.weight * self.kernel_mask(), self.bias, self.stride, self.padding)


def _down_shift(x: Tensor) -> Tensor:
    """Move every row one down (row 0 becomes zeros): row i then sees rows < i only."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


class GatedLayer(nn.Module):
    """One layer of the Gated PixelCNN (van den Oord et al. 2016) with a conditioning map.

    The vertical stack sees the rows above; the horizontal stack the pixels to the left
    in the current row (and, through the down-shifted vertical stack, all rows above):
    together every pixel before the current one, with no blind spot. Activations are
    tanh(a + c_a) ⊙ σ(b + c_b), c the projected conditioning map.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, first: bool) -> None:
        super().__init__()
        self.first = first
        k = kernel_size
        # Vertical: rows 0..k//2 of a k×k kernel (the current row included; the down-shift
        # before the horizontal stack removes it).
        self.vertical = nn.Conv2d(
            in_channels, 2 * channels, (k // 2 + 1, k), padding=(k // 2, k // 2)
        )
        # Horizontal: columns left of the centre (and the centre after the first layer).
        self.horizontal = nn.Conv2d(
            in_channels, 2 * channels, (1, k // 2 + (not first)), padding=(0, k // 2)
        )
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)

    def forward(
        self, vertical: Tensor, horizontal: Tensor, condition: Tensor
    ) -> tuple[Tensor, Tensor]:
        height, width = vertical.shape[-2:]
        v = self.vertical(vertical)[:, :, :height, :width]
        h = self.horizontal(horizontal)[:, :, :, :width]
        h = h + self.vertical_to_horizontal(_down_shift(v))
        v_out = self._gate(v + condition)
        h_gated = self.horizontal_out(self._gate(h + condition))
        h_out = h_gated if self.first else horizontal + h_gated
        return v_out, h_out

    @staticmethod
    def _gate(x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


class GatedPixelCNN(nn.Module):
    """The decoder: gated layers conditioned on z, then a 1×1 head to per-pixel logits."""

    def __init__(self, config: DeltaVAEConfig) -> None:
        super().__init__()
        c, channels = config.num_channels, config.decoder_channels
        self.values = 1 if config.output_distribution == "bernoulli" else 256
        self.layers = nn.ModuleList(
            [
                GatedLayer(
                    c if i == 0 else channels,
                    channels,
                    config.decoder_first_kernel_size if i == 0 else config.decoder_kernel_size,
                    first=i == 0,
                )
                for i in range(config.decoder_layers)
            ]
        )
        # One projection of the conditioning map per gated layer.
        self.condition = nn.Conv2d(config.latent_size, 2 * channels * config.decoder_layers, 1)
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(),
            nn.Conv2d(channels, c * self.values, 1),
        )
        self.num_channels = c

    def conditioning(self, latent_map: Tensor) -> list[Tensor]:
        """Per-layer conditioning from `(batch, latent_size, h, w)`, h × w either the image
        size or 1 × 1 (broadcast). Computed once per z and reused by every pass."""
        return list(self.condition(latent_map).chunk(len(self.layers), dim=1))

    def forward(self, inputs: Tensor, conditioning: list[Tensor]) -> Tensor:
        """
        Args:
            inputs: `(batch, channels, height, width)` in [0, 1].
            conditioning: from `conditioning`, cropped to the same rows when `inputs` is.
        Returns:
            `(batch, channels, height, width)` or `(batch, channels, 256, height, width)`.
        """
        vertical = horizontal = inputs
        for layer, condition in zip(self.layers, conditioning, strict=True):
            vertical, horizontal = layer(vertical, horizontal, condition)
        logits = self.head(horizontal)
        if self.values == 1:
            return logits
        batch, _, height, width = logits.shape
        return logits.view(batch, self.num_channels, self.values, height, width)


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

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's own fan-in initialisation, which the gated layers are tuned for.
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(module.bias, -bound, bound)


class DeltaVAEModel(DeltaVAEPreTrainedModel):
    """δ-VAE for images (SPEC §4) with a prior family from the shared configs."""

    nll_unit = "dim"

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

    def units_per_example(self, pixel_values: Tensor) -> Tensor:
        """D, the pixel values of each image: `(batch,)`."""
        return torch.full(
            (pixel_values.shape[0],), self.config.num_dims, device=pixel_values.device
        )

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

    def checked_batch(self, pixel_values: Tensor, **unused: Any) -> dict[str, Tensor]:
        """The batch as the model's methods take it: `pixel_values`, checked."""
        return {"pixel_values": self._check_pixels(pixel_values)}

    output_class = DeltaVAEOutput

    def reconstruction(self, batch: dict[str, Tensor], z: Tensor) -> tuple[Tensor, Tensor]:
        return self._reconstruction_nll(batch["pixel_values"], z)

    def _latent_map(self, z: Tensor) -> Tensor:
        """`(batch, *latent_shape)` → `(batch, latent_size, h, w)`, h = w = image size or 1."""
        if self.config.encoder_type == "resnet":
            return z[:, :, None, None]
        size = self.config.image_size
        return z.transpose(1, 2).reshape(z.shape[0], self.config.latent_size, size, size)

    def _reconstruction_nll(self, targets: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        conditioning = self.decoder.conditioning(self._latent_map(z))
        logits = self.decoder(self._scaled(targets), conditioning)
        if self.config.output_distribution == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(
                in_loss_precision(logits), targets, reduction="none"
            )
        else:
            # Classes sit on dim 2 of (batch, channels, 256, H, W); cross_entropy wants dim 1.
            nll = F.cross_entropy(
                in_loss_precision(logits).transpose(1, 2), targets.long(), reduction="none"
            )
        return nll.flatten(1).sum(-1), logits

    # --- images in and out ------------------------------------------------------------

    def _scaled(self, targets: Tensor) -> Tensor:
        """Network input in [0, 1]."""
        return targets / 255.0 if self.config.output_distribution == "categorical" else targets

    def _inputs(self, pixel_values: Tensor) -> Tensor:
        return self._scaled(self._check_pixels(pixel_values))

    def _check_pixels(self, pixel_values: Any) -> Tensor:
        c, size = self.config.num_channels, self.config.image_size
        if not isinstance(pixel_values, Tensor):
            raise ValueError(
                f"pixel_values must be a tensor of images, got {type(pixel_values).__name__}."
            )
        if pixel_values.dim() == 3 and c == 1:
            pixel_values = pixel_values.unsqueeze(1)
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (c, size, size):
            raise ValueError(
                f"pixel_values must have shape (batch, {c}, {size}, {size}), got "
                f"{tuple(pixel_values.shape)}."
            )
        if pixel_values.shape[0] == 0:
            raise ValueError("pixel_values holds no image.")
        values = pixel_values.float()
        if self.config.output_distribution == "bernoulli":
            if not torch.all((values == 0) | (values == 1)):
                raise ValueError(
                    "Bernoulli output models binary images: pixel_values must be 0 "
                    "or 1 (binarize grey levels first, e.g. with "
                    "vaehub.data.ImageCollator)."
                )
        elif values.min() < 0 or values.max() > 255 or not torch.equal(values, values.round()):
            raise ValueError(
                "categorical output models 8-bit images: pixel_values must be integers in 0–255."
            )
        return values.to(self.decoder.condition.weight.device)

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
        c, size = self.config.num_channels, self.config.image_size
        images = torch.zeros(z.shape[0], c, size, size, device=z.device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on oneDNN and Intel GPUs
            with torch.backends.mkldnn.flags(enabled=False):
                # On the CPU, oneDNN compiles a kernel for every new input shape — one per
                # row here — and its small-batch kernels are slower than the native ones:
                # measured 3x slower at 28x28 even after compiling.
                return self._decode_rows(images, conditioning, greedy, generator)

    def _decode_rows(
        self,
        images: Tensor,
        conditioning: list[Tensor],
        greedy: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        size = self.config.image_size
        for row in range(size):
            rows = [c if c.shape[-2] == 1 else c[:, :, : row + 1] for c in conditioning]
            for column in range(size):
                logits = self.decoder(self._scaled(images[:, :, : row + 1]), rows)
                logits = logits[..., row, column].float()
                images[:, :, row, column] = self._pick(logits, greedy, generator)
        return images

    def _pick(self, logits: Tensor, greedy: bool, generator: torch.Generator | None) -> Tensor:
        if self.config.output_distribution == "bernoulli":
            probability = torch.sigmoid(logits)
            if greedy:
                return (probability > 0.5).float()
            return torch.bernoulli(probability, generator=generator)
        if greedy:
            return logits.argmax(-1).float()
        flat = torch.softmax(logits, -1).reshape(-1, logits.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).view(logits.shape[:-1]).float()

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
        self, image_a: Tensor, image_b: Tensor, steps: int = 5, seed: int = 0, greedy: bool = False
    ) -> Tensor:
        """Decode z(t) = (1 − t)·z_a + t·z_b for `steps` values of t in [0, 1], between the
        posterior means of two images, with the same pixel noise at every step.

        Returns:
            `(steps, channels, H, W)`.
        """
        means = self.encode(
            torch.stack(
                [self._check_pixels(image_a[None])[0], self._check_pixels(image_b[None])[0]]
            )
        ).mean
        z = interpolate_latents(means[0], means[1], steps)  # (steps, *latent_shape)
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
