"""The exact baseline of the text VAE: its LSTM decoder trained with no latent.

    input_ids ─▶ embedding (dropout) → LSTM (zero state) → dropout → linear → logits

Its NLL is exact, −log p(x) = Σ_t −log p(x_t | x_<t), so a text VAE of the same decoder
that reaches it within noise uses its latent at no cost in likelihood (He et al.'s
"LSTM-LM"). It trains with `VAETrainer` (objective `elbo`: the ELBO of a model without a
latent is its log-likelihood) and is measured by `vaehub.evaluation.metrics.evaluate_vae` like every
vaehub model; `TextVAEModel.from_decoder` starts a VAE from its weights (Li et al. 2019).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformers import GenerationMixin, PreTrainedTokenizerBase
from transformers.modeling_outputs import CausalLMOutputWithPast

from vaehub.models.modeling_utils import VAEPreTrainedModel, checked_num_samples
from vaehub.models.outputs import ELBOOutput
from vaehub.models.text.configuration_text_lm import TextLMConfig
from vaehub.models.text.decoding import decoding_options
from vaehub.models.text.lstm_decoder import DecoderState, TextDecoder, TextModelMixin


@dataclass
class TextLMOutput(ELBOOutput):
    """The exact negative log-likelihood of a batch of sentences (`ELBOOutput`'s fields:
    `reconstruction_nll` is −log p(x) summed over target tokens, `kl` zeros), and:

    Attributes:
        logits: `(batch, seq_len − 1, vocab_size)` the prediction of `input_ids[:, 1:]`.
        num_tokens: `(batch,)` target tokens per sentence, `</s>` included.
    """

    logits: Tensor | None = None
    num_tokens: Tensor | None = None


class TextLMPreTrainedModel(VAEPreTrainedModel):
    config_class = TextLMConfig
    base_model_prefix = "text_lm"
    main_input_name = "input_ids"
    accepts_loss_kwargs = False


class TextLMModel(TextModelMixin, TextLMPreTrainedModel, GenerationMixin):
    """LSTM language model: the text VAE's decoder without a latent, exact NLL and PPL.

    Attach a tokenizer (`model.tokenizer = build_tokenizer(...)`) for the string-level
    methods; it is saved and loaded with the model.
    """

    has_latent = False

    def __init__(self, config: TextLMConfig) -> None:
        super().__init__(config)
        self.decoder = TextDecoder(config, latent_size=0)
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.post_init()
        self.generation_config.max_length = config.max_sequence_length
        # Without a latent to vary, greedy decoding gives one sentence however many are
        # asked for: sample unless told otherwise.
        self.generation_config.do_sample = True

    def log_likelihood(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, **unused: Any
    ) -> Tensor:
        """log p(x) in nats per sentence `(batch,)`, exact, summed over target tokens."""
        input_ids, attention_mask = self._check_ids(input_ids, attention_mask)
        nll, _ = self.decoder.token_nll(input_ids, attention_mask, None, keep_logits=False)
        return -nll

    def score(self, texts: str | Sequence[str]) -> Tensor:
        """log p(x) in nats of sentences given as strings: `(batch,)`."""
        input_ids, attention_mask = self._as_ids(texts, None)
        with torch.no_grad():
            return self.log_likelihood(input_ids, attention_mask)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        decoding: bool = False,
        cache: DecoderState | None = None,
        use_cache: bool | None = None,
        return_dict: bool | None = None,
        return_logits: bool = True,
        **kwargs: Any,
    ) -> TextLMOutput | CausalLMOutputWithPast:
        """The exact NLL of a batch of sentences.

        Args:
            input_ids: `(batch, seq_len)` `<s> w₁ … wₙ </s>`, right-padded.
            attention_mask: `(batch, seq_len)` 1 on tokens, 0 on padding.
            decoding, cache: the step `generate` takes (`decoding=True`, then the decoder
                state it hands back); returns `CausalLMOutputWithPast`.
            return_logits: `False` leaves `logits` out (the fused loss, as training runs).
        """
        if decoding or cache is not None:
            return self._decoder_step(input_ids, None, cache)
        batch = self.checked_batch(input_ids, attention_mask)
        nll, logits = self._training_nll(batch, None, return_logits)
        return TextLMOutput(
            loss=nll.mean(),
            reconstruction_nll=nll,
            kl=torch.zeros_like(nll),
            logits=logits,
            **self.output_extras(batch),
        )

    @torch.no_grad()
    def generate(
        self, num_samples: int | None = None, generation_config: Any = None, **kwargs: Any
    ) -> Tensor:
        """Sample or decode `num_samples` (default 1) sentences from `<s>` with any strategy
        of transformers' `generate` (`do_sample`, `temperature`, `top_k`, `num_beams`...).

        Returns:
            `(num_samples · num_return_sequences, steps)` token ids starting with `<s>`.
        """
        count = checked_num_samples(num_samples)
        return self._generate_from_start(count, generation_config, kwargs, decoding=True)

    def generate_sentences(
        self, num_samples: int | None = None, allow_unk: bool = False, **generation_kwargs: Any
    ) -> list[str]:
        """`num_samples` sentences, as strings; keyword arguments as for `generate`.
        `<unk>` is kept out of the text unless `allow_unk=True`."""
        options = decoding_options(self, None, generation_kwargs, allow_unk)
        return self.decode_ids(self.generate(num_samples, **options))
