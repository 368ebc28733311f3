"""`TextLMConfig`: the exact baseline of the text VAE, its LSTM decoder with no latent, with
the same decoder fields and presets as `TextVAEConfig`."""

from __future__ import annotations

from typing import Any

from vaehub.models.configuration_utils import CheckedConfig, _fail, set_declared
from vaehub.models.text.configuration_text_vae import (
    TEXT_DECODER_DEFAULTS,
    TEXT_DECODER_FIELDS,
    TEXT_PRESETS,
    TextVAEConfig,
    check_text_decoder,
)


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

    def __init__(self, **kwargs: Any) -> None:
        set_declared(self, kwargs, TEXT_DECODER_DEFAULTS)
        self._validate()
        super().__init__(
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
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
