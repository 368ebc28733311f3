"""`PixelCNNConfig`: the exact baseline of the image δ-VAE, its Gated PixelCNN decoder with
no latent, with the same pixel-decoder fields."""

from __future__ import annotations

from typing import Any

from vaehub.models.configuration_utils import CheckedConfig, set_declared
from vaehub.models.image.configuration_delta_vae import (
    PIXEL_DECODER_DEFAULTS,
    PIXEL_DECODER_FIELDS,
    DeltaVAEConfig,
    check_pixel_decoder,
)


class PixelCNNConfig(CheckedConfig):
    r"""Configuration of `PixelCNNModel`: the δ-VAE's Gated PixelCNN decoder with no
    conditioning, an exact image model ("PixelCNN" in He et al. 2019, Table 2).

    Args:
        image_size, num_channels, output_distribution, decoder_channels, decoder_layers,
        decoder_first_kernel_size, decoder_kernel_size:
            as in `DeltaVAEConfig`, with the same defaults.
    """

    model_type = "pixelcnn"

    def __init__(self, **kwargs: Any) -> None:
        set_declared(self, kwargs, PIXEL_DECODER_DEFAULTS)
        self._validate()
        super().__init__(**kwargs)

    def _validate(self) -> None:
        check_pixel_decoder(self)

    @classmethod
    def from_vae_config(cls, config: DeltaVAEConfig) -> PixelCNNConfig:
        """The unconditional PixelCNN of a δ-VAE's decoder: the same sizes and output."""
        return cls(**{field: getattr(config, field) for field in PIXEL_DECODER_FIELDS})

    @property
    def num_dims(self) -> int:
        """D, the pixel values of one image (the bits/dim denominator)."""
        return self.num_channels * self.image_size * self.image_size
