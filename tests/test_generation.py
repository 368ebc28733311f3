"""Generation, reconstruction and interpolation on a text VAE trained briefly on PTB."""

from __future__ import annotations

import logging

import pytest
import torch

from vaehub.data.text import pad_rows
from vaehub.models.text.modeling_text_vae import interpolate_latents


@pytest.fixture(scope="module")
def model(trained_ptb_model):
    return trained_ptb_model


@pytest.fixture(scope="module")
def sentences(ptb_slice):
    return [s.strip() for s in ptb_slice["corpus"]["train"]["text"][:6]]


def latents(model, n, seed=0):
    return torch.randn(n, model.config.latent_size, generator=torch.Generator().manual_seed(seed))


def rows_until_eos(model, sequences):
    """Generated ids cut after the first </s> (kept), as input_ids with a mask."""
    rows = []
    for row in sequences.tolist():
        eos = model.config.eos_token_id
        rows.append(row[: row.index(eos) + 1] if eos in row else row)
    return pad_rows(rows, model.config.pad_token_id)


def test_the_briefly_trained_model_uses_its_latent(model, ptb_slice):
    ids, mask = model.tokenize(ptb_slice["corpus"]["validation"]["text"][:64])
    kl = model(ids, mask).kl
    assert kl.mean() > 1.0


def test_greedy_decoding_picks_the_argmax_of_the_full_forward_pass(model):
    z = latents(model, 4)
    sequences = model.generate(z, max_new_tokens=25)
    assert sequences.shape[0] == 4 and (sequences[:, 0] == model.config.bos_token_id).all()
    input_ids, attention_mask = rows_until_eos(model, sequences)
    logits = model(input_ids, attention_mask, z=z).logits
    predicted = logits.argmax(-1)
    targets = input_ids[:, 1:]
    valid = attention_mask[:, 1:].bool()
    assert torch.equal(predicted[valid], targets[valid])
    assert len({tuple(r) for r in sequences.tolist()}) > 1, "different z should decode differently"


def test_generation_uses_the_current_cache_api(model):
    # transformers warns (once per process) when a model hands generate its state under a
    # deprecated name; such a name is one minor release away from being ignored.
    from transformers.utils import logging as hf_logging

    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect()
    hf_logging.get_logger("transformers").addHandler(handler)
    hf_logging.warning_once.cache_clear()
    try:
        model.generate(latents(model, 2), max_new_tokens=5)
        model.generate(latents(model, 2), num_beams=2, max_new_tokens=5)
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    assert not [m for m in messages if "deprecated" in m], messages


def test_sampling_is_reproducible_and_top_k_1_is_greedy(model):
    z = latents(model, 6, seed=1)
    greedy = model.generate(z, max_new_tokens=15)
    torch.manual_seed(3)
    first = model.generate(z, do_sample=True, temperature=1.3, max_new_tokens=15)
    torch.manual_seed(3)
    again = model.generate(z, do_sample=True, temperature=1.3, max_new_tokens=15)
    assert torch.equal(first, again)
    torch.manual_seed(4)
    other = model.generate(z, do_sample=True, temperature=1.3, max_new_tokens=15)
    assert not torch.equal(first, other)
    torch.manual_seed(5)
    top_k_1 = model.generate(z, do_sample=True, top_k=1, max_new_tokens=15)
    assert torch.equal(top_k_1, greedy)
    torch.manual_seed(6)
    tiny_top_p = model.generate(z, do_sample=True, top_p=1e-6, top_k=0, max_new_tokens=15)
    assert torch.equal(tiny_top_p, greedy)


def test_sampled_tokens_follow_the_decoder_distribution(model):
    # Many samples of the first word for one z: frequencies match softmax(logits / T).
    z = latents(model, 1, seed=2).expand(4000, -1)
    torch.manual_seed(0)
    first_words = model.generate(z, do_sample=True, temperature=0.8, top_k=0, max_new_tokens=1)[
        :, 1
    ]
    start = torch.full((1, 1), model.config.bos_token_id)
    logits = model(start, z=z[:1], decoder_latent=z[:1]).logits[0, -1]
    probabilities = torch.softmax(logits / 0.8, -1)
    top = probabilities.topk(3)
    for token, p in zip(top.indices.tolist(), top.values.tolist(), strict=True):
        observed = (first_words == token).float().mean().item()
        assert abs(observed - p) < 5 * (p * (1 - p) / 4000) ** 0.5 + 1e-3


def test_beam_search_scores_are_the_model_log_probabilities(model):
    z = latents(model, 2, seed=3)
    out = model.generate(
        z,
        num_beams=4,
        num_return_sequences=2,
        length_penalty=0.0,
        max_new_tokens=30,
        output_scores=True,
        return_dict_in_generate=True,
    )
    assert out.sequences.shape[0] == 4
    input_ids, attention_mask = rows_until_eos(model, out.sequences)
    z_per_row = z.repeat_interleave(2, dim=0)
    log_probability = model.log_likelihood(input_ids, attention_mask, z_per_row)
    torch.testing.assert_close(out.sequences_scores, log_probability, rtol=1e-4, atol=1e-3)
    # Returned best first, and never worse than greedy decoding for the same z.
    assert (out.sequences_scores[0::2] >= out.sequences_scores[1::2]).all()
    greedy_ids, greedy_mask = rows_until_eos(model, model.generate(z, max_new_tokens=30))
    greedy_score = model.log_likelihood(greedy_ids, greedy_mask, z)
    assert (out.sequences_scores[0::2] >= greedy_score - 1e-4).all()


def test_generate_sentences_speaks_strings(model):
    torch.manual_seed(0)
    sentences = model.generate_sentences(num_samples=3, do_sample=True, max_new_tokens=20)
    assert len(sentences) == 3 and all(isinstance(s, str) and s for s in sentences)
    assert all("<s>" not in s and "</s>" not in s and "<pad>" not in s for s in sentences)
    beams = model.generate_sentences(latents(model, 2), num_beams=3, max_new_tokens=20)
    assert len(beams) == 2


def test_reconstruct_decodes_the_posterior_mean(model, sentences):
    posterior = model.encode(sentences)
    assert posterior.mean.shape == (len(sentences), model.config.latent_size)
    assert (posterior.std > 0).all()
    assert model.reconstruct(sentences) == model.generate_sentences(posterior.mean)
    reconstructions = model.reconstruct(sentences)
    vocabulary = set(model.tokenizer.get_vocab())
    assert all(set(r.split()) <= vocabulary for r in reconstructions)


def test_interpolation_runs_from_one_reconstruction_to_the_other(model, sentences):
    path = model.interpolate(sentences[0], sentences[1], steps=6)
    assert len(path) == 6
    assert path[0] == model.reconstruct(sentences[0])[0]
    assert path[-1] == model.reconstruct(sentences[1])[0]


def test_interpolate_latents_is_the_straight_line():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    path = interpolate_latents(a, b, 5)
    torch.testing.assert_close(
        path, torch.tensor([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0], [3.0, -1.0], [4.0, -2.0]])
    )
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        interpolate_latents(a, b, 1)
