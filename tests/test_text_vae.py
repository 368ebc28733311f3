"""TextVAEModel: the ELBO's parts, padding invariance, word dropout, priors, saving."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from helpers import small_config
from transformers import AutoModel, AutoTokenizer

from vaehub import TextVAEModel, TextVAEOutput, build_tokenizer
from vaehub.data.text import pad_rows
from vaehub.models.text.lstm_decoder import SCORING_BLOCK_ROWS

CORPUS = [
    "the cat sat on the mat",
    "a dog ate the cat",
    "the dog sat on a log",
    "cats and dogs",
    "the mat",
]


@pytest.fixture
def model() -> TextVAEModel:
    torch.manual_seed(0)
    tokenizer = build_tokenizer(CORPUS)
    # Larger than He et al.'s U(−0.01, 0.01) so that every term is far from zero.
    model = TextVAEModel(small_config(len(tokenizer), init_range=0.3, embedding_init_range=0.5))
    model.tokenizer = tokenizer
    return model.eval()


def test_output_holds_the_elbo_parts_per_example(model):
    input_ids, attention_mask = model.tokenize(CORPUS[:3])
    out = model(input_ids, attention_mask)
    assert isinstance(out, TextVAEOutput)
    b, t, v, d = 3, input_ids.shape[1], model.config.vocab_size, model.config.latent_size
    assert out.reconstruction_nll.shape == out.kl.shape == (b,)
    assert out.kl_per_dim.shape == out.z.shape == out.posterior_mean.shape == (b, d)
    assert out.logits.shape == (b, t - 1, v)
    torch.testing.assert_close(out.loss, (out.reconstruction_nll + out.kl).mean())
    torch.testing.assert_close(out.num_tokens, attention_mask[:, 1:].sum(-1))


def test_terms_match_their_closed_forms(model):
    input_ids, attention_mask = model.tokenize(CORPUS[:3])
    out = model(input_ids, attention_mask)
    mean, var = out.posterior_mean, out.posterior_std**2
    torch.testing.assert_close(out.kl, 0.5 * (mean**2 + var - 1 - var.log()).sum(-1))
    token_nll = F.cross_entropy(out.logits.transpose(1, 2), input_ids[:, 1:], reduction="none")
    torch.testing.assert_close(out.reconstruction_nll, (token_nll * attention_mask[:, 1:]).sum(-1))
    assert (out.kl > 0).all() and (out.reconstruction_nll > 0).all()


@pytest.mark.parametrize("samples", [4, 40])  # 40 × 5 sentences: more token rows than a block
def test_log_likelihood_is_minus_the_reconstruction_for_the_same_z(model, samples):
    input_ids, attention_mask = model.tokenize(CORPUS)
    if samples == 40:
        assert samples * int(attention_mask[:, 1:].sum()) > 2 * SCORING_BLOCK_ROWS
    z = torch.randn(samples, len(CORPUS), model.config.latent_size)
    log_likelihood = model.log_likelihood(input_ids, attention_mask, z)
    assert log_likelihood.shape == (samples, len(CORPUS))
    for k in range(samples):
        out = model(input_ids, attention_mask, z=z[k])
        torch.testing.assert_close(log_likelihood[k], -out.reconstruction_nll)


def test_padding_and_neighbours_never_change_a_number(model):
    sentence = "the dog sat on a log"
    alone_ids, alone_mask = model.tokenize([sentence])
    z = torch.randn(1, model.config.latent_size)
    alone = model(alone_ids, alone_mask, z=z)
    row = alone_ids[0].tolist()
    for extra_padding, neighbours in ((0, ["cats"]), (7, []), (3, ["the mat", "a dog ate"])):
        rows = [row + [0] * extra_padding] + [model.tokenizer(s)["input_ids"] for s in neighbours]
        input_ids, attention_mask = pad_rows(rows, 0)
        attention_mask[0, len(row) :] = 0
        z_batch = torch.cat([z, torch.randn(len(neighbours), model.config.latent_size)])
        batched = model(input_ids, attention_mask, z=z_batch)
        torch.testing.assert_close(
            batched.reconstruction_nll[0], alone.reconstruction_nll[0], rtol=1e-6, atol=1e-5
        )
        torch.testing.assert_close(batched.kl[0], alone.kl[0], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(
            batched.posterior_mean[0], alone.posterior_mean[0], rtol=1e-6, atol=1e-6
        )


def test_word_dropout_only_in_training_and_at_its_rate():
    torch.manual_seed(0)
    tokenizer = build_tokenizer(CORPUS)
    config = small_config(
        len(tokenizer),
        word_dropout=0.4,
        decoder_embedding_dropout=0.0,
        decoder_output_dropout=0.0,
        init_range=0.3,
    )
    model = TextVAEModel(config)
    model.tokenizer = tokenizer
    input_ids, attention_mask = model.tokenize(CORPUS)
    z = torch.randn(len(CORPUS), config.latent_size)
    no_dropout = TextVAEModel(
        small_config(len(tokenizer), decoder_embedding_dropout=0.0, decoder_output_dropout=0.0)
    )
    no_dropout.load_state_dict(model.state_dict())
    model.eval()
    no_dropout.eval()
    torch.testing.assert_close(
        model(input_ids, attention_mask, z=z).logits,
        no_dropout(input_ids, attention_mask, z=z).logits,
    )
    model.train()
    assert not torch.equal(
        model(input_ids, attention_mask, z=z).logits,
        no_dropout(input_ids, attention_mask, z=z).logits,
    )
    # The rate: over many draws, 40% of real words (never <s>, never padding) become <unk>.
    ids = input_ids.repeat(400, 1)
    mask = attention_mask.repeat(400, 1)
    dropped = model._word_dropout(ids[:, :-1], mask[:, :-1]) != ids[:, :-1]
    eligible = mask[:, 1:-1].bool()
    assert not dropped[:, 0].any()
    assert not dropped[:, 1:][~eligible].any()
    rate = dropped[:, 1:][eligible].float().mean().item()
    n = eligible.sum().item()
    assert abs(rate - 0.4) < 5 * (0.4 * 0.6 / n) ** 0.5


def test_constrained_prior_commits_to_its_rate():
    tokenizer = build_tokenizer(CORPUS)
    config = small_config(len(tokenizer), prior="constrained", committed_rate=3.0, init_range=0.5)
    model = TextVAEModel(config).eval()
    model.tokenizer = tokenizer
    out = model(*model.tokenize(CORPUS))
    assert (out.posterior_std <= config.posterior_std_max).all()
    assert (out.kl >= 3.0 - 1e-5).all()
    assert model.prior.committed_rate == pytest.approx(3.0, abs=1e-6)


def test_initialisation_follows_he_et_al():
    model = TextVAEModel(small_config(500))
    for name, parameter in model.named_parameters():
        bound = 0.1 if "embed_tokens" in name else 0.01
        assert parameter.abs().max() <= bound, name
        assert parameter.abs().max() > 0.9 * bound, name


def test_save_and_load_through_auto_classes_give_identical_logits(model, tmp_path):
    model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= files
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "text_vae"
    input_ids, attention_mask = model.tokenize(CORPUS)
    z = torch.randn(len(CORPUS), model.config.latent_size)
    expected = model(input_ids, attention_mask, z=z).logits
    assert AutoTokenizer.from_pretrained(tmp_path).get_vocab() == model.tokenizer.get_vocab()
    for loader in (TextVAEModel, AutoModel):
        loaded = loader.from_pretrained(tmp_path)
        assert isinstance(loaded, TextVAEModel)
        assert loaded.config == model.config
        assert torch.equal(loaded(input_ids, attention_mask, z=z).logits, expected)
        assert loaded.tokenizer(CORPUS[0])["input_ids"] == model.tokenizer(CORPUS[0])["input_ids"]
        assert loaded.generation_config.max_length == model.config.max_sequence_length


def test_a_model_saved_without_tokenizer_loads_without_one(tmp_path):
    model = TextVAEModel(small_config(50))
    model.save_pretrained(tmp_path)
    loaded = TextVAEModel.from_pretrained(tmp_path)
    assert loaded.tokenizer is None
    with pytest.raises(ValueError, match="this model has no tokenizer"):
        loaded.reconstruct(["the cat"])
