"""`DeltaVAEConfig`: the image δ-VAE (Razavi et al. 2019): its committed-rate prior, its
encoder (anti-causal or ResNet) and the Gated PixelCNN decoder fields it shares with its
baseline."""

from __future__ import annotations

from typing import Any

from vaehub.models.configuration_utils import (
    VAEConfig,
    _fail,
    check_choice,
    check_int,
    declared_defaults,
)

OUTPUT_DISTRIBUTIONS = ("bernoulli", "categorical")


IMAGE_ENCODERS = ("anticausal", "resnet")


def _check_kernel(field: str, value: Any) -> None:
    if check_int(field, value, minimum=1) % 2 == 0:
        raise _fail(field, value, "expected an odd kernel size")


def check_pixel_decoder(config: Any) -> None:
    """Check the fields of the Gated PixelCNN an image VAE and a PixelCNN share."""
    check_int("image_size", config.image_size, minimum=2)
    check_int("num_channels", config.num_channels)
    check_choice("output_distribution", config.output_distribution, OUTPUT_DISTRIBUTIONS)
    for field in ("decoder_channels", "decoder_layers"):
        check_int(field, getattr(config, field))
    for field in ("decoder_first_kernel_size", "decoder_kernel_size"):
        _check_kernel(field, getattr(config, field))


class DeltaVAEConfig(VAEConfig):
    r"""Configuration of `DeltaVAEModel`, the image δ-VAE of Razavi et al. 2019.

    Args:
        image_size (`int`, defaults to 28):
            Height and width of the (square) images.
        num_channels (`int`, defaults to 1):
            Channels per pixel.
        output_distribution (`str`, defaults to `"bernoulli"`):
            `"bernoulli"` for binary images (one logit per value), `"categorical"` for
            8-bit images (256 logits per value). The values of one pixel are predicted
            together from the pixels before it in raster order.
        encoder_type (`str`, defaults to `"anticausal"`):
            `"anticausal"`: reverse the raster order, a masked causal convolution stack,
            reverse back, so the latent at pixel t sees only pixels ≥ t; the latent map has
            the image's resolution, `latent_size` channels, and is the AR(1) sequence in
            raster order. `"resnet"`: He et al.'s convolutional ResNet encoder to a single
            latent vector of `latent_size` (prior `standard` or `constrained`).
        encoder_channels (`int`, defaults to 32), encoder_layers (`int`, defaults to 4),
        encoder_kernel_size (`int`, defaults to 5):
            Width, depth and kernel of the encoder's convolution stack.
        decoder_channels (`int`, defaults to 32), decoder_layers (`int`, defaults to 6):
            Width and number of gated layers of the Gated PixelCNN decoder.
        decoder_first_kernel_size (`int`, defaults to 7), decoder_kernel_size (`int`,
        defaults to 3):
            Kernel of the first (mask A) layer and of the gated layers.
        **kwargs: the latent family of `VAEConfig` (`latent_size`, `prior`, `ar1_alpha`,
            `committed_rate`, ...). `latent_length` is derived: image_size² positions for
            the anticausal encoder, 1 for the resnet one.
    """

    model_type = "delta_vae"

    def __init__(
        self,
        image_size: int = 28,
        num_channels: int = 1,
        output_distribution: str = "bernoulli",
        encoder_type: str = "anticausal",
        encoder_channels: int = 32,
        encoder_layers: int = 4,
        encoder_kernel_size: int = 5,
        decoder_channels: int = 32,
        decoder_layers: int = 6,
        decoder_first_kernel_size: int = 7,
        decoder_kernel_size: int = 3,
        latent_size: int = 2,
        **kwargs: Any,
    ) -> None:
        self.image_size = image_size
        self.num_channels = num_channels
        self.output_distribution = output_distribution
        self.encoder_type = encoder_type
        self.encoder_channels = encoder_channels
        self.encoder_layers = encoder_layers
        self.encoder_kernel_size = encoder_kernel_size
        self.decoder_channels = decoder_channels
        self.decoder_layers = decoder_layers
        self.decoder_first_kernel_size = decoder_first_kernel_size
        self.decoder_kernel_size = decoder_kernel_size
        check_int("image_size", image_size, minimum=2)
        check_choice("encoder_type", encoder_type, IMAGE_ENCODERS)
        positions = image_size * image_size if encoder_type == "anticausal" else 1
        given = kwargs.pop("latent_length", positions)
        if given != positions:
            raise _fail(
                "latent_length",
                given,
                f"it follows from the encoder: {positions} for encoder_type="
                f"{encoder_type!r} at image_size={image_size}; leave it unset",
            )
        super().__init__(latent_size=latent_size, latent_length=positions, **kwargs)

    def _validate(self) -> None:
        super()._validate()
        check_pixel_decoder(self)
        for field in ("encoder_channels", "encoder_layers"):
            check_int(field, getattr(self, field))
        _check_kernel("encoder_kernel_size", self.encoder_kernel_size)
        if self.encoder_type == "resnet" and self.prior == "ar1":
            raise _fail(
                "prior",
                self.prior,
                "the resnet encoder gives one latent vector; "
                "AR(1) latents need encoder_type='anticausal'",
            )

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The latent of one image: `(positions, channels)` in raster order, or `(channels,)`."""
        if self.encoder_type == "resnet":
            return (self.latent_size,)
        return (self.latent_length, self.latent_size)

    @property
    def num_dims(self) -> int:
        """D, the pixel values of one image (the bits/dim denominator)."""
        return self.num_channels * self.image_size * self.image_size


PIXEL_DECODER_FIELDS = (
    "image_size", "num_channels", "output_distribution", "decoder_channels",
    "decoder_layers", "decoder_first_kernel_size", "decoder_kernel_size",
)  # fmt: skip
# Their defaults, as `DeltaVAEConfig` declares them: the PixelCNN's config takes them from
# there.
PIXEL_DECODER_DEFAULTS = declared_defaults(DeltaVAEConfig, PIXEL_DECODER_FIELDS)
