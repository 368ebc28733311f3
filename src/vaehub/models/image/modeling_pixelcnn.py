"""The exact baseline of the image δ-VAE: its Gated PixelCNN decoder with no conditioning.

    pixel_values ─▶ gated layers (no blind spot) ─▶ 1×1 head ─▶ per-pixel logits

Its NLL is exact, −log p(x) = Σ_i −log p(x_i | x_<i) in raster order, so an image VAE of
the same decoder that reaches it within noise uses its latent at no cost in likelihood
(He et al.'s "PixelCNN"). It trains with `VAETrainer` (objective `elbo`) and is measured
by `vaehub.evaluation.metrics.evaluate_vae` like every vaehub model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vaehub.models.image.configuration_pixelcnn import PixelCNNConfig
from vaehub.models.image.gated_pixelcnn import GatedPixelCNN, PixelModelMixin
from vaehub.models.modeling_utils import VAEPreTrainedModel, checked_num_samples
from vaehub.models.outputs import ELBOOutput


@dataclass
class PixelCNNOutput(ELBOOutput):
    """The exact negative log-likelihood of a batch of images (`ELBOOutput`'s fields:
    `reconstruction_nll` is −log p(x) summed over pixel values, `kl` zeros), and:

    Attributes:
        logits: `(batch, channels, H, W)` (Bernoulli) or `(batch, channels, 256, H, W)`.
    """

    logits: Tensor | None = None


class PixelCNNPreTrainedModel(VAEPreTrainedModel):
    config_class = PixelCNNConfig
    base_model_prefix = "pixelcnn"
    main_input_name = "pixel_values"


class PixelCNNModel(PixelModelMixin, PixelCNNPreTrainedModel):
    """Gated PixelCNN: the δ-VAE's decoder without a latent, exact NLL and bits/dim."""

    has_latent = False

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__(config)
        self.decoder = GatedPixelCNN(config, latent_size=0)
        self.post_init()

    def log_likelihood(self, pixel_values: Tensor, **unused: Any) -> Tensor:
        """log p(x) in nats per image `(batch,)`, exact, summed over pixel values."""
        targets = self._check_pixels(pixel_values)
        return -self._pixel_nll(targets, self.decoder.conditioning(None))[0]

    def forward(self, pixel_values: Tensor, **kwargs: Any) -> PixelCNNOutput:
        """The exact NLL of `(batch, channels, H, W)` images: 0/1 for Bernoulli, 0–255 for
        categorical output."""
        targets = self.checked_batch(pixel_values)["pixel_values"]
        nll, logits = self._pixel_nll(targets, self.decoder.conditioning(None))
        return PixelCNNOutput(
            loss=nll.mean(), reconstruction_nll=nll, kl=torch.zeros_like(nll), logits=logits
        )

    @torch.no_grad()
    def generate(
        self,
        num_samples: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """`num_samples` (default 1) images, pixel by pixel in raster order.

        Returns:
            `(num_samples, channels, H, W)`: 0/1 floats (Bernoulli) or 0–255 (categorical).
        """
        count = checked_num_samples(num_samples)
        return self._sample_images(count, self.decoder.conditioning(None), greedy, generator)
