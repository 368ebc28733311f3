"""The Gated PixelCNN (van den Oord et al. 2016) every vaehub image model shares, and
what an image model does around it: checking pixels, scoring them, and sampling images
pixel by pixel.

    pixels ─▶ gated layers (vertical and horizontal stacks, no blind spot)
             [+ a projection of z's conditioning map in every layer]
           ─▶ 1×1 head ─▶ per-pixel logits: Bernoulli (binary) or 256-way (8-bit)

With `latent_size=0` the decoder is an unconditional PixelCNN: `DeltaVAEModel` uses it
conditioned on z, `PixelCNNModel` without, with the same weights wherever they overlap.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import initialization as init

from vaehub.models.modeling_utils import in_loss_precision


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
        self, vertical: Tensor, horizontal: Tensor, condition: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        height, width = vertical.shape[-2:]
        v = self.vertical(vertical)[:, :, :height, :width]
        h = self.horizontal(horizontal)[:, :, :, :width]
        h = h + self.vertical_to_horizontal(_down_shift(v))
        if condition is not None:
            v, h = v + condition, h + condition
        v_out = self._gate(v)
        h_gated = self.horizontal_out(self._gate(h))
        h_out = h_gated if self.first else horizontal + h_gated
        return v_out, h_out

    @staticmethod
    def _gate(x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


class GatedPixelCNN(nn.Module):
    """Gated layers, conditioned on z when `latent_size` > 0, then a 1×1 head to per-pixel
    logits.

    Args:
        config: a `DeltaVAEConfig` or `PixelCNNConfig` (image size, channels, output
            distribution and decoder sizes).
        latent_size: channels of the conditioning map; the config's `latent_size` when
            `None` (0 for a config without one: an unconditional PixelCNN).
    """

    def __init__(self, config: Any, latent_size: int | None = None) -> None:
        super().__init__()
        if latent_size is None:
            latent_size = getattr(config, "latent_size", 0)
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
        if latent_size:
            # One projection of the conditioning map per gated layer.
            self.condition = nn.Conv2d(latent_size, 2 * channels * config.decoder_layers, 1)
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(),
            nn.Conv2d(channels, c * self.values, 1),
        )
        self.num_channels = c

    def conditioning(self, latent_map: Tensor | None) -> list[Tensor | None]:
        """Per-layer conditioning from `(batch, latent_size, h, w)`, h × w either the image
        size or 1 × 1 (broadcast). Computed once per z and reused by every pass. `None`
        per layer without a latent."""
        if latent_map is None:
            return [None] * len(self.layers)
        return list(self.condition(latent_map).chunk(len(self.layers), dim=1))

    def forward(self, inputs: Tensor, conditioning: list[Tensor | None]) -> Tensor:
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


class PixelModelMixin:
    """What a vaehub image model does around its `decoder` (a `GatedPixelCNN`)."""

    decoder: GatedPixelCNN
    nll_unit = "dim"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's own fan-in initialisation, which the gated layers are tuned for.
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight[0].numel())
                init.uniform_(module.bias, -bound, bound)

    def units_per_example(self, pixel_values: Tensor) -> Tensor:
        """D, the pixel values of each image: `(batch,)`."""
        return torch.full(
            (pixel_values.shape[0],), self.config.num_dims, device=pixel_values.device
        )

    def checked_batch(self, pixel_values: Tensor, **unused: Any) -> dict[str, Tensor]:
        """The batch as the model's methods take it: `pixel_values`, checked."""
        return {"pixel_values": self._check_pixels(pixel_values)}

    def _pixel_nll(
        self, targets: Tensor, conditioning: list[Tensor | None]
    ) -> tuple[Tensor, Tensor]:
        """−log p(x | conditioning) per image `(batch,)`, summed over pixel values, and the
        logits."""
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

    # --- images in --------------------------------------------------------------------

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
                    "vaehub.data.images.ImageCollator)."
                )
        elif values.min() < 0 or values.max() > 255 or not torch.equal(values, values.round()):
            raise ValueError(
                "categorical output models 8-bit images: pixel_values must be integers in 0–255."
            )
        return values.to(self.decoder.head[-1].weight.device)

    # --- images out -------------------------------------------------------------------

    def _sample_images(
        self,
        batch: int,
        conditioning: list[Tensor | None],
        greedy: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        """`(batch, channels, H, W)` images, pixel by pixel in raster order.

        The conditioning is computed once by the caller; each pass re-runs only the
        masked stack, on the rows up to the current one (the rows below cannot matter).
        """
        c, size = self.config.num_channels, self.config.image_size
        device = self.decoder.head[-1].weight.device
        images = torch.zeros(batch, c, size, size, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on oneDNN and Intel GPUs
            with torch.backends.mkldnn.flags(enabled=False):
                # On the CPU, oneDNN compiles a kernel for every new input shape — one per
                # row here — and its small-batch kernels are slower than the native ones,
                # even after compiling.
                return self._decode_rows(images, conditioning, greedy, generator)

    def _decode_rows(
        self,
        images: Tensor,
        conditioning: list[Tensor | None],
        greedy: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        size = self.config.image_size
        for row in range(size):
            rows = [
                c if c is None or c.shape[-2] == 1 else c[:, :, : row + 1] for c in conditioning
            ]
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
