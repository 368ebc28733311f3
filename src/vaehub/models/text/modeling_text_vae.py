"""The LSTM text VAE of Bowman et al. 2016 in the configuration of He et al. 2019.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from transformers import GenerationMixin, PreTrainedTokenizerBase
from transformers.modeling_outputs import CausalLMOutputWithPast

from vaehub.latent.posterior_head import PosteriorHead
from vaehub.latent.posteriors import PosteriorParameters
from vaehub.latent.priors import LatentPrior, prior_from_config
from vaehub.models.modeling_utils import (
    Interpolation,
    VAEPreTrainedModel,
    check_finite_latent,
    encode_in_chunks,
    interpolate_latents,
)
from vaehub.models.outputs import LatentOutput
from vaehub.models.text.configuration_text_vae import TEXT_DECODER_FIELDS, TextVAEConfig
from vaehub.models.text.decoding import decoding_options
from vaehub.models.text.lstm_decoder import DecoderState, TextDecoder, TextModelMixin


@dataclass
class TextVAEOutput(LatentOutput):
    """The ELBO's parts for a batch of sentences (`LatentOutput`'s fields, `reconstruction_nll`
    summed over target tokens, `z` of shape `(batch, latent_size)`), and:

    Attributes:
        logits: `(batch, seq_len − 1, vocab_size)` the decoder's prediction of
            `input_ids[:, 1:]`.
        num_tokens: `(batch,)` target tokens per sentence, `</s>` included.
    """

    logits: Tensor | None = None
    num_tokens: Tensor | None = None


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


class TextVAEPreTrainedModel(VAEPreTrainedModel):
    config_class = TextVAEConfig
    base_model_prefix = "text_vae"
    main_input_name = "input_ids"
    # forward takes **kwargs only for generate's bookkeeping; the loss is a per-batch mean.
    accepts_loss_kwargs = False


class TextVAEModel(TextModelMixin, TextVAEPreTrainedModel, GenerationMixin):
    """LSTM text VAE (Bowman et al. 2016; He et al. 2019's sizes) with a prior family from the
    shared configs.

    Attach a tokenizer (`model.tokenizer = build_tokenizer(...)`) for the string-level
    methods; it is saved and loaded with the model.
    """

    def __init__(self, config: TextVAEConfig) -> None:
        super().__init__(config)
        self.encoder = TextVAEEncoder(config)
        self.decoder = TextDecoder(config, config.latent_size)
        self.posterior_head = PosteriorHead(config, self.encoder.context_size)
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.post_init()
        self.generation_config.max_length = config.max_sequence_length

    def reset_decoder(self) -> None:
        """Re-initialise the decoder as a new model's (He et al.'s ranges), keeping the
        encoder and the posterior head: Li et al. (2019)'s second stage, an
        autoencoder-pretrained encoder with a fresh decoder."""
        for parameter in self.decoder.parameters():
            # Loaded weights are marked initialised, and transformers' init functions leave
            # what is marked alone.
            if hasattr(parameter, "_is_hf_initialized"):
                del parameter._is_hf_initialized
        self.decoder.apply(self._init_weights)

    @classmethod
    def from_decoder(
        cls, language_model: Any, config: TextVAEConfig | None = None, **overrides: Any
    ) -> TextVAEModel:
        """A text VAE whose decoder starts from a trained `TextLMModel` (Li et al. 2019's
        pretraining): the same embedding, LSTM, output layer and tokenizer.

        Args:
            language_model: the `TextLMModel` whose weights to take.
            config: the VAE's config; its decoder fields must equal the language model's.
                By default, the language model's decoder fields with `overrides`
                (`latent_size=`, `encoder_hidden_size=`, `prior=`, ...).
        """
        decoder_fields = {f: getattr(language_model.config, f) for f in TEXT_DECODER_FIELDS}
        if config is None:
            config = TextVAEConfig(**{**decoder_fields, **overrides})
        elif overrides:
            raise ValueError("give either a config or keyword overrides, not both.")
        model = cls(config)
        model.init_decoder_from(language_model)
        return model

    @torch.no_grad()
    def init_decoder_from(self, language_model: Any) -> None:
        """Copy a `TextLMModel`'s decoder (and tokenizer) into this VAE's decoder. The
        LSTM's input weights for z and the z-to-state layer keep their initialisation:
        the language model has none."""
        theirs = language_model.config
        differ = [
            f"{f}={getattr(self.config, f)!r} (language model: {getattr(theirs, f)!r})"
            for f in TEXT_DECODER_FIELDS
            if getattr(self.config, f) != getattr(theirs, f)
        ]
        if differ:
            raise ValueError(
                "the VAE's decoder differs from the language model's: " + "; ".join(differ)
            )
        source, target = language_model.decoder, self.decoder
        target.embed_tokens.weight.copy_(source.embed_tokens.weight)
        target.lm_head.weight.copy_(source.lm_head.weight)
        embedding = self.config.embedding_size
        target.lstm.weight_ih_l0[:, :embedding].copy_(source.lstm.weight_ih_l0)
        for name in ("weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(target.lstm, name).copy_(getattr(source.lstm, name))
        if language_model.tokenizer is not None:
            self.tokenizer = language_model.tokenizer

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
        self,
        input_ids: str | Sequence[str] | Tensor,
        attention_mask: Tensor | None = None,
        refine: bool | None = None,
    ) -> Any:
        """q(z|x) for sentences given as strings or as token ids.

        Args:
            input_ids: a sentence, a list of sentences, or `(batch, seq_len)` token ids
                (`<s> … </s>`, right-padded).
            attention_mask: `(batch, seq_len)` 1 on tokens, 0 on padding (ids only).
            refine: a model trained with SVI refinement (SA-VAE) refines the encoder's
                posterior with its recorded `inference_refinement` by default (each SVI
                step follows the ELBO at a sampled z: seed torch to repeat it);
                `refine=False` gives the bare encoder's.
        Returns:
            the posterior of `config.posterior` (a `DiagonalGaussian` with `.mean` and
            `.std` for `"gaussian"`) over `(batch, latent_size)`, or
            `(batch, seq_len − 1, latent_size)` for sequential latents (masked past each
            sentence's steps).
        """
        input_ids, attention_mask = self._as_ids(input_ids, attention_mask)
        parameters = encode_in_chunks(self.posterior_parameters, input_ids, attention_mask)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        return self.infer(batch, refine, parameters)

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
        check_finite_latent(z)  # as the decoding paths do: NaN would score NaN silently
        event = 2 if self.sequential else 1
        lead = z.shape[: z.dim() - event - 1]
        batch = input_ids.shape[0]
        if z.shape[len(lead)] != batch:
            raise ValueError(f"z has {z.shape[len(lead)]} rows for a batch of {batch} sentences.")
        samples = math.prod(lead)
        # In the decoder's precision: a refined λ stays float32 beside half-precision weights.
        flat_z = z.reshape(samples * batch, *z.shape[len(lead) + 1 :]).to(
            self.decoder.latent_to_state.weight.dtype
        )
        ids = input_ids.repeat(samples, 1)
        mask = attention_mask.repeat(samples, 1)
        nll, _ = self.decoder.token_nll(ids, mask, flat_z, keep_logits=False)
        return -nll.reshape(*lead, batch)

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
        return_logits: bool = True,
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
            return_logits: `False` leaves `logits` out and scores the tokens with the fused
                output layer and loss (`vaehub.models.text.fused_loss`), as `VAETrainer` trains.
        """
        if decoder_latent is not None or cache is not None:
            if cache is None and decoder_latent is None:
                raise ValueError("decoding needs decoder_latent, the z to decode from.")
            return self._decoder_step(input_ids, decoder_latent, cache)
        batch = self.checked_batch(input_ids, attention_mask)
        if posterior_parameters is None:
            posterior_parameters = self.posterior_parameters(**batch)
        return self.elbo_terms(batch, posterior_parameters, z, return_logits)

    output_class = TextVAEOutput

    def reconstruction(
        self, batch: dict[str, Tensor], z: Tensor, keep_logits: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        return self._training_nll(batch, z, keep_logits)

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
        return self._generate_from_start(z.shape[0], generation_config, kwargs, decoder_latent=z)

    def generate_sentences(
        self,
        z: Tensor | None = None,
        num_samples: int | None = None,
        allow_unk: bool = False,
        **generation_kwargs: Any,
    ) -> list[str]:
        """Sentences decoded from `z`, or from `num_samples` latents drawn from the prior.

        Decoding defaults to `vaehub.models.text.decoding.DEFAULT_DECODING["generate"]` and
        stops at the length the training corpus's sentences have
        (`generation_config.max_length`); any option of `generate` overrides it
        (`do_sample=True` with `temperature`/`top_k`/
        `top_p`, `num_beams`, `no_repeat_ngram_size`, `repetition_penalty`,
        `length_penalty`, `bad_words_ids`, `max_new_tokens`...). `<unk>` is kept out of the
        text unless `allow_unk=True`.
        """
        options = decoding_options(self, "generate", generation_kwargs, allow_unk)
        return self.decode_ids(self.generate(z, num_samples, **options))

    def reconstruct(
        self,
        texts: str | Sequence[str],
        sample: bool = False,
        refine: bool | None = None,
        allow_unk: bool = False,
        **generation_kwargs: Any,
    ) -> list[str]:
        """Encode sentences and decode them again: x → q(z|x) → z → x̂.

        Args:
            sample: decode a sample of q(z|x) instead of its mean.
            refine: as for `encode` (an SA-VAE refines its posterior by default).
            allow_unk, generation_kwargs: as for `generate_sentences`; the defaults are
                `DEFAULT_DECODING["reconstruct"]`.
        """
        posterior = self.encode(texts, refine=refine)
        z = posterior.sample() if sample else posterior.mean
        options = decoding_options(self, "reconstruct", generation_kwargs, allow_unk)
        return self.decode_ids(self.generate(self._continued(z, posterior), **options))

    def _continued(self, z: Tensor, posterior: Any) -> Tensor:
        """Sequential latents of encoded sentences, continued past each one's own steps
        with the AR(1) conditional mean, for generations longer than the sentence."""
        if not self.sequential:
            return z
        steps = posterior.mask[..., 0].sum(-1).long()
        return self.prior.continue_mean(z, steps, self.config.max_sequence_length - 1)

    def interpolate(
        self,
        text_a: str,
        text_b: str,
        steps: int = 5,
        method: str = "lerp",
        refine: bool | None = None,
        allow_unk: bool = False,
        **generation_kwargs: Any,
    ) -> Interpolation:
        """Decode `steps` points of the path between the posterior means of two sentences:
        `method="lerp"`, Bowman's homotopy z(t) = (1 − t)·z_a + t·z_b, or `"slerp"`.

        Returns:
            an `Interpolation`: the list of sentences at t = 0 … 1, with `.inputs` (the two
            sentences), `.endpoints` (the decodings of their own means), `.t` and `.method`.
        """
        for name, text in (("text_a", text_a), ("text_b", text_b)):
            if not isinstance(text, str):
                raise ValueError(
                    f"{name} must be one sentence as a string, got {type(text).__name__}."
                )
        path = interpolate_latents(*self._path_ends(text_a, text_b, refine), steps, method)
        options = decoding_options(self, "interpolate", generation_kwargs, allow_unk)
        sentences = self.decode_ids(self.generate(path, **options))
        t = torch.linspace(0, 1, steps).tolist()
        return Interpolation(sentences, (text_a, text_b), t, method)

    def _path_ends(self, text_a: str, text_b: str, refine: bool | None) -> tuple[Tensor, Tensor]:
        posterior = self.encode([text_a, text_b], refine=refine)
        means = self._continued(posterior.mean, posterior)
        return means[0], means[1]

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
