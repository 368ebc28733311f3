"""How a text model decodes by default: lengths from its own corpus, the `<unk>` switch,
and the decoding each entry point uses unless told otherwise.

A text model records the length distribution of its training corpus in its generation
config (`generation_config.length_statistics`, saved in `generation_config.json`), and its
`max_length` is the length below which `LENGTH_QUANTILE` of those sentences lie: a
decoding that has not ended by then is longer than almost any sentence the model saw. Past
the `LENGTH_DECAY_QUANTILE` length, the entry points raise the probability of `</s>` step
by step, so that a decoding ends rather than being cut.

`benchmarks/decoding_defaults.py` measures the generation report of a model under each
candidate decoding, to choose `DEFAULT_DECODING` by; the README's "Decoding" says which
choice stands and on what. Every default gives way to an argument the user passes, and to
a `generation_config` the user passes as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# The quantile of the training lengths at which decoding is cut.
LENGTH_QUANTILE = 0.99
LENGTH_QUANTILES = (0.5, 0.9, 0.99)
# Where the entry points start pushing a decoding to end, and how hard (transformers'
# `exponential_decay_length_penalty`).
LENGTH_DECAY_QUANTILE = 0.9
LENGTH_DECAY_FACTOR = 1.5

# The entry points of a text VAE and the decoding each uses by default. Greedy decoding of
# an LSTM falls into loops ("of a <unk> of a <unk> ..."); forbidding a repeated trigram
# ends them, and beam search looks for the likeliest sentence given the latent.
ENTRY_POINTS = ("generate", "reconstruct", "interpolate")
DEFAULT_DECODING: dict[str, dict[str, Any]] = {
    "generate": {"num_beams": 4, "no_repeat_ngram_size": 3},
    "reconstruct": {"num_beams": 4, "no_repeat_ngram_size": 3},
    "interpolate": {"num_beams": 4, "no_repeat_ngram_size": 3},
}


def length_statistics(lengths: Sequence[int]) -> dict[str, float]:
    """Summary of sentence lengths, in tokens a decoder emits (words and `</s>`).

    Args:
        lengths: one length per sentence, each >= 1.
    Returns:
        `{"sentences", "mean", "p50", "p90", "p99", "max"}`; a quantile is the smallest
        length at or below which that fraction of the sentences lie.
    """
    values = sorted(int(n) for n in lengths)
    if not values:
        raise ValueError("length_statistics needs at least one sentence length.")
    if values[0] < 1:
        raise ValueError(f"sentence lengths must be >= 1 token, got {values[0]}.")
    stats: dict[str, float] = {
        "sentences": len(values),
        "mean": sum(values) / len(values),
    }
    for q in LENGTH_QUANTILES:
        stats[f"p{round(q * 100)}"] = values[max(0, math.ceil(q * len(values)) - 1)]
    stats["max"] = values[-1]
    return stats


def record_length_statistics(model: Any, lengths: Sequence[int]) -> dict[str, float]:
    """Record the training corpus's sentence lengths in a text model's generation config
    and cut its decoding at their `LENGTH_QUANTILE` quantile (`<s>` counted in max_length).

    Args:
        lengths: tokens per training sentence, `<s>` excluded (words and `</s>`).
    """
    stats = length_statistics(lengths)
    cut = stats[f"p{round(LENGTH_QUANTILE * 100)}"]
    model.generation_config.length_statistics = stats
    # A generation config marked as derived from the model's config is loaded without the
    # attributes transformers does not know; this one is the model's own.
    model.generation_config._from_model_config = False
    model.generation_config.max_length = int(min(model.config.max_sequence_length, cut + 1))
    return stats


def training_lengths(model: Any) -> dict[str, float] | None:
    """The length statistics a model recorded, or `None` for a model saved before."""
    stats = getattr(model.generation_config, "length_statistics", None)
    return dict(stats) if isinstance(stats, dict) else None


def decoding_options(
    model: Any,
    entry_point: str | None,
    kwargs: dict[str, Any],
    allow_unk: bool = False,
) -> dict[str, Any]:
    """The keyword arguments to hand to `generate`: the entry point's defaults under the
    user's own, and `<unk>` suppressed unless `allow_unk`.

    A `generation_config` given by the user is taken as the whole decoding: no default of
    the entry point is added to it.
    """
    if entry_point is not None and entry_point not in DEFAULT_DECODING:
        raise ValueError(f"unknown entry point {entry_point!r}: one of {ENTRY_POINTS}.")
    options = dict(kwargs)
    if entry_point is not None and options.get("generation_config") is None:
        defaults = DEFAULT_DECODING[entry_point]
        sampling = options.get("do_sample")
        for name, value in defaults.items():
            # Sampling asked for: the beams of the default would turn it into beam sampling.
            if sampling and name == "num_beams":
                continue
            options.setdefault(name, value)
    stats = training_lengths(model)
    if entry_point is not None and stats and options.get("generation_config") is None:
        # Past the length 90% of the training sentences stay under, the chance of </s> grows
        # by half at every step: a sentence ends where such sentences end, not at the cap.
        start = int(stats[f"p{round(LENGTH_DECAY_QUANTILE * 100)}"]) + 1
        options.setdefault("exponential_decay_length_penalty", (start, LENGTH_DECAY_FACTOR))
    if not allow_unk:
        unk = model.config.unk_token_id
        suppressed = list(options.get("suppress_tokens") or [])
        if unk not in suppressed:
            options["suppress_tokens"] = [*suppressed, unk]
    return options
