"""The text δ-VAE: one AR(1) latent per decoder step, read by an anti-causal encoder."""

from __future__ import annotations

import pytest
import torch
from helpers import small_config
from transformers import AutoModel

from vaehub import TextVAEModel, build_tokenizer
from vaehub.data.text import pad_rows
from vaehub.evaluation.metrics import evaluate_vae
from vaehub.latent.priors import ar1_committed_rate

CORPUS = ["the cat sat on the mat", "a dog ate the cat", "the dog sat on a log", "cats",
          "a log sat on the cat and the dog"]


@pytest.fixture
def model() -> TextVAEModel:
    torch.manual_seed(0)
    tokenizer = build_tokenizer(CORPUS)
    config = small_config(len(tokenizer), prior="ar1", committed_rate=3.0, latent_length=10,
                          max_sequence_length=16, init_range=0.3, embedding_init_range=0.5)
    model = TextVAEModel(config).eval()
    model.tokenizer = tokenizer
    return model


def test_one_latent_per_decoder_step(model):
    input_ids, attention_mask = model.tokenize(CORPUS)
    out = model(input_ids, attention_mask)
    steps = input_ids.shape[1] - 1
    assert out.z.shape == out.posterior_mean.shape == (len(CORPUS), steps, 8)
    # Past a sentence's own steps its latent is empty (zero), counted nowhere.
    short = CORPUS.index("cats")
    assert torch.equal(out.z[short, 2:], torch.zeros(steps - 2, 8))


def test_encoder_is_anticausal(model):
    tokenizer = model.tokenizer
    ids = tokenizer("the cat sat on the mat")["input_ids"]
    changed = list(ids)
    vocab = tokenizer.get_vocab()
    for t in (1, 3, 5):
        changed[1: t + 1] = [vocab["dog"]] * t  # every word before position t + 1
        batch, mask = pad_rows([ids, changed], 0)
        mean = model.encode(batch, mask).mean
        torch.testing.assert_close(mean[1, t + 1:], mean[0, t + 1:], rtol=0, atol=1e-6)
        assert not torch.allclose(mean[1, : t + 1], mean[0, : t + 1])


def test_kl_commits_to_the_rate_of_each_sentence_length(model):
    input_ids, attention_mask = model.tokenize(CORPUS)
    for seed in range(3):
        torch.manual_seed(seed)
        for parameter in model.encoder.parameters():
            parameter.data.normal_(0, 0.3)
        kl = model(input_ids, attention_mask).kl
        steps = (attention_mask.sum(-1) - 1).tolist()
        rates = [model.committed_rate_for(n) for n in steps]
        assert all(k >= r - 1e-5 for k, r in zip(kl.tolist(), rates, strict=True))
    alphas = model.config.ar1_alphas()
    assert model.committed_rate_for(10) == pytest.approx(3.0, abs=1e-6)
    assert model.committed_rate_for(7) == pytest.approx(ar1_committed_rate(alphas, 7))
    assert model.config.latent_length == 10


def test_generation_reconstruction_and_interpolation_keep_working(model):
    torch.manual_seed(1)
    samples = model.generate_sentences(num_samples=3, do_sample=True, max_new_tokens=8)
    assert len(samples) == 3 and all(isinstance(s, str) for s in samples)
    beams = model.generate_sentences(num_samples=2, num_beams=3, max_new_tokens=8)
    assert len(beams) == 2
    assert len(model.reconstruct(CORPUS[:2], max_new_tokens=8)) == 2
    assert len(model.interpolate(CORPUS[0], CORPUS[3], steps=4, max_new_tokens=8)) == 4
    # Greedy decoding from given latents is the argmax of the teacher-forced pass.
    z = torch.randn(2, 15, 8)
    sequences = model.generate(z, max_new_tokens=10)
    rows = [row[: row.index(3) + 1] if 3 in row else row for row in sequences.tolist()]
    input_ids, attention_mask = pad_rows(rows, 0)
    logits = model(input_ids, attention_mask, z=z[:, : input_ids.shape[1] - 1]).logits
    valid = attention_mask[:, 1:].bool()
    assert torch.equal(logits.argmax(-1)[valid], input_ids[:, 1:][valid])


def test_metrics_and_save_load(model, tmp_path):
    input_ids, attention_mask = model.tokenize(CORPUS)
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    results = evaluate_vae(model, [batch], iw_samples=4)
    assert results["kl"] >= min(model.committed_rate_for(n) for n in range(1, 10)) - 1e-5
    assert results["nll"] <= results["neg_elbo"] + 1.0
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    z = torch.randn(len(CORPUS), input_ids.shape[1] - 1, 8)
    assert torch.equal(loaded(input_ids, attention_mask, z=z).logits,
                       model(input_ids, attention_mask, z=z).logits)


def test_active_units_pool_every_position_over_batches_of_different_widths(model):
    # Batches of different widths: a unit is a latent channel, its posterior mean taken at
    # every valid position of every sentence.
    batches = []
    for sentences in (CORPUS[:2], CORPUS[2:]):
        input_ids, attention_mask = model.tokenize(sentences)
        batches.append({"input_ids": input_ids, "attention_mask": attention_mask})
    assert batches[0]["input_ids"].shape[1] != batches[1]["input_ids"].shape[1]
    results = evaluate_vae(model, batches)
    rows = []
    for batch in batches:
        mean = model.encode(**batch).mean  # (batch, steps, d)
        steps = batch["attention_mask"].sum(-1) - 1
        rows += [mean[i, :n] for i, n in enumerate(steps.tolist())]
    expected = torch.cat(rows).double().var(dim=0)
    assert len(results["au_variance"]) == model.config.latent_size
    torch.testing.assert_close(torch.tensor(results["au_variance"], dtype=torch.float64), expected)
    assert results["active_units"] == int((expected > 0.01).sum())


def test_latent_length_says_at_which_sentence_length_delta_holds():
    from vaehub import TextVAEConfig
    from vaehub.recipes.train import ModelArguments

    given = ModelArguments(model_type="text_vae", prior="ar1", committed_rate=5.0, latent_length=22)
    config = TextVAEConfig.from_preset("ptb", vocab_size=50, **given.overrides())
    model = TextVAEModel(config)
    assert model.committed_rate_for(22) == pytest.approx(5.0, rel=1e-5)
    assert model.committed_rate_for(10) < 5.0 < model.committed_rate_for(40)
    # By default δ holds at the longest sentence, so a PTB sentence commits far less.
    longest = TextVAEModel(TextVAEConfig.from_preset("ptb", vocab_size=50, prior="ar1",
                                                     committed_rate=5.0))
    assert longest.committed_rate_for(22) < 0.5 * model.committed_rate_for(22)
    with pytest.raises(ValueError, match="latent_length=22 is not valid.*prior='ar1'"):
        TextVAEConfig.from_preset("ptb", latent_length=22)
    with pytest.raises(ValueError, match="--latent_length is not a text_lm setting"):
        ModelArguments(model_type="text_lm", latent_length=22).overrides()
