"""The LSTM language-model decoder every vaehub text model shares, and what a text model
does around it: checking token ids, tokenizing, scoring, decoding ids back to sentences,
word dropout, and the step transformers' `generate` calls.

    [embedding (dropout) ; z] every step → LSTM (state from z) → dropout → linear → logits

With `latent_size=0` the same decoder is a plain LSTM language model: no latent input,
zero initial state. `TextVAEModel` uses it conditioned on z, `TextLMModel` without, so the
two have the same weights wherever they overlap (`TextVAEModel.from_decoder`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutputWithPast

from vaehub.data.text import pad_rows, truncate_rows
from vaehub.models.configuration_utils import check_float
from vaehub.models.modeling_utils import in_loss_precision
from vaehub.models.text.fused_loss import BLOCK_ROWS, linear_cross_entropy
from vaehub.models.text.tokenization import (
    check_texts,
    check_tokenizer_fits,
    load_tokenizer,
    mark_vocab,
)

# Token rows scored per block when no logits are returned (see token_nll).
SCORING_BLOCK_ROWS = BLOCK_ROWS


class DecoderState:
    """The decoder LSTM's (h, c) while `generate` steps through a sentence.

    Attributes:
        h, c: `(1, batch, decoder_hidden_size)`.
        z: `(batch, latent_size)` the latent being decoded, reordered with the beams, or
            `None` for a decoder without a latent.
    """

    def __init__(self, h: Tensor, c: Tensor, z: Tensor | None, length: int) -> None:
        self.h, self.c, self.z, self.length = h, c, z, length

    def reorder_cache(self, beam_idx: Tensor) -> None:
        self.h = self.h.index_select(1, beam_idx.to(self.h.device))
        self.c = self.c.index_select(1, beam_idx.to(self.c.device))
        if self.z is not None:
            self.z = self.z.index_select(0, beam_idx.to(self.z.device))

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length


class TextDecoder(nn.Module):
    """An LSTM language model, conditioned on z at every step and through its initial
    state when `latent_size` > 0."""

    def __init__(self, config: Any, latent_size: int) -> None:
        super().__init__()
        self.latent_size = latent_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.embedding_dropout = nn.Dropout(config.decoder_embedding_dropout)
        if latent_size:
            self.latent_to_state = nn.Linear(latent_size, config.decoder_hidden_size, bias=False)
        self.lstm = nn.LSTM(
            config.embedding_size + latent_size, config.decoder_hidden_size, batch_first=True
        )
        self.output_dropout = nn.Dropout(config.decoder_output_dropout)
        self.lm_head = nn.Linear(config.decoder_hidden_size, config.vocab_size, bias=False)

    def initial_state(self, z: Tensor | None) -> tuple[Tensor, Tensor] | None:
        """`(1, batch, hidden)` twice: c₀ = W z, h₀ = tanh(c₀) (He et al.); from the first
        step's latent when z is a sequence. `None` (zeros) without a latent."""
        if z is None:
            return None
        c = self.latent_to_state(z if z.dim() == 2 else z[:, 0]).unsqueeze(0)
        return torch.tanh(c), c

    def hidden_states(
        self,
        input_ids: Tensor,
        z: Tensor | None = None,
        state: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """
        Args:
            input_ids: `(batch, steps)` decoder inputs.
            z: `(batch, latent_size)`, fed at every step, or `(batch, steps, latent_size)`,
                one latent per step; `None` for a decoder without a latent.
            state: (h, c) to continue from; the state built from z when `None`.
        Returns:
            outputs `(batch, steps, decoder_hidden_size)` after dropout, and the new (h, c).
        """
        if (z is None) != (self.latent_size == 0):
            raise ValueError(
                f"this decoder takes {'no latent' if not self.latent_size else 'a latent z'}."
            )
        inputs = self.embedding_dropout(self.embed_tokens(input_ids))
        if z is not None:
            steps = input_ids.shape[1]
            latent = z.unsqueeze(1).expand(-1, steps, -1) if z.dim() == 2 else z[:, :steps]
            inputs = torch.cat([inputs, latent.to(inputs.dtype)], dim=-1)
        outputs, state = self.lstm(inputs, state if state is not None else self.initial_state(z))
        return self.output_dropout(outputs), state

    def token_nll(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        z: Tensor | None,
        decoder_ids: Tensor | None = None,
        keep_logits: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """−log p(x|z) (or −log p(x) without a latent) per sentence `(batch,)`, summed over
        the target tokens `input_ids[:, 1:]`, and the logits when `keep_logits`.

        Args:
            decoder_ids: `(batch, seq_len − 1)` the decoder's inputs when they differ from
                `input_ids[:, :-1]` (word dropout).
        """
        if decoder_ids is None:
            decoder_ids = input_ids[:, :-1]
        hidden, _ = self.hidden_states(decoder_ids, z)
        targets, mask = input_ids[:, 1:], attention_mask[:, 1:].bool()
        if keep_logits:
            batch, steps, size = hidden.shape
            # One 2-d matmul and a row-wise loss over contiguous (tokens, vocab) logits: the
            # batch_first LSTM output is a strided view, on which the output layer would
            # otherwise copy its weight per sentence; log-softmax in float32 whatever the
            # autocast dtype of the logits.
            logits = self.lm_head(hidden.reshape(batch * steps, size))
            token_nll = F.cross_entropy(
                in_loss_precision(logits), targets.reshape(-1), reduction="none"
            )
            nll = (token_nll.view(batch, steps) * mask).sum(-1)
            return nll, logits.view(batch, steps, -1)
        # Without logits to return, score the real tokens only (padding costs nothing) in
        # the fused output layer and loss (`vaehub.models.text.fused_loss`): without gradients no
        # (tokens, vocabulary) matrix exists at once; with them, only one that fits its
        # budget is kept for the backward.
        token_nll = linear_cross_entropy(hidden[mask], self.lm_head.weight, targets[mask])
        rows = (
            torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(mask)
        )
        nll = torch.zeros(input_ids.shape[0], dtype=token_nll.dtype, device=token_nll.device)
        return nll.index_add_(0, rows[mask], token_nll), None


class TextModelMixin:
    """What a vaehub text model does around its `decoder` (a `TextDecoder`) and its
    tokenizer. The model sets `self.decoder` and `self.tokenizer`."""

    decoder: TextDecoder
    tokenizer: PreTrainedTokenizerBase | None
    nll_unit = "token"

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

    def set_regularisation(self, **rates: float) -> None:
        """Change the training-time dropouts of a built model (`word_dropout`,
        `decoder_embedding_dropout`, `decoder_output_dropout`): its config and, for the
        two dropout layers built from it, their rates. The weights are untouched."""
        layers = {
            "decoder_embedding_dropout": self.decoder.embedding_dropout,
            "decoder_output_dropout": self.decoder.output_dropout,
        }
        for name, rate in rates.items():
            if name != "word_dropout" and name not in layers:
                raise ValueError(
                    f"{name} is not a dropout of this model: word_dropout, "
                    f"{', '.join(layers)}."
                )
            check_float(name, rate, 0.0, 1.0, high_open=True)
            setattr(self.config, name, rate)
            if name in layers:
                layers[name].p = rate

    def units_per_example(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Target tokens per sentence, `</s>` included: `(batch,)` (the PPL denominator)."""
        input_ids, attention_mask = self._check_ids(input_ids, attention_mask)
        return attention_mask[:, 1:].sum(-1)

    def checked_batch(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None, **unused: Any
    ) -> dict[str, Tensor]:
        """The batch as the model's methods take it: `input_ids` and `attention_mask`
        `(batch, seq_len)`, checked."""
        input_ids, attention_mask = self._check_ids(input_ids, attention_mask)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def output_extras(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        return {"num_tokens": batch["attention_mask"][:, 1:].sum(-1)}

    def _training_nll(
        self, batch: dict[str, Tensor], z: Tensor | None, keep_logits: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """−log p(x|z) per sentence with word dropout in training, and the logits (`None`
        without `keep_logits`: the fused loss, which never builds them)."""
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        decoder_ids = self._word_dropout(input_ids[:, :-1], attention_mask[:, :-1])
        return self.decoder.token_nll(
            input_ids, attention_mask, z, decoder_ids=decoder_ids, keep_logits=keep_logits
        )

    def _word_dropout(self, decoder_ids: Tensor, decoder_mask: Tensor) -> Tensor:
        """Bowman's word dropout: in training, words (not `<s>`) become `<unk>` with prob p."""
        p = self.config.word_dropout
        if not self.training or p == 0:
            return decoder_ids
        drop = torch.rand(decoder_ids.shape, device=decoder_ids.device) < p
        drop[:, 0] = False
        return decoder_ids.masked_fill(drop & decoder_mask.bool(), self.config.unk_token_id)

    # --- generation -------------------------------------------------------------------

    def _decoder_step(
        self, input_ids: Tensor, z: Tensor | None, state: DecoderState | None
    ) -> CausalLMOutputWithPast:
        """One call of `generate`: the whole prompt first, then only the newest token."""
        if state is None:
            previous, length = None, 0
        else:
            z, previous, length = state.z, (state.h, state.c), state.length
            input_ids = input_ids[:, -1:]
        step_latent = z if z is None or z.dim() == 2 else z[:, length : length + input_ids.shape[1]]
        hidden, (h, c) = self.decoder.hidden_states(input_ids, step_latent, previous)
        logits = self.decoder.lm_head(hidden).float()
        return CausalLMOutputWithPast(
            logits=logits, cache=DecoderState(h, c, z, length + input_ids.shape[1])
        )

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The decoder's state is an LSTM's (h, c), not an attention cache.
        return False

    def _generate_from_start(
        self, rows: int, generation_config: Any, kwargs: dict[str, Any], **model_kwargs: Any
    ) -> Tensor:
        """transformers' `generate` from `<s>` for `rows` sentences, its options checked."""
        saved = generation_config if generation_config is not None else self.generation_config
        check_generation_options({**(saved.to_dict() if saved is not None else {}), **kwargs})
        kwargs.pop("input_ids", None)
        if "max_new_tokens" in kwargs and "max_length" not in kwargs:
            # The generation config's max_length is the model's; let max_new_tokens rule alone.
            kwargs["max_length"] = None
        device = self.decoder.lm_head.weight.device
        start = torch.full((rows, 1), self.config.bos_token_id, dtype=torch.long, device=device)
        return super().generate(
            start,
            generation_config=generation_config,
            attention_mask=torch.ones_like(start),
            **model_kwargs,
            **kwargs,
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
            mark_vocab(self.tokenizer)
            self.tokenizer.save_pretrained(save_directory)

    def _load_extras(self, name_or_path: str | os.PathLike, hub_kwargs: dict[str, Any]) -> None:
        tokenizer = load_tokenizer(name_or_path, hub_kwargs)
        if tokenizer is not None:
            check_tokenizer_fits(tokenizer, self.config, name_or_path)
        self.tokenizer = tokenizer
        check_saved_generation_config(self, name_or_path)


# Generation options that must be whole numbers ≥ their minimum, and numbers in a range.
WHOLE_OPTIONS = {
    "num_beams": 1, "num_return_sequences": 1, "max_new_tokens": 1, "max_length": 1,
    "min_new_tokens": 0, "min_length": 0, "top_k": 0, "no_repeat_ngram_size": 0,
}  # fmt: skip
POSITIVE_OPTIONS = ("temperature", "repetition_penalty")


def check_saved_generation_config(model: Any, name_or_path: str | os.PathLike) -> None:
    """Refuse a loaded `generation_config.json` whose fields `check_generation_options`
    refuses as arguments (`num_beams: 0`, `temperature: -1`, `min_length: 1e8`), or whose
    minimum length exceeds the model's `max_sequence_length`, naming the file and field."""
    from vaehub.models.checkpoints import CheckpointError

    saved = getattr(model, "generation_config", None)
    if saved is None:
        return
    options = saved.to_dict()
    path = os.path.join(os.fspath(name_or_path), "generation_config.json")
    try:
        check_generation_options(options)
        for name in ("min_length", "min_new_tokens"):
            value = options.get(name)
            if value is not None and value > model.config.max_sequence_length:
                raise ValueError(
                    f"{name}={value!r} is not valid: expected at most the model's "
                    f"max_sequence_length={model.config.max_sequence_length}."
                )
    except ValueError as error:
        raise CheckpointError(
            f"{path}: {error} Correct that field in the file (or remove it for the default)."
        ) from error


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
    for name in ("top_p", "typical_p"):
        value = options.get(name)
        if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
            raise ValueError(f"{name}={value!r} is not valid: expected a number in (0, 1].")
    for name in ("epsilon_cutoff", "eta_cutoff"):
        value = options.get(name)
        if value is not None and not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ValueError(f"{name}={value!r} is not valid: expected a number in [0, 1).")
    beams, returned = options.get("num_beams") or 1, options.get("num_return_sequences") or 1
    if not options.get("do_sample") and returned > beams:
        raise ValueError(
            f"num_return_sequences={returned} needs num_beams >= {returned} (or do_sample=True): "
            "greedy and beam search return at most num_beams sequences per latent."
        )
