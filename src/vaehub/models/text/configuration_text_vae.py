"""`TextVAEConfig`: the LSTM text VAE (Bowman et al. 2016, in He et al. 2019's sizes), the
papers' presets (`TEXT_PRESETS`), and the decoder fields it shares with its baseline."""

from __future__ import annotations

import math
from typing import Any

from vaehub.models.configuration_utils import (
    VAEConfig,
    _fail,
    check_float,
    check_int,
    declared_defaults,
)

TEXT_PRESETS: dict[str, dict[str, Any]] = {
    # He et al. 2019, Yahoo and Yelp: 512 / 1024 / 1024, z = 32.
    "yahoo": dict(
        embedding_size=512, encoder_hidden_size=1024, decoder_hidden_size=1024, latent_size=32
    ),
    "yelp": dict(
        embedding_size=512, encoder_hidden_size=1024, decoder_hidden_size=1024, latent_size=32
    ),
    # Li et al. 2019, short Yelp and SNLI: embeddings 128, LSTMs 512 / 512, z = 32.
    "short_yelp": dict(
        embedding_size=128, encoder_hidden_size=512, decoder_hidden_size=512, latent_size=32
    ),
    "snli": dict(
        embedding_size=128, encoder_hidden_size=512, decoder_hidden_size=512, latent_size=32
    ),
    # The PTB setting: 256 / 256 / 256, z = 32. PTB's vocabulary is 10,002 tokens (its 9,998
    # words besides <unk>, plus the 4 special tokens); `vaehub train` sets vocab_size to the
    # tokenizer's size.
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


# The decoder's fields, shared by a text VAE and its language model without a latent.
TEXT_DECODER_FIELDS = (
    "vocab_size", "embedding_size", "decoder_hidden_size", "decoder_embedding_dropout",
    "decoder_output_dropout", "word_dropout", "max_sequence_length", "init_range",
    "embedding_init_range", "pad_token_id", "unk_token_id", "bos_token_id", "eos_token_id",
)  # fmt: skip
# Their defaults, as `TextVAEConfig` declares them: the language model's config takes them
# from there.
TEXT_DECODER_DEFAULTS = declared_defaults(TextVAEConfig, TEXT_DECODER_FIELDS)
