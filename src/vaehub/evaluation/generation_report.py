"""What a user of a text VAE sees, measured: reconstructions, samples from the prior and
interpolations, each decoded with the model's default decoding (`vaehub.models.text.decoding`).

- Reconstruction: corpus BLEU (Papineni et al. 2002, through `sacrebleu` on the corpus's
  own whitespace tokens), token accuracy and the exact-match rate of the decoded posterior
  means against the inputs.
- Prior samples: the fraction that end with `</s>` within the length limit, their mean
  length beside the training corpus's, distinct-1/2 (Li et al. 2016: distinct n-grams over
  all n-grams of the samples) and, given a language model, their perplexity under it.
- Interpolation: over fixed pairs of sentences, the number of distinct sentences along each
  path, the mean token edit distance between neighbouring points, and endpoint fidelity:
  the corpus BLEU of the paths' first decodings against their first inputs and of their
  last decodings against their second inputs (a path that starts and ends elsewhere is
  not an interpolation between the sentences given).

Lengths count the tokens a decoder emits: the words and `</s>`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from vaehub.models.text.decoding import decoding_options, training_lengths

SHOWN_SAMPLES = 5
SHOWN_RECONSTRUCTIONS = 3


def token_accuracy(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """The fraction of reference tokens matched at the same position by the hypothesis
    (words and `</s>`: a hypothesis that stops early or runs on loses the tokens past its
    end), over the whole corpus."""
    _same_count(references, hypotheses)
    matched = total = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref, hyp = reference.split() + ["</s>"], hypothesis.split() + ["</s>"]
        matched += sum(r == h for r, h in zip(ref, hyp, strict=False))
        total += len(ref)
    return matched / total


def corpus_bleu(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus BLEU (0–100) of hypotheses against one reference each, on the sentences'
    own whitespace tokens (`sacrebleu`, tokenize="none")."""
    import sacrebleu

    _same_count(references, hypotheses)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize="none").score)


def exact_match_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """The fraction of hypotheses whose tokens are exactly the reference's."""
    _same_count(references, hypotheses)
    same = sum(r.split() == h.split() for r, h in zip(references, hypotheses, strict=True))
    return same / len(references)


def endpoint_fidelity(
    pairs: Sequence[tuple[str, str]], paths: Sequence[Sequence[str]]
) -> dict[str, float]:
    """How close interpolation paths start and end to the sentences they join.

    Args:
        pairs: the (first, second) input sentence of each path.
        paths: each path's decodings, first to last.
    Returns:
        `start_bleu` (first decodings against the first inputs), `end_bleu` (last
        decodings against the second inputs) and `endpoint_bleu` (both ends as one
        corpus), corpus BLEU 0–100.
    """
    if len(pairs) != len(paths) or not pairs:
        raise ValueError(
            f"endpoint_fidelity needs one path per pair, at least one: got {len(paths)} "
            f"paths for {len(pairs)} pairs."
        )
    starts, ends = [p[0] for p in paths], [p[-1] for p in paths]
    firsts, seconds = [a for a, _ in pairs], [b for _, b in pairs]
    return {
        "start_bleu": corpus_bleu(firsts, starts),
        "end_bleu": corpus_bleu(seconds, ends),
        "endpoint_bleu": corpus_bleu(firsts + seconds, starts + ends),
    }


def distinct_n(sentences: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of the sentences' words (0 when there are none)."""
    grams = [
        tuple(words[i : i + n])
        for words in (s.split() for s in sentences)
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute: 1)."""
    previous = list(range(len(b) + 1))
    for i, token_a in enumerate(a, start=1):
        current = [i]
        for j, token_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token_a != token_b))
            )
        previous = current
    return previous[-1]


def interpolation_summary(paths: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean number of distinct sentences along a path, and mean edit distance (in tokens)
    between neighbouring sentences of a path, over the paths."""
    if not paths or any(len(path) < 2 for path in paths):
        raise ValueError("interpolation_summary needs paths of at least 2 sentences each.")
    distinct = [len(set(path)) for path in paths]
    steps = [
        edit_distance(a.split(), b.split())
        for path in paths
        for a, b in zip(path[:-1], path[1:], strict=True)
    ]
    return {
        "distinct_sentences": sum(distinct) / len(distinct),
        "neighbour_edit_distance": sum(steps) / len(steps),
    }


def _same_count(references: Sequence[str], hypotheses: Sequence[str]) -> None:
    if len(references) != len(hypotheses) or not references:
        raise ValueError(
            f"need as many hypotheses as references, at least one: got {len(hypotheses)} "
            f"and {len(references)}."
        )


def generation_report(
    model: Any,
    sentences: Sequence[str],
    num_samples: int = 100,
    num_pairs: int = 10,
    steps: int = 5,
    seed: int = 0,
    baseline: Any = None,
    batch_size: int = 50,
    decoding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure what a user of `model` sees, with its default decoding, from `seed`.

    Args:
        sentences: held-out sentences (the verification slice): every one is
            reconstructed; the first `2 · num_pairs` make the interpolation pairs.
        num_samples: latents drawn from the prior and decoded.
        baseline: a `TextLMModel` under which the samples' perplexity is measured.
        decoding: options of `generate` that replace the defaults at every entry point
            (as a user's keyword arguments would), to compare decodings.
    Returns:
        `{"settings", "reconstruction", "samples", "interpolation", "shown"}`: the numbers,
        and the sentences a card shows (the first samples, reconstructions and path).
    """
    sentences = list(sentences)
    if len(sentences) < 2:
        raise ValueError("a generation report needs at least 2 held-out sentences.")
    num_pairs = min(num_pairs, len(sentences) // 2)
    model = model.eval()
    user = dict(decoding or {})
    allow_unk = bool(user.pop("allow_unk", False))
    torch.manual_seed(seed)
    reconstructions: list[str] = []
    for start in range(0, len(sentences), batch_size):
        reconstructions += model.reconstruct(
            sentences[start : start + batch_size], allow_unk=allow_unk, **user
        )
    samples, ended = _samples(model, num_samples, batch_size, user, allow_unk)
    pairs = [(sentences[2 * i], sentences[2 * i + 1]) for i in range(num_pairs)]
    paths = [
        list(model.interpolate(a, b, steps=steps, allow_unk=allow_unk, **user)) for a, b in pairs
    ]
    lengths = [len(s.split()) + 1 for s in samples]
    data = training_lengths(model)
    report_samples: dict[str, Any] = {
        "count": num_samples,
        "ended_fraction": sum(ended) / num_samples,
        "mean_length": sum(lengths) / num_samples,
        "data_mean_length": data["mean"] if data else None,
        "max_length": int(model.generation_config.max_length) - 1,
        "distinct_1": distinct_n(samples, 1),
        "distinct_2": distinct_n(samples, 2),
        "empty_fraction": sum(not s.strip() for s in samples) / num_samples,
    }
    if baseline is not None:
        report_samples["baseline_ppl"] = _perplexity(baseline, samples, batch_size)
    return {
        "settings": {
            "seed": seed,
            "num_samples": num_samples,
            "num_pairs": num_pairs,
            "steps": steps,
            "examples": len(sentences),
            "decoding": {
                e: decoding_options(model, e, {})
                for e in ("generate", "reconstruct", "interpolate")
            },
        },  # fmt: skip
        "reconstruction": {
            "bleu": corpus_bleu(sentences, reconstructions),
            "token_accuracy": token_accuracy(sentences, reconstructions),
            "exact_match": exact_match_rate(sentences, reconstructions),
        },
        "samples": report_samples,
        "interpolation": {**interpolation_summary(paths), **endpoint_fidelity(pairs, paths)},
        "shown": {
            "samples": samples[:SHOWN_SAMPLES],
            "reconstructions": [
                {"input": s, "output": r}
                for s, r in list(zip(sentences, reconstructions, strict=True))[
                    :SHOWN_RECONSTRUCTIONS
                ]
            ],
            "interpolation": {"inputs": sentences[:2], "path": paths[0]},
        },
    }


def _samples(
    model: Any, count: int, batch_size: int, user: dict[str, Any], allow_unk: bool
) -> tuple[list[str], list[bool]]:
    """`count` prior samples decoded as `generate_sentences` would, and whether each ended."""
    options = decoding_options(model, "generate", user, allow_unk)
    sentences: list[str] = []
    ended: list[bool] = []
    for start in range(0, count, batch_size):
        ids = model.generate(num_samples=min(batch_size, count - start), **options)
        ended += [model.config.eos_token_id in row for row in ids.tolist()]
        sentences += model.decode_ids(ids)
    return sentences, ended


def _perplexity(language_model: Any, sentences: Sequence[str], batch_size: int) -> float | None:
    """exp of the mean NLL per token (words and `</s>`) of sentences under an LM.

    A sample decoded as no word at all (`</s>` first) has no sentence to score and is left
    out (`None` when every sample is empty); `empty_fraction` in the report counts them.
    """
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        return None
    nll = tokens = 0.0
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start : start + batch_size])
            nll -= float(language_model.score(batch).sum())
            tokens += sum(len(s.split()) + 1 for s in batch)
    return math.exp(nll / tokens)
