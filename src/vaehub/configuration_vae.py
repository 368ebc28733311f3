"""Configurations shared by every vaehub model.

`VAEConfig` holds what all VAEs share: the latent size and the prior/posterior family,
with one way to state a committed rate (Razavi et al. 2019, §2). Model configs subclass it.

Every value is checked on construction; a bad one raises `ValueError` naming the field,
the value and what is accepted. Configs loaded with `from_pretrained` are checked again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedConfig

from vaehub import priors
from vaehub.posteriors import POSTERIOR_FAMILIES

PRIOR_FAMILIES = ("standard", "constrained", "ar1")
# Defaults of the richer posteriors (the flows and the auxiliary family of `vaehub.posteriors`)
# when their sizes are not given.
DEFAULT_FLOW_LENGTH = {"planar": 8, "iaf": 2}
DEFAULT_POSTERIOR_HIDDEN_SIZE = 64
ALPHA_SPREADS = ("shared", "linear")


def _fail(field: str, value: Any, accepted: str) -> ValueError:
    return ValueError(f"{field}={value!r} is not valid: {accepted}.")


def check_int(field: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(field, value, f"expected an integer >= {minimum}")
    return value


def check_float(
    field: str,
    value: Any,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok_type and math.isfinite(value):
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if above and below:
            return float(value)
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    raise _fail(field, value, f"expected a number in {lo}{low}, {high}{hi}")


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(field, value, f"expected one of {', '.join(map(repr, choices))}")
    return value


class CheckedConfig(PreTrainedConfig):
    """A config whose every value is checked on construction, on `validate()` and after
    `from_pretrained(..., field=value)` overrides, and whose equality sees every field."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # transformers turns every subclass into a dataclass whose generated __eq__ only
        # sees dataclass fields, not the attributes set in __init__; compare everything.
        cls.__eq__ = CheckedConfig.__eq__
        cls.__hash__ = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PreTrainedConfig):
            return NotImplemented

        # Where a config was loaded from says nothing about the model it describes.
        def values(config: PreTrainedConfig) -> dict[str, Any]:
            return {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}

        return type(self) is type(other) and values(self) == values(other)

    __hash__ = None

    def _validate(self) -> None:
        """Check every field; subclasses extend this."""

    def validate(self) -> None:
        """Check every value again (after attributes were changed by hand)."""
        self._validate()

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any):
        # transformers applies `from_pretrained(..., field=value)` overrides after
        # __init__, which would skip validation; check again once they are in.
        out = super().from_dict(config_dict, **kwargs)
        config = out[0] if isinstance(out, tuple) else out
        config.validate()
        return out


class VAEConfig(CheckedConfig):
    r"""What every vaehub VAE shares: the latent code and its prior/posterior family.

    Args:
        latent_size (`int`, defaults to 32):
            Channels d of the latent code: z has shape `(latent_size,)`, or
            `(latent_length, latent_size)` for sequential AR(1) latents.
        prior (`str`, defaults to `"standard"`):
            `"standard"`: p(z) = N(0, I), unconstrained diagonal Gaussian posterior.
            `"constrained"`: p(z) = N(0, I), posterior σ held in
            [`posterior_std_min`, `posterior_std_max`] with `posterior_std_max` < 1, so
            KL ≥ δ (δ-VAE). `"ar1"`: every channel is an AR(1) process over
            `latent_length` positions with coefficient α_k, so KL ≥ δ (δ-VAE).
        posterior_std_min (`float`, defaults to 1e-3):
            σ_l of the constrained family.
        posterior_std_max (`float`, *optional*):
            σ_u of the constrained family. Give this or `committed_rate`.
        ar1_alpha (`float` or `list[float]`, *optional*):
            α of the AR(1) family, one value shared by all channels or one per channel,
            each in [0, 1). Give this or `committed_rate`.
        ar1_alpha_spread (`str`, defaults to `"shared"`):
            How α is resolved from `committed_rate`: `"shared"` (one α for all channels)
            or `"linear"` (α_k = s·(k+1)/d, a spread of time scales, s solved for).
        latent_length (`int`, defaults to 1):
            Positions n of the latent sequence at which the committed rate is stated.
        committed_rate (`float`, *optional*):
            Target δ in nats per example. For `"constrained"` it resolves
            `posterior_std_max`; for `"ar1"` it resolves `ar1_alpha`. After construction
            it always holds the committed rate of the resolved family (0 for
            `"standard"`).
        posterior (`str`, defaults to `"gaussian"`):
            The family of q(z|x) (`vaehub.posteriors`): `"gaussian"` (diagonal, σ as the
            prior family says), `"planar"` or `"iaf"` (that Gaussian through a
            normalizing flow of `flow_length` steps conditioned on the encoder's
            features), or `"auxiliary"` (an auxiliary variable v of `auxiliary_size`
            with q(v|x) q(z|v,x) and a reverse model r(v|x,z)). A flow or auxiliary
            posterior no longer guarantees KL ≥ δ: that is a property of the Gaussian
            families of `"constrained"` and `"ar1"`.
        flow_length (`int`, *optional*):
            Steps of a flow posterior (0 is the Gaussian itself); default 8 planar, 2 IAF.
        posterior_hidden_size (`int`, *optional*):
            Hidden units of the IAF's MADE and the auxiliary family's networks (64).
        auxiliary_size (`int`, *optional*):
            Channels of the auxiliary variable v (default `latent_size`).
    """

    model_type = "vae"

    def __init__(
        self,
        latent_size: int = 32,
        prior: str = "standard",
        posterior_std_min: float = 1e-3,
        posterior_std_max: float | None = None,
        ar1_alpha: float | list[float] | None = None,
        ar1_alpha_spread: str = "shared",
        latent_length: int = 1,
        committed_rate: float | None = None,
        posterior: str = "gaussian",
        flow_length: int | None = None,
        posterior_hidden_size: int | None = None,
        auxiliary_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.latent_size = latent_size
        self.prior = prior
        self.posterior_std_min = posterior_std_min
        self.posterior_std_max = posterior_std_max
        self.ar1_alpha = ar1_alpha
        self.ar1_alpha_spread = ar1_alpha_spread
        self.latent_length = latent_length
        self.committed_rate = committed_rate
        self.posterior = posterior
        self.flow_length = flow_length
        self.posterior_hidden_size = posterior_hidden_size
        self.auxiliary_size = auxiliary_size
        self._validate()
        super().__init__(**kwargs)

    def _validate(self) -> None:
        """Check every field and resolve the committed rate; subclasses extend this."""
        check_int("latent_size", self.latent_size)
        check_choice("prior", self.prior, PRIOR_FAMILIES)
        check_int("latent_length", self.latent_length)
        check_choice("ar1_alpha_spread", self.ar1_alpha_spread, ALPHA_SPREADS)
        check_float(
            "posterior_std_min", self.posterior_std_min, 0.0, 1.0, low_open=True, high_open=True
        )
        if self.committed_rate is not None:
            check_float("committed_rate", self.committed_rate, 0.0, math.inf, high_open=True)

        if self.prior == "standard":
            self._reject_unused(("posterior_std_max", "ar1_alpha"))
            if self.committed_rate not in (None, 0, 0.0):
                raise _fail(
                    "committed_rate",
                    self.committed_rate,
                    "prior='standard' commits to no rate; use prior='constrained' "
                    "or 'ar1' to state a positive committed_rate",
                )
            self.committed_rate = 0.0
        elif self.prior == "constrained":
            self._reject_unused(("ar1_alpha",))
            self._resolve_constrained()
        else:
            self._reject_unused(("posterior_std_max",))
            self._resolve_ar1()
        self._resolve_posterior()

    def _reject_unused(self, fields: tuple[str, ...], by: str = "prior") -> None:
        for field in fields:
            value = getattr(self, field)
            if value is not None:
                raise _fail(
                    field, value, f"it is not used by {by}={getattr(self, by)!r}; leave it unset"
                )

    def _resolve_posterior(self) -> None:
        check_choice("posterior", self.posterior, POSTERIOR_FAMILIES)
        if self.posterior == "gaussian":
            self._reject_unused(
                ("flow_length", "posterior_hidden_size", "auxiliary_size"), "posterior"
            )
            return
        if self.posterior in DEFAULT_FLOW_LENGTH:
            self._reject_unused(("auxiliary_size",), "posterior")
            if self.flow_length is None:
                self.flow_length = DEFAULT_FLOW_LENGTH[self.posterior]
            check_int("flow_length", self.flow_length, minimum=0)
        else:
            self._reject_unused(("flow_length",), "posterior")
            if self.auxiliary_size is None:
                self.auxiliary_size = self.latent_size
            check_int("auxiliary_size", self.auxiliary_size)
        if self.posterior_hidden_size is None:
            self.posterior_hidden_size = DEFAULT_POSTERIOR_HIDDEN_SIZE
        check_int("posterior_hidden_size", self.posterior_hidden_size)

    def _resolve_constrained(self) -> None:
        # Every latent value is constrained: latent_size channels at latent_length positions.
        d = self.latent_size * self.latent_length
        if self.posterior_std_max is None:
            if self.committed_rate is None:
                raise _fail(
                    "posterior_std_max",
                    None,
                    "prior='constrained' needs posterior_std_max (σ_u < 1) or a target "
                    "committed_rate (nats)",
                )
            self.posterior_std_max = priors.std_max_for_committed_rate(self.committed_rate, d)
        check_float(
            "posterior_std_max",
            self.posterior_std_max,
            self.posterior_std_min,
            1.0,
            low_open=True,
            high_open=True,
        )
        rate = priors.constrained_committed_rate(self.posterior_std_max, d)
        self._check_rate_agrees(rate)

    def _resolve_ar1(self) -> None:
        d, n = self.latent_size, self.latent_length
        if self.ar1_alpha is None:
            if self.committed_rate is None:
                raise _fail(
                    "ar1_alpha",
                    None,
                    "prior='ar1' needs ar1_alpha (in [0, 1)) or a target committed_rate (nats)",
                )
            if n < 2:
                raise _fail(
                    "latent_length",
                    n,
                    "an AR(1) prior commits to a rate only over 2 or more positions",
                )
            alphas = priors.ar1_alpha_for_committed_rate(
                self.committed_rate, d, n, self.ar1_alpha_spread
            )
            self.ar1_alpha = alphas[0] if self.ar1_alpha_spread == "shared" else alphas
        alphas = self.ar1_alpha if isinstance(self.ar1_alpha, list) else [self.ar1_alpha]
        if len(alphas) not in (1, d):
            raise _fail("ar1_alpha", self.ar1_alpha, f"expected one α or latent_size={d} of them")
        for alpha in alphas:
            check_float("ar1_alpha", alpha, 0.0, 1.0, high_open=True)
        rate = priors.ar1_committed_rate(self.ar1_alphas(), n)
        self._check_rate_agrees(rate)

    def _check_rate_agrees(self, rate: float) -> None:
        if self.committed_rate is not None and not math.isclose(
            rate, self.committed_rate, rel_tol=1e-6, abs_tol=1e-6
        ):
            raise _fail(
                "committed_rate",
                self.committed_rate,
                f"the family's parameters commit to {rate:.6g} nats; give either the "
                "parameters or the committed_rate, not both",
            )
        self.committed_rate = rate

    def ar1_alphas(self) -> list[float]:
        """The AR(1) coefficient of every channel, `latent_size` values."""
        if self.ar1_alpha is None:
            return []
        alphas = self.ar1_alpha if isinstance(self.ar1_alpha, list) else [self.ar1_alpha]
        if len(alphas) == 1:
            alphas = alphas * self.latent_size
        return [float(a) for a in alphas]


TEXT_PRESETS: dict[str, dict[str, Any]] = {
    # He et al. 2019, Yahoo and Yelp: 512 / 1024 / 1024, z = 32.
    "yahoo": dict(
        embedding_size=512, encoder_hidden_size=1024, decoder_hidden_size=1024, latent_size=32
    ),
    "yelp": dict(
        embedding_size=512, encoder_hidden_size=1024, decoder_hidden_size=1024, latent_size=32
    ),
    # The PTB setting: 256 / 256 / 256, z = 32. PTB's vocabulary is 10,002 tokens (its 9,998
    # words besides <unk>, plus the 4 special tokens); the 10004 below is only a default, and
    # `vaehub train` sets vocab_size to the tokenizer's size.
    "ptb": dict(
        embedding_size=256,
        encoder_hidden_size=256,
        decoder_hidden_size=256,
        latent_size=32,
        vocab_size=10004,
    ),
    # He et al. 2019 synthetic data: embedding 50, hidden 50, latent 2, vocabulary 1000.
    "synthetic": dict(
        embedding_size=50,
        encoder_hidden_size=50,
        decoder_hidden_size=50,
        latent_size=2,
        vocab_size=1004,
        max_sequence_length=12,
    ),
}


def check_text_decoder(config: Any) -> None:
    """Check the fields of the LSTM decoder a text VAE and a text LM share."""
    check_int("vocab_size", config.vocab_size, minimum=5)
    for field in ("embedding_size", "decoder_hidden_size"):
        check_int(field, getattr(config, field))
    for field in ("decoder_embedding_dropout", "decoder_output_dropout", "word_dropout"):
        check_float(field, getattr(config, field), 0.0, 1.0, high_open=True)
    check_int("max_sequence_length", config.max_sequence_length, minimum=2)
    for field in ("init_range", "embedding_init_range"):
        check_float(field, getattr(config, field), 0.0, math.inf, low_open=True, high_open=True)
    ids = {}
    for field in ("pad_token_id", "unk_token_id", "bos_token_id", "eos_token_id"):
        value = getattr(config, field)
        check_int(field, value, minimum=0)
        if value >= config.vocab_size:
            raise _fail(field, value, f"expected an id below vocab_size={config.vocab_size}")
        if value in ids:
            raise _fail(field, value, f"it is already the id of {ids[value]}")
        ids[value] = field


class TextVAEConfig(VAEConfig):
    r"""Configuration of `TextVAEModel`, the LSTM text VAE of Bowman et al. 2016
    in He et al. 2019's configuration.

    Args:
        vocab_size (`int`, defaults to 10004):
            Number of tokens, special tokens included.
        embedding_size (`int`, defaults to 256):
            Word embedding size of the encoder and of the decoder.
        encoder_hidden_size (`int`, defaults to 256):
            Hidden size of the encoder LSTM.
        decoder_hidden_size (`int`, defaults to 256):
            Hidden size of the decoder LSTM.
        decoder_embedding_dropout (`float`, defaults to 0.5):
            Dropout on the decoder's input embeddings.
        decoder_output_dropout (`float`, defaults to 0.5):
            Dropout on the decoder LSTM's outputs before the vocabulary layer.
        word_dropout (`float`, defaults to 0.0):
            Bowman's word dropout: in training, each decoder input word is replaced by
            `<unk>` with this probability. 0 turns it off.
        max_sequence_length (`int`, defaults to 128):
            Longest token sequence the model takes, `<s>` and `</s>` included. Longer
            sentences are truncated with a warning.
        init_range (`float`, defaults to 0.01):
            Parameters are initialised U(−init_range, init_range) (He et al.).
        embedding_init_range (`float`, defaults to 0.1):
            Embeddings are initialised U(−embedding_init_range, embedding_init_range).
        pad_token_id, unk_token_id, bos_token_id, eos_token_id (`int`):
            Ids of `<pad>`, `<unk>`, `<s>` and `</s>`: 0, 1, 2, 3.
        **kwargs: the latent family of `VAEConfig` (`latent_size`, `prior`, ...). With
            `prior="ar1"` the text δ-VAE has one latent per decoder step (an AR(1)
            sequence, anti-causal encoder); its committed rate is stated for sentences of
            `latent_length` steps, by default the longest (`max_sequence_length − 1`);
            a sentence of n steps commits to δ(n) (`TextVAEModel.committed_rate_for`).
    """

    model_type = "text_vae"

    def __init__(
        self,
        vocab_size: int = 10004,
        embedding_size: int = 256,
        encoder_hidden_size: int = 256,
        decoder_hidden_size: int = 256,
        decoder_embedding_dropout: float = 0.5,
        decoder_output_dropout: float = 0.5,
        word_dropout: float = 0.0,
        max_sequence_length: int = 128,
        init_range: float = 0.01,
        embedding_init_range: float = 0.1,
        pad_token_id: int = 0,
        unk_token_id: int = 1,
        bos_token_id: int = 2,
        eos_token_id: int = 3,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.encoder_hidden_size = encoder_hidden_size
        self.decoder_hidden_size = decoder_hidden_size
        self.decoder_embedding_dropout = decoder_embedding_dropout
        self.decoder_output_dropout = decoder_output_dropout
        self.word_dropout = word_dropout
        self.max_sequence_length = max_sequence_length
        self.init_range = init_range
        self.embedding_init_range = embedding_init_range
        self.unk_token_id = unk_token_id
        # The three transformers knows are also set by the base class; set them first so
        # that validation, which runs before it, sees them.
        self.pad_token_id = pad_token_id
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        if kwargs.get("prior") == "ar1" and "latent_length" not in kwargs:
            # Sequential latents, one per decoder step: state the committed rate for the
            # longest sentence unless told another length.
            kwargs["latent_length"] = max_sequence_length - 1
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            **kwargs,
        )

    def _validate(self) -> None:
        super()._validate()
        check_int("encoder_hidden_size", self.encoder_hidden_size)
        check_text_decoder(self)
        if self.prior != "ar1" and self.latent_length != 1:
            # One latent per sentence: a length would silently mean nothing.
            raise _fail(
                "latent_length",
                self.latent_length,
                "only the text δ-VAE (prior='ar1') has one latent per step; drop it",
            )

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TextVAEConfig:
        """A paper configuration: `"ptb"`, `"yahoo"`, `"yelp"` or `"synthetic"`.

        Keyword arguments override the preset, e.g. `vocab_size=` for your tokenizer.
        """
        if name not in TEXT_PRESETS:
            raise _fail("preset", name, f"expected one of {', '.join(map(repr, TEXT_PRESETS))}")
        return cls(**{**TEXT_PRESETS[name], **overrides})


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


# The decoder's fields, shared by a text VAE and its language model without a latent.
TEXT_DECODER_FIELDS = (
    "vocab_size", "embedding_size", "decoder_hidden_size", "decoder_embedding_dropout",
    "decoder_output_dropout", "word_dropout", "max_sequence_length", "init_range",
    "embedding_init_range", "pad_token_id", "unk_token_id", "bos_token_id", "eos_token_id",
)  # fmt: skip


class TextLMConfig(CheckedConfig):
    r"""Configuration of `TextLMModel`: the text VAE's LSTM decoder with no latent, an
    exact language model ("LSTM-LM" in He et al. 2019, Table 1).

    Args:
        vocab_size, embedding_size, decoder_hidden_size, decoder_embedding_dropout,
        decoder_output_dropout, word_dropout, max_sequence_length, init_range,
        embedding_init_range, pad_token_id, unk_token_id, bos_token_id, eos_token_id:
            as in `TextVAEConfig`, with the same defaults: the decoder of a text VAE of
            that config, minus its latent input and latent-initialised state.
    """

    model_type = "text_lm"

    def __init__(
        self,
        vocab_size: int = 10004,
        embedding_size: int = 256,
        decoder_hidden_size: int = 256,
        decoder_embedding_dropout: float = 0.5,
        decoder_output_dropout: float = 0.5,
        word_dropout: float = 0.0,
        max_sequence_length: int = 128,
        init_range: float = 0.01,
        embedding_init_range: float = 0.1,
        pad_token_id: int = 0,
        unk_token_id: int = 1,
        bos_token_id: int = 2,
        eos_token_id: int = 3,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.decoder_hidden_size = decoder_hidden_size
        self.decoder_embedding_dropout = decoder_embedding_dropout
        self.decoder_output_dropout = decoder_output_dropout
        self.word_dropout = word_dropout
        self.max_sequence_length = max_sequence_length
        self.init_range = init_range
        self.embedding_init_range = embedding_init_range
        self.unk_token_id = unk_token_id
        self.pad_token_id = pad_token_id
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self._validate()
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            **kwargs,
        )

    def _validate(self) -> None:
        check_text_decoder(self)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TextLMConfig:
        """The decoder of a paper configuration (`"ptb"`, `"yahoo"`, `"yelp"`,
        `"synthetic"`); keyword arguments override it."""
        if name not in TEXT_PRESETS:
            raise _fail("preset", name, f"expected one of {', '.join(map(repr, TEXT_PRESETS))}")
        preset = {k: v for k, v in TEXT_PRESETS[name].items() if k in TEXT_DECODER_FIELDS}
        return cls(**{**preset, **overrides})

    @classmethod
    def from_vae_config(cls, config: TextVAEConfig) -> TextLMConfig:
        """The language model of a text VAE's decoder: the same sizes, dropout and ids."""
        return cls(**{field: getattr(config, field) for field in TEXT_DECODER_FIELDS})


PIXEL_DECODER_FIELDS = (
    "image_size", "num_channels", "output_distribution", "decoder_channels",
    "decoder_layers", "decoder_first_kernel_size", "decoder_kernel_size",
)  # fmt: skip


class PixelCNNConfig(CheckedConfig):
    r"""Configuration of `PixelCNNModel`: the δ-VAE's Gated PixelCNN decoder with no
    conditioning, an exact image model ("PixelCNN" in He et al. 2019, Table 2).

    Args:
        image_size, num_channels, output_distribution, decoder_channels, decoder_layers,
        decoder_first_kernel_size, decoder_kernel_size:
            as in `DeltaVAEConfig`, with the same defaults.
    """

    model_type = "pixelcnn"

    def __init__(
        self,
        image_size: int = 28,
        num_channels: int = 1,
        output_distribution: str = "bernoulli",
        decoder_channels: int = 32,
        decoder_layers: int = 6,
        decoder_first_kernel_size: int = 7,
        decoder_kernel_size: int = 3,
        **kwargs: Any,
    ) -> None:
        self.image_size = image_size
        self.num_channels = num_channels
        self.output_distribution = output_distribution
        self.decoder_channels = decoder_channels
        self.decoder_layers = decoder_layers
        self.decoder_first_kernel_size = decoder_first_kernel_size
        self.decoder_kernel_size = decoder_kernel_size
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


class LinearVAEConfig(VAEConfig):
    r"""Configuration of `LinearVAEModel` (Lucas et al. 2019).

    Args:
        input_size (`int`, defaults to 784):
            D, the dimension of an observation x.
        latent_size (`int`, defaults to 16):
            k, the dimension of z.
        observation_variance (`float`, defaults to 0.1):
            σ² of p(x|z) = N(f(z), σ²I): the fixed value, or the initial one when learned.
        learn_observation_variance (`bool`, defaults to `False`):
            Train σ² with the other weights (as maximum likelihood pPCA does); fixed σ² is
            the setting of Lucas et al.'s collapse experiments.
        hidden_sizes (`list[int]`, defaults to `[]`):
            Empty: the linear VAE. Otherwise the widths of the hidden layers of an MLP
            encoder (D → h₁ → … → 2k) and decoder (k → … → h₁ → D), tanh activations,
            with an input-dependent diagonal Gaussian posterior.
        **kwargs: `VAEConfig`'s; only `prior="standard"` and `posterior="gaussian"`.
    """

    model_type = "linear_vae"

    def __init__(
        self,
        input_size: int = 784,
        latent_size: int = 16,
        observation_variance: float = 0.1,
        learn_observation_variance: bool = False,
        hidden_sizes: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.input_size = input_size
        self.observation_variance = observation_variance
        self.learn_observation_variance = learn_observation_variance
        # A tuple is a list once through JSON; anything else is left for _validate to refuse.
        self.hidden_sizes = [] if hidden_sizes is None else hidden_sizes
        if isinstance(self.hidden_sizes, tuple):
            self.hidden_sizes = list(self.hidden_sizes)
        super().__init__(latent_size=latent_size, **kwargs)

    def _validate(self) -> None:
        super()._validate()
        if self.prior != "standard":
            raise _fail("prior", self.prior, "the linear VAE has p(z) = N(0, I): 'standard'")
        if self.posterior != "gaussian":
            raise _fail(
                "posterior", self.posterior, "the linear VAE has a diagonal Gaussian: 'gaussian'"
            )
        check_int("input_size", self.input_size)
        check_float(
            "observation_variance",
            self.observation_variance,
            0.0,
            math.inf,
            low_open=True,
            high_open=True,
        )
        if not isinstance(self.learn_observation_variance, bool):
            raise _fail("learn_observation_variance", self.learn_observation_variance, "a bool")
        if not isinstance(self.hidden_sizes, list):
            raise _fail("hidden_sizes", self.hidden_sizes, "expected a list of integers >= 1")
        for size in self.hidden_sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise _fail("hidden_sizes", self.hidden_sizes, "expected a list of integers >= 1")

    @property
    def is_linear(self) -> bool:
        """Whether this is the linear VAE (no hidden layer)."""
        return not self.hidden_sizes
