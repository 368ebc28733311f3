"""Decoding defaults of the text models: lengths from the training corpus, the `<unk>`
switch, the default strategy under the user's options, lerp and slerp paths, and the SVI
refinement an SA-VAE infers with by default."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import small_config
from transformers import AutoModel, GenerationConfig

from vaehub import TextVAEModel
from vaehub.data.text import TextCollator
from vaehub.latent import svi
from vaehub.models.modeling_utils import Interpolation, interpolate_latents
from vaehub.models.text.decoding import (
    DEFAULT_DECODING,
    decoding_options,
    length_statistics,
    record_length_statistics,
    training_lengths,
)
from vaehub.training.arguments import VAETrainingArguments
from vaehub.training.trainer import VAETrainer


@pytest.fixture(scope="module")
def model(trained_ptb_model, ptb_slice):
    """The small PTB model, with the lengths of its training sentences recorded."""
    lengths = [n - 1 for n in ptb_slice["data"]["train"]["length"]]
    record_length_statistics(trained_ptb_model, lengths)
    return trained_ptb_model


@pytest.fixture(scope="module")
def sentences(ptb_slice):
    return [s.strip() for s in ptb_slice["corpus"]["validation"]["text"][:6]]


def test_length_statistics_are_the_quantiles_of_the_lengths():
    stats = length_statistics([7, 3, 10, 1, 5, 2, 9, 4, 8, 6])
    assert stats == {
        "sentences": 10, "mean": 5.5, "p50": 5, "p90": 9, "p99": 10, "max": 10,
    }  # fmt: skip
    assert length_statistics([4] * 99 + [40])["p99"] == 4
    with pytest.raises(ValueError, match="at least one"):
        length_statistics([])


def test_recorded_lengths_cut_decoding_and_travel_with_the_model(model, ptb_slice, tmp_path):
    lengths = sorted(n - 1 for n in ptb_slice["data"]["train"]["length"])
    p99 = lengths[math.ceil(0.99 * len(lengths)) - 1]
    assert model.generation_config.max_length == min(model.config.max_sequence_length, p99 + 1)
    assert training_lengths(model)["mean"] == pytest.approx(sum(lengths) / len(lengths))
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert training_lengths(loaded) == training_lengths(model)
    assert loaded.generation_config.max_length == model.generation_config.max_length


def test_default_decodings_end_within_the_recorded_length(model, sentences):
    torch.manual_seed(0)
    limit = model.generation_config.max_length
    ids = model.generate(num_samples=16, **decoding_options(model, "generate", {}))
    assert ids.shape[1] <= limit
    for texts in (
        model.generate_sentences(num_samples=16),
        model.reconstruct(sentences),
        model.interpolate(sentences[0], sentences[1], steps=5),
    ):
        assert all(len(text.split()) + 1 <= limit - 1 for text in texts)


def test_unk_is_kept_out_unless_allowed(model):
    z = torch.randn(24, model.config.latent_size, generator=torch.Generator().manual_seed(1))
    allowed = model.generate_sentences(z, allow_unk=True)
    assert any("<unk>" in s.split() for s in allowed), "the test needs a model that decodes <unk>"
    assert not any("<unk>" in s.split() for s in model.generate_sentences(z))


def test_the_users_options_win_over_the_defaults(model):
    z = torch.randn(4, model.config.latent_size, generator=torch.Generator().manual_seed(2))
    unk = model.config.unk_token_id
    # Past the 90th-percentile length, </s> is pushed up by half at every step.
    decay = (int(training_lengths(model)["p90"]) + 1, 1.5)
    assert decoding_options(model, "generate", {})["exponential_decay_length_penalty"] == decay
    greedy = model.generate(
        z, num_beams=1, suppress_tokens=[unk], exponential_decay_length_penalty=decay
    )
    assert model.generate_sentences(z, num_beams=1, no_repeat_ngram_size=0) == model.decode_ids(
        greedy
    )
    defaults = model.generate(
        z, **DEFAULT_DECODING["generate"], suppress_tokens=[unk],
        exponential_decay_length_penalty=decay,
    )  # fmt: skip
    assert model.generate_sentences(z) == model.decode_ids(defaults)
    # A whole generation config is the user's decoding: no default is added to it.
    config = GenerationConfig(max_length=10, num_beams=1)
    assert decoding_options(model, "generate", {"generation_config": config}) == {
        "generation_config": config,
        "suppress_tokens": [unk],
    }
    # Sampling asked for: the default beams stay out.
    assert "num_beams" not in decoding_options(model, "generate", {"do_sample": True})
    with pytest.raises(ValueError, match="unknown entry point"):
        decoding_options(model, "summarise", {})


def test_slerp_follows_the_great_circle_and_lerp_the_line():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    path = interpolate_latents(a, b, 3, method="slerp")
    half = 2 * math.sqrt(0.5)
    torch.testing.assert_close(path, torch.tensor([[2.0, 0.0], [half, half], [0.0, 2.0]]))
    torch.testing.assert_close(path.norm(dim=-1), torch.full((3,), 2.0))
    line = interpolate_latents(a, b, 3, method="lerp")
    torch.testing.assert_close(line[1], torch.tensor([1.0, 1.0]))
    # Parallel latents have no circle to follow: slerp is the line.
    parallel = interpolate_latents(a, 3 * a, 4, method="slerp")
    torch.testing.assert_close(parallel, interpolate_latents(a, 3 * a, 4))
    with pytest.raises(ValueError, match="'lerp' or 'slerp'"):
        interpolate_latents(a, b, 3, method="cubic")


def test_interpolate_returns_the_path_with_its_inputs_and_endpoints(model, sentences):
    path = model.interpolate(sentences[0], sentences[1], steps=4, method="slerp")
    assert isinstance(path, Interpolation) and len(path) == 4
    assert path.inputs == (sentences[0], sentences[1])
    assert path.t == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert path.method == "slerp"
    assert path.endpoints == (
        model.reconstruct(sentences[0])[0],
        model.reconstruct(sentences[1])[0],
    )
    assert list(path) == list(model.interpolate(sentences[0], sentences[1], 4, "slerp"))


def test_an_sa_vae_infers_with_its_refinement_by_default(ptb_slice, tmp_path):
    torch.manual_seed(0)
    tokenizer, data = ptb_slice["tokenizer"], ptb_slice["data"]
    sa_vae = TextVAEModel(small_config(len(tokenizer)))
    sa_vae.tokenizer = tokenizer
    args = VAETrainingArguments(
        str(tmp_path / "run"), objective="sa_vae", sa_vae_steps=2, sa_vae_lr=0.5,
        max_steps=3, per_device_train_batch_size=16, use_cpu=True, report_to=[],
        save_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    VAETrainer(
        model=sa_vae, args=args, train_dataset=data["train"].select(range(64)),
        data_collator=TextCollator(),
    ).train()  # fmt: skip
    expected = {"refine_steps": 2, "refine_lr": 0.5, "refine_momentum": 0.5,
                "refine_max_grad_norm": 5.0}  # fmt: skip
    assert sa_vae.config.inference_refinement == expected
    sa_vae.save_pretrained(tmp_path / "saved")
    sa_vae = AutoModel.from_pretrained(tmp_path / "saved").eval()
    assert sa_vae.inference_refinement == expected
    # Bigger steps than this briefly trained model's, so that they move the mean far more
    # than float32 rounding: the default inference follows whatever the config records.
    sa_vae.config.inference_refinement = {**expected, "refine_steps": 4, "refine_lr": 20.0}
    text = ["the company said it expects higher sales"]
    ids, mask = sa_vae.tokenize(text)
    batch = {"input_ids": ids, "attention_mask": mask}
    bare = sa_vae.posterior_parameters(**batch)
    # Each SVI step follows a sampled ELBO: the same seed gives the same steps.
    torch.manual_seed(5)
    refined = svi.refine(sa_vae, batch, bare, 4, 20.0, 0.5, 5.0)
    assert (refined.mean - bare.mean).abs().max() > 1e-2
    torch.manual_seed(5)
    torch.testing.assert_close(sa_vae.encode(text).mean, refined.mean)
    torch.testing.assert_close(sa_vae.encode(text, refine=False).mean, bare.mean)


def test_refine_true_is_refused_where_no_refinement_was_recorded(model):
    assert model.inference_refinement is None
    with pytest.raises(ValueError, match="records no SVI refinement"):
        model.encode(["the company said"], refine=True)


def test_every_decoding_control_of_generate_acts(model):
    z = torch.randn(12, model.config.latent_size, generator=torch.Generator().manual_seed(3))
    greedy = {"num_beams": 1, "no_repeat_ngram_size": 0}
    plain = model.generate_sentences(z, **greedy)
    # bad_words_ids: the most frequent decoded word never appears once banned.
    words = [w for s in plain for w in s.split()]
    banned = max(set(words), key=words.count)
    ban = [[model.tokenizer.convert_tokens_to_ids(banned)]]
    assert not any(
        banned in s.split() for s in model.generate_sentences(z, **greedy, bad_words_ids=ban)
    )
    # no_repeat_ngram_size=2: no bigram of token ids twice in a sequence.
    unk = model.config.unk_token_id
    ids = model.generate(z, num_beams=1, no_repeat_ngram_size=2, suppress_tokens=[unk])
    for row in ids.tolist():
        bigrams = list(zip(row[:-1], row[1:], strict=True))
        bigrams = [b for b in bigrams if model.config.pad_token_id not in b]
        assert len(bigrams) == len(set(bigrams)), row
    # repetition_penalty: a huge one leaves no word repeated within a sentence.
    for sentence in model.generate_sentences(z, **greedy, repetition_penalty=1e6):
        assert len(sentence.split()) == len(set(sentence.split()))

    # length_penalty: beam search favours longer hypotheses as it grows.
    def mean_length(penalty: float) -> float:
        sentences = model.generate_sentences(z, num_beams=4, length_penalty=penalty)
        return sum(len(s.split()) for s in sentences) / len(sentences)

    assert mean_length(3.0) > mean_length(-3.0)
