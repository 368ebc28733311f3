"""The LSTM text VAE of Bowman et al. 2016 in the configuration of He et al. 2019 (SPEC §5).

    input_ids ─▶ encoder: embedding → LSTM → last hidden state h → linear → (μ, scale)
                          └─▶ posterior q(z|x) of config.posterior from (μ, scale, h)
    z ~ q(z|x) ─▶ decoder: [embedding (dropout) ; z] every step → LSTM with state from z
                          → dropout → linear → logits over the vocabulary

The model returns the ELBO's parts per example, never weighted: weighting them is the
trainer's job. Generation runs the decoder as a language model conditioned on z through
transformers' `generate` (greedy, sampling, beam search and every logits processor).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import GenerationMixin, PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.utils import ModelOutput

from vaehub.configuration_vae import TextVAEConfig
from vaehub.modeling_utils import VAEPreTrainedModel, in_loss_precision, interpolate_latents
from vaehub.posteriors import PosteriorHead, PosteriorParameters
from vaehub.priors import LatentPrior, prior_from_config
from vaehub.tokenization import (
    check_texts,
    check_tokenizer_fits,
    load_tokenizer,
    pad_rows,
    truncate_rows,
)

# Token rows scored per output-layer pass when no logits are returned (see _reconstruction_nll).
SCORING_BLOCK_ROWS = 512


@dataclass
class TextVAEOutput(ModelOutput):
    """The ELBO's parts for a batch of sentences.

    Attributes:
        loss: `()` mean over the batch of the negative ELBO, reconstruction_nll + kl.
        reconstruction_nll: `(batch,)` −log p(x|z) in nats, summed over target tokens.
        kl: `(batch,)` KL(q(z|x) ‖ p(z)) in nats.
        kl_per_dim: `(batch, latent_size)` the KL split over latent dimensions (`None`
            for a posterior family whose KL has no closed form).
        logits: `(batch, seq_len − 1, vocab_size)` the decoder's prediction of
            `input_ids[:, 1:]`.
        z: `(batch, latent_size)` the latent the decoder was given.
        posterior_mean: `(batch, latent_size)` mean of q(z|x).
        posterior_std: `(batch, latent_size)` standard deviation of a Gaussian q(z|x).
        num_tokens: `(batch,)` target tokens per sentence, `</s>` included.
    """

    loss: Tensor | None = None
    reconstruction_nll: Tensor | None = None
    kl: Tensor | None = None
    kl_per_dim: Tensor | None = None
    logits: Tensor | None = None
    z: Tensor | None = None
    posterior_mean: Tensor | None = None
    posterior_std: Tensor | None = None
    num_tokens: Tensor | None = None


class DecoderState:
    """The decoder LSTM's (h, c) while `generate` steps through a sentence.

    Attributes:
        h, c: `(1, batch, decoder_hidden_size)`.
        z: `(batch, latent_size)` the latent being decoded, reordered with the beams.
    """

    def __init__(self, h: Tensor, c: Tensor, z: Tensor, length: int) -> None:
        self.h, self.c, self.z, self.length = h, c, z, length

    def reorder_cache(self, beam_idx: Tensor) -> None:
        self.h = self.h.index_select(1, beam_idx.to(self.h.device))
        self.c = self.c.index_select(1, beam_idx.to(self.c.device))
        self.z = self.z.index_select(0, beam_idx.to(self.z.device))

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length


class TextVAEEncoder(nn.Module):
    """Embedding → LSTM → last hidden state → linear → (μ, scale parameter).

    With sequential (AR(1)) latents the LSTM reads each sentence right to left and every
    position gets its own (μ, scale): the latent of decoder step t sees tokens ≥ t only.
    """

    def __init__(self, config: TextVAEConfig) -> None:
        super().__init__()
        self.sequential = config.prior == "ar1"
        self.context_size = config.encoder_hidden_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.lstm = nn.LSTM(config.embedding_size, config.encoder_hidden_size, batch_first=True)
        # No bias, as in He et al.: a bias lets q(z|x) settle on one input-independent
        # posterior long before the LSTM has learnt anything, the quickest way to collapse.
        self.to_posterior = nn.Linear(
            config.encoder_hidden_size, 2 * config.latent_size, bias=False
        )

    def forward(self, input_ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """
        Args:
            input_ids: `(batch, seq_len)` right-padded.
            lengths: `(batch,)` tokens per sentence.
        Returns:
            mean and scale parameter of q(z|x), each `(batch, latent_size)`, or
            `(batch, seq_len − 1, latent_size)` (one per decoder step) when sequential;
            and the features they come from, `(batch, [seq_len − 1,] encoder_hidden_size)`.
        """
        if self.sequential:
            # Reverse each sentence within its own length (padding stays put), read it
            # left to right, and put the outputs back in order: position t then summarises
            # tokens t … end. The permutation is its own inverse.
            steps = torch.arange(input_ids.shape[1], device=input_ids.device)
            last = (lengths - 1).unsqueeze(1)
            order = torch.where(steps < lengths.unsqueeze(1), last - steps, steps)
            outputs, _ = self.lstm(self.embed_tokens(input_ids.gather(1, order)))
            outputs = outputs.gather(1, order.unsqueeze(-1).expand_as(outputs))[:, :-1]
            mean, scale = self.to_posterior(outputs).chunk(2, dim=-1)
            return mean, scale, outputs
        outputs, _ = self.lstm(self.embed_tokens(input_ids))
        # The LSTM reads left to right, so its output at a sentence's last token is the
        # sentence's own, whatever padding follows (and cheaper than packing).
        last = outputs[torch.arange(input_ids.shape[0], device=input_ids.device), lengths - 1]
        mean, scale = self.to_posterior(last).chunk(2, dim=-1)
        return mean, scale, last


class TextVAEDecoder(nn.Module):
    """An LSTM language model conditioned on z at every step and through its initial state."""

    def __init__(self, config: TextVAEConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.embedding_dropout = nn.Dropout(config.decoder_embedding_dropout)
        self.latent_to_state = nn.Linear(config.latent_size, config.decoder_hidden_size, bias=False)
        self.lstm = nn.LSTM(
            config.embedding_size + config.latent_size, config.decoder_hidden_size, batch_first=True
        )
        self.output_dropout = nn.Dropout(config.decoder_output_dropout)
        self.lm_head = nn.Linear(config.decoder_hidden_size, config.vocab_size, bias=False)

    def initial_state(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """`(1, batch, hidden)` twice: c₀ = W z, h₀ = tanh(c₀) (He et al.); from the first
        step's latent when z is a sequence."""
        c = self.latent_to_state(z if z.dim() == 2 else z[:, 0]).unsqueeze(0)
        return torch.tanh(c), c

    def hidden_states(
        self, input_ids: Tensor, z: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """
        Args:
            input_ids: `(batch, steps)` decoder inputs.
            z: `(batch, latent_size)`, fed at every step, or `(batch, steps, latent_size)`,
                one latent per step.
            state: (h, c) to continue from; the state built from z when `None`.
        Returns:
            outputs `(batch, steps, decoder_hidden_size)` after dropout, and the new (h, c).
        """
        embeddings = self.embedding_dropout(self.embed_tokens(input_ids))
        steps = input_ids.shape[1]
        latent = z.unsqueeze(1).expand(-1, steps, -1) if z.dim() == 2 else z[:, :steps]
        latent = latent.to(embeddings.dtype)
        outputs, state = self.lstm(
            torch.cat([embeddings, latent], dim=-1),
            state if state is not None else self.initial_state(z),
        )
        return self.output_dropout(outputs), state


class TextVAEPreTrainedModel(VAEPreTrainedModel):
    config_class = TextVAEConfig
    base_model_prefix = "text_vae"
    main_input_name = "input_ids"
    # forward takes **kwargs only for generate's bookkeeping; the loss is a per-batch mean.
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # He et al.: every parameter U(−0.01, 0.01), embeddings U(−0.1, 0.1).
        if isinstance(module, nn.Embedding):
            bound = self.config.embedding_init_range
            init.uniform_(module.weight, -bound, bound)
        elif isinstance(module, (nn.Linear, nn.LSTM)):
            bound = self.config.init_range
            for parameter in module.parameters(recurse=False):
                init.uniform_(parameter, -bound, bound)


class TextVAEModel(TextVAEPreTrainedModel, GenerationMixin):
    """LSTM text VAE (SPEC §5) with a prior family from the shared configs.

    Attach a tokenizer (`model.tokenizer = build_tokenizer(...)`) for the string-level
    methods; it is saved and loaded with the model.
    """

    def __init__(self, config: TextVAEConfig) -> None:
        super().__init__(config)
        self.encoder = TextVAEEncoder(config)
        self.decoder = TextVAEDecoder(config)
        self.posterior_head = PosteriorHead(config, self.encoder.context_size)
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.post_init()
        self.generation_config.max_length = config.max_sequence_length

    # --- the three pieces every objective and metric uses -----------------------------

    @property
    def sequential(self) -> bool:
        """One latent per decoder step (AR(1) prior), rather than one per sentence."""
        return self.config.prior == "ar1"

    @property
    def prior(self) -> LatentPrior:
        """p(z): over `(latent_size,)`, or for sequential latents over
        `(max_sequence_length − 1, latent_size)`, the most decoder steps."""
        return self._prior()

    def prior_for(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> LatentPrior:
        """p(z) for a batch: for sequential latents, each sentence's own number of steps."""
        if not self.sequential:
            return self.prior
        input_ids, attention_mask = self._check_ids(input_ids, attention_mask)
        return self._prior(attention_mask.sum(-1) - 1, input_ids.shape[1] - 1)

    def _prior(self, steps: Tensor | None = None, length: int | None = None) -> LatentPrior:
        weight = self.decoder.latent_to_state.weight
        if not self.sequential:
            return prior_from_config(self.config, device=weight.device, dtype=weight.dtype)
        return prior_from_config(
            self.config,
            latent_length=length or self.config.max_sequence_length - 1,
            device=weight.device,
            dtype=weight.dtype,
            lengths=steps,
        )

    def committed_rate_for(self, steps: int) -> float:
        """δ for a sentence of `steps` decoder steps (its tokens, `<s>` included, minus 1)."""
        return self._prior(length=max(1, steps)).committed_rate

    def encode(
        self, input_ids: str | Sequence[str] | Tensor, attention_mask: Tensor | None = None
    ) -> Any:
        """q(z|x) for sentences given as strings or as token ids.

        Args:
            input_ids: a sentence, a list of sentences, or `(batch, seq_len)` token ids
                (`<s> … </s>`, right-padded).
            attention_mask: `(batch, seq_len)` 1 on tokens, 0 on padding (ids only).
        Returns:
            the posterior of `config.posterior` (a `DiagonalGaussian` with `.mean` and
            `.std` for `"gaussian"`) over `(batch, latent_size)`, or
            `(batch, seq_len − 1, latent_size)` for sequential latents (masked past each
            sentence's steps).
        """
        input_ids, attention_mask = self._as_ids(input_ids, attention_mask)
        return self.posterior_from(self.posterior_parameters(input_ids, attention_mask))

    def posterior_parameters(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, **unused: Any
    ) -> PosteriorParameters:
        """The encoder's λ = (μ, scale) and features for `(batch, seq_len)` token ids."""
        input_ids, attention_mask = self._check_ids(input_ids, attention_mask)
        lengths = attention_mask.sum(-1)
        mean, scale, context = self.encoder(input_ids, lengths)
        if not self.sequential:
            return PosteriorParameters(mean, scale, context)
        steps = torch.arange(mean.shape[1], device=mean.device)
        return PosteriorParameters(mean, scale, context, steps < (lengths - 1).unsqueeze(1))

    def log_likelihood(self, input_ids: Tensor, attention_mask: Tensor | None, z: Tensor) -> Tensor:
        """log p(x|z) in nats, summed over target tokens.

        Args:
            input_ids: `(batch, seq_len)`.
            attention_mask: `(batch, seq_len)` or `None` for no padding.
            z: `(batch, latent_size)` or `(samples, batch, latent_size)`; sequential
                latents add a steps axis before `latent_size`.
        Returns:
            `(batch,)` or `(samples, batch)`.
        """
        input_ids, attention_mask = self._check_ids(input_ids, attention_mask)
        event = 2 if self.sequential else 1
        lead = z.shape[: z.dim() - event - 1]
        batch = input_ids.shape[0]
        if z.shape[len(lead)] != batch:
            raise ValueError(f"z has {z.shape[len(lead)]} rows for a batch of {batch} sentences.")
        samples = math.prod(lead)
        flat_z = z.reshape(samples * batch, *z.shape[len(lead) + 1 :])
        ids = input_ids.repeat(samples, 1)
        mask = attention_mask.repeat(samples, 1)
        nll, _ = self._reconstruction_nll(ids, mask, flat_z, keep_logits=False)
        return -nll.reshape(*lead, batch)

    nll_unit = "token"

    def units_per_example(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Target tokens per sentence, `</s>` included: `(batch,)` (the PPL denominator)."""
        input_ids, attention_mask = self._check_ids(input_ids, attention_mask)
        return attention_mask[:, 1:].sum(-1)

    # --- forward ----------------------------------------------------------------------

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        z: Tensor | None = None,
        posterior_parameters: PosteriorParameters | None = None,
        decoder_latent: Tensor | None = None,
        cache: DecoderState | None = None,
        use_cache: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> TextVAEOutput | CausalLMOutputWithPast:
        """The ELBO's parts for a batch of sentences.

        Args:
            input_ids: `(batch, seq_len)` `<s> w₁ … wₙ </s>`, right-padded.
            attention_mask: `(batch, seq_len)` 1 on tokens, 0 on padding.
            z: `(batch, latent_size)` a latent to decode instead of a sample of q(z|x).
            posterior_parameters: λ to use instead of the encoder's (SVI refinement).
            decoder_latent: `(batch, latent_size)`; when given, run only the decoder as a
                language model conditioned on it, the step `generate` takes. Returns
                `CausalLMOutputWithPast` whose `cache` is the decoder state.
            cache: the decoder state `generate` hands back after the first step.
        """
        if decoder_latent is not None or cache is not None:
            return self._decoder_step(input_ids, decoder_latent, cache)
        batch = self.checked_batch(input_ids, attention_mask)
        if posterior_parameters is None:
            posterior_parameters = self.posterior_parameters(**batch)
        return self.elbo_terms(batch, posterior_parameters, z)

    def checked_batch(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None, **unused: Any
    ) -> dict[str, Tensor]:
        """The batch as the model's methods take it: `input_ids` and `attention_mask`
        `(batch, seq_len)`, checked."""
        input_ids, attention_mask = self._check_ids(input_ids, attention_mask)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    output_class = TextVAEOutput

    def reconstruction(self, batch: dict[str, Tensor], z: Tensor) -> tuple[Tensor, Tensor]:
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        decoder_ids = self._word_dropout(input_ids[:, :-1], attention_mask[:, :-1])
        return self._reconstruction_nll(input_ids, attention_mask, z, decoder_ids=decoder_ids)

    def output_extras(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        return {"num_tokens": batch["attention_mask"][:, 1:].sum(-1)}

    def _reconstruction_nll(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        z: Tensor,
        decoder_ids: Tensor | None = None,
        keep_logits: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """−log p(x|z) per sentence `(batch,)`, and the logits when `keep_logits`."""
        if decoder_ids is None:
            decoder_ids = input_ids[:, :-1]
        hidden, _ = self.decoder.hidden_states(decoder_ids, z)
        targets, mask = input_ids[:, 1:], attention_mask[:, 1:].bool()
        if keep_logits:
            batch, steps, size = hidden.shape
            # One 2-d matmul and a row-wise loss over contiguous (tokens, vocab) logits: the
            # batch_first LSTM output is a strided view, on which the output layer would
            # otherwise copy its weight per sentence; log-softmax in float32 whatever the
            # autocast dtype of the logits.
            logits = self.decoder.lm_head(hidden.reshape(batch * steps, size))
            token_nll = F.cross_entropy(
                in_loss_precision(logits), targets.reshape(-1), reduction="none"
            )
            nll = (token_nll.view(batch, steps) * mask).sum(-1)
            return nll, logits.view(batch, steps, -1)
        # Without logits to return, score the real tokens only (padding costs nothing), a
        # block of rows at a time: a block's logits stay small enough to be reused while
        # still in cache, where one (tokens, vocabulary) matrix of hundreds of MB would be
        # written and read back from memory by the loss (~25% of the output layer's time).
        hidden, real_targets = hidden[mask], targets[mask]
        token_nll = torch.cat(
            [
                F.cross_entropy(
                    in_loss_precision(self.decoder.lm_head(hidden[i : i + SCORING_BLOCK_ROWS])),
                    real_targets[i : i + SCORING_BLOCK_ROWS],
                    reduction="none",
                )
                for i in range(0, hidden.shape[0], SCORING_BLOCK_ROWS)
            ]
        )
        rows = (
            torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(mask)
        )
        nll = torch.zeros(input_ids.shape[0], dtype=token_nll.dtype, device=token_nll.device)
        return nll.index_add_(0, rows[mask], token_nll), None

    def _word_dropout(self, decoder_ids: Tensor, decoder_mask: Tensor) -> Tensor:
        """Bowman's word dropout: in training, words (not `<s>`) become `<unk>` with prob p."""
        p = self.config.word_dropout
        if not self.training or p == 0:
            return decoder_ids
        drop = torch.rand(decoder_ids.shape, device=decoder_ids.device) < p
        drop[:, 0] = False
        return decoder_ids.masked_fill(drop & decoder_mask.bool(), self.config.unk_token_id)

    def _decoder_step(
        self, input_ids: Tensor, decoder_latent: Tensor | None, state: DecoderState | None
    ) -> CausalLMOutputWithPast:
        if state is None:
            if decoder_latent is None:
                raise ValueError("decoding needs decoder_latent, the z to decode from.")
            z, previous, length = decoder_latent, None, 0
        else:
            # generate feeds only the newest token once a state exists.
            z, previous, length = state.z, (state.h, state.c), state.length
            input_ids = input_ids[:, -1:]
        step_latent = z if z.dim() == 2 else z[:, length : length + input_ids.shape[1]]
        hidden, (h, c) = self.decoder.hidden_states(input_ids, step_latent, previous)
        logits = self.decoder.lm_head(hidden).float()
        return CausalLMOutputWithPast(
            logits=logits, cache=DecoderState(h, c, z, length + input_ids.shape[1])
        )

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The decoder's state is an LSTM's (h, c), not an attention cache.
        return False

    # --- generation -------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        z: Tensor | None = None,
        num_samples: int | None = None,
        generation_config: Any = None,
        **kwargs: Any,
    ) -> Tensor:
        """Decode token ids from latents, with any strategy of transformers' `generate`.

        Args:
            z: `(batch, latent_size)` latents to decode; `None` samples `num_samples` of
                them from the prior.
            num_samples: how many latents to draw from the prior when `z` is `None`.
            generation_config, **kwargs: as for `transformers.GenerationMixin.generate`:
                `do_sample`, `temperature`, `top_k`, `top_p`, `num_beams`,
                `num_return_sequences`, `max_new_tokens`, ...
        Returns:
            `(batch · num_return_sequences, steps)` token ids starting with `<s>`.
        """
        z = self._latents(z, num_samples)
        check_generation_options(
            {**(generation_config.to_dict() if generation_config is not None else {}), **kwargs}
        )
        kwargs.pop("input_ids", None)
        if "max_new_tokens" in kwargs and "max_length" not in kwargs:
            # The generation config's max_length is the model's; let max_new_tokens rule alone.
            kwargs["max_length"] = None
        start = torch.full(
            (z.shape[0], 1), self.config.bos_token_id, dtype=torch.long, device=z.device
        )
        return super().generate(
            start,
            generation_config=generation_config,
            decoder_latent=z,
            attention_mask=torch.ones_like(start),
            **kwargs,
        )

    def generate_sentences(
        self, z: Tensor | None = None, num_samples: int | None = None, **generation_kwargs: Any
    ) -> list[str]:
        """Sentences decoded from `z`, or from `num_samples` latents drawn from the prior.

        Keyword arguments choose the strategy as in `generate`: greedy by default,
        `do_sample=True` with `temperature`/`top_k`/`top_p`, or `num_beams=`.
        """
        return self.decode_ids(self.generate(z, num_samples, **generation_kwargs))

    def reconstruct(
        self, texts: str | Sequence[str], sample: bool = False, **generation_kwargs: Any
    ) -> list[str]:
        """Encode sentences and decode them again: x → q(z|x) → z → x̂.

        Args:
            sample: decode a sample of q(z|x) instead of its mean.
        """
        posterior = self.encode(texts)
        z = posterior.sample() if sample else posterior.mean
        return self.generate_sentences(self._continued(z, posterior), **generation_kwargs)

    def _continued(self, z: Tensor, posterior: Any) -> Tensor:
        """Sequential latents of encoded sentences, continued past each one's own steps
        with the AR(1) conditional mean, for generations longer than the sentence."""
        if not self.sequential:
            return z
        steps = posterior.mask[..., 0].sum(-1).long()
        return self.prior.continue_mean(z, steps, self.config.max_sequence_length - 1)

    def interpolate(
        self, text_a: str, text_b: str, steps: int = 5, **generation_kwargs: Any
    ) -> list[str]:
        """Bowman's homotopy: decode z(t) = (1 − t)·z_a + t·z_b for `steps` values of t
        in [0, 1], between the posterior means of two sentences.
        """
        for name, text in (("text_a", text_a), ("text_b", text_b)):
            if not isinstance(text, str):
                raise ValueError(
                    f"{name} must be one sentence as a string, got {type(text).__name__}."
                )
        posterior = self.encode([text_a, text_b])
        means = self._continued(posterior.mean, posterior)
        return self.generate_sentences(
            interpolate_latents(means[0], means[1], steps), **generation_kwargs
        )

    def decode_ids(self, sequences: Tensor) -> list[str]:
        """Token ids `(batch, steps)` to sentences, cut at `</s>`, without `<s>`/`<pad>`."""
        tokenizer = self._require_tokenizer()
        special = {self.config.bos_token_id, self.config.pad_token_id}
        sentences = []
        for row in sequences.tolist():
            if self.config.eos_token_id in row:
                row = row[: row.index(self.config.eos_token_id)]
            sentences.append(tokenizer.decode([t for t in row if t not in special]))
        return sentences

    def _latents(self, z: Tensor | None, num_samples: int | None) -> Tensor:
        given = z is not None
        z = self.latents_to_decode(z, num_samples)
        if not given:
            return z
        d = self.config.latent_size
        expected = f"(batch, steps, {d})" if self.sequential else f"(batch, {d})"
        if not isinstance(z, Tensor) or z.dim() != 2 + self.sequential or z.shape[-1] != d:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"z must be a {expected} tensor, got {shape}.")
        z = z.to(self.decoder.latent_to_state.weight)
        if self.sequential:
            # As many latents as the longest generation has steps; beyond the given ones,
            # the AR(1) prior's conditional mean.
            lengths = torch.full((z.shape[0],), z.shape[1], device=z.device)
            z = self.prior.continue_mean(z, lengths, self.config.max_sequence_length - 1)
        return z

    # --- text in ----------------------------------------------------------------------

    def tokenize(self, texts: str | Sequence[str]) -> tuple[Tensor, Tensor]:
        """Sentences to `(batch, seq_len)` ids `<s> … </s>` and attention mask.

        Unknown words become `<unk>`. A sentence longer than `config.max_sequence_length`
        tokens is truncated (its `</s>` kept) with a warning.
        """
        tokenizer = self._require_tokenizer()
        texts = check_texts(texts)
        max_length = self.config.max_sequence_length
        rows, truncated = truncate_rows(tokenizer(texts)["input_ids"], max_length)
        if truncated:
            warnings.warn(
                f"{len(truncated)} sentence(s) (first: #{truncated[0]}) exceed "
                f"max_sequence_length={max_length} tokens and were truncated.",
                stacklevel=3,
            )
        device = self.decoder.lm_head.weight.device
        return pad_rows(rows, self.config.pad_token_id, device)

    def _as_ids(
        self, inputs: str | Sequence[str] | Tensor, attention_mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        if isinstance(inputs, Tensor):
            return self._check_ids(inputs, attention_mask)
        if attention_mask is not None:
            raise ValueError("attention_mask goes with token ids, not with strings.")
        return self.tokenize(inputs)

    def _check_ids(
        self, input_ids: Tensor | None, attention_mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        if not isinstance(input_ids, Tensor) or input_ids.dim() != 2:
            got = (
                tuple(input_ids.shape)
                if isinstance(input_ids, Tensor)
                else type(input_ids).__name__
            )
            raise ValueError(
                f"input_ids must be a (batch, seq_len) tensor of token ids, got {got}."
            )
        if input_ids.shape[0] == 0 or input_ids.shape[1] < 2:
            raise ValueError(
                f"input_ids of shape {tuple(input_ids.shape)}: need at least one sentence of at "
                "least <s> and </s>."
            )
        if input_ids.dtype not in (torch.long, torch.int32):
            raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}.")
        if input_ids.shape[1] > self.config.max_sequence_length:
            raise ValueError(
                f"input_ids have {input_ids.shape[1]} positions, more than max_sequence_length="
                f"{self.config.max_sequence_length}; tokenize with truncation."
            )
        if input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size:
            raise ValueError(
                f"input_ids must lie in [0, {self.config.vocab_size}), got values in "
                f"[{int(input_ids.min())}, {int(input_ids.max())}]; the tokenizer does not fit "
                "this model's vocab_size."
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        elif attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
                f"{tuple(input_ids.shape)}."
            )
        lengths = attention_mask.sum(-1)
        if (lengths < 2).any():
            raise ValueError("every sentence needs at least <s> and </s> (2 tokens).")
        return input_ids.long(), attention_mask.long()

    def _require_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise ValueError(
                "this model has no tokenizer: attach one with `model.tokenizer = "
                "vaehub.build_tokenizer(corpus)` or load a folder saved with one."
            )
        return self.tokenizer

    # --- saving and loading -----------------------------------------------------------

    def _save_extras(self, save_directory: str | os.PathLike) -> None:
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)

    def _load_extras(self, name_or_path: str | os.PathLike, hub_kwargs: dict[str, Any]) -> None:
        tokenizer = load_tokenizer(name_or_path, hub_kwargs)
        if tokenizer is not None:
            check_tokenizer_fits(tokenizer, self.config, name_or_path)
        self.tokenizer = tokenizer


# Generation options that must be whole numbers ≥ their minimum, and numbers in a range.
WHOLE_OPTIONS = {
    "num_beams": 1, "num_return_sequences": 1, "max_new_tokens": 1, "max_length": 1,
    "min_new_tokens": 0, "min_length": 0, "top_k": 0, "no_repeat_ngram_size": 0,
}  # fmt: skip
POSITIVE_OPTIONS = ("temperature", "repetition_penalty")


def check_generation_options(options: dict[str, Any]) -> None:
    """Refuse generation options transformers would fail on deep inside (a division by
    zero for `num_beams=0`, a tensor error for `-1`) or silently misuse."""
    for name, minimum in WHOLE_OPTIONS.items():
        value = options.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r} is not valid: expected an integer >= {minimum}.")
    for name in POSITIVE_OPTIONS:
        value = options.get(name)
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"{name}={value!r} is not valid: expected a number > 0.")
    top_p = options.get("top_p")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise ValueError(f"top_p={top_p!r} is not valid: expected a number in (0, 1].")
    beams, returned = options.get("num_beams") or 1, options.get("num_return_sequences") or 1
    if not options.get("do_sample") and returned > beams:
        raise ValueError(
            f"num_return_sequences={returned} needs num_beams >= {returned} (or do_sample=True): "
            "greedy and beam search return at most num_beams sequences per latent."
        )
