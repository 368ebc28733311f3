"""Configs: validation, committed-rate resolution, presets, saving and Auto registration."""

from __future__ import annotations

import json
import math

import pytest
from transformers import AutoConfig

from vaehub import TextVAEConfig, VAEConfig
from vaehub.latent.priors import ar1_committed_rate, constrained_committed_rate


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("latent_size", 0, "integer >= 1"),
        ("latent_size", 2.5, "integer >= 1"),
        ("latent_size", True, "integer >= 1"),
        ("prior", "gaussian", "'standard', 'constrained', 'ar1'"),
        ("posterior_std_min", 0.0, r"\(0.0, 1.0\)"),
        ("latent_length", 0, "integer >= 1"),
        ("ar1_alpha_spread", "random", "'shared', 'linear'"),
        ("committed_rate", -1.0, r"\[0.0, inf\)"),
        ("committed_rate", math.nan, r"\[0.0, inf\)"),
        ("vocab_size", 3, "integer >= 5"),
        ("embedding_size", -4, "integer >= 1"),
        ("encoder_hidden_size", "big", "integer >= 1"),
        ("decoder_hidden_size", 0, "integer >= 1"),
        ("decoder_embedding_dropout", 1.0, r"\[0.0, 1.0\)"),
        ("decoder_output_dropout", -0.1, r"\[0.0, 1.0\)"),
        ("word_dropout", 2, r"\[0.0, 1.0\)"),
        ("max_sequence_length", 1, "integer >= 2"),
        ("init_range", 0, r"\(0.0, inf\)"),
        ("embedding_init_range", math.inf, r"\(0.0, inf\)"),
        ("pad_token_id", -1, "integer >= 0"),
        ("eos_token_id", 10004, "below vocab_size=10004"),
        ("bos_token_id", 0, "already the id of pad_token_id"),
    ],
)
def test_every_invalid_value_names_field_value_and_what_is_accepted(field, value, accepted):
    with pytest.raises(
        ValueError,
        match=rf"{field}={value!r}".replace("(", r"\(").replace(")", r"\)") + ".*" + accepted,
    ):
        TextVAEConfig(**{field: value})


def test_prior_parameters_that_do_not_belong_are_refused():
    with pytest.raises(ValueError, match="posterior_std_max=0.5.*not used by prior='standard'"):
        VAEConfig(posterior_std_max=0.5)
    with pytest.raises(ValueError, match="ar1_alpha=0.5.*not used by prior='constrained'"):
        VAEConfig(prior="constrained", posterior_std_max=0.5, ar1_alpha=0.5)
    with pytest.raises(ValueError, match="committed_rate=1.0.*commits to no rate"):
        VAEConfig(committed_rate=1.0)


def test_constrained_needs_std_max_or_rate():
    with pytest.raises(ValueError, match="needs posterior_std_max.*or a target committed_rate"):
        VAEConfig(prior="constrained")
    with pytest.raises(ValueError, match=r"posterior_std_max=1.0 .*\(0.001, 1.0\)"):
        VAEConfig(prior="constrained", posterior_std_max=1.0)


def test_constrained_resolves_std_max_from_rate_and_back():
    config = VAEConfig(latent_size=16, prior="constrained", committed_rate=4.0)
    assert constrained_committed_rate(config.posterior_std_max, 16) == pytest.approx(4.0, abs=1e-9)
    config = VAEConfig(latent_size=16, prior="constrained", posterior_std_max=0.8)
    assert config.committed_rate == pytest.approx(constrained_committed_rate(0.8, 16))


def test_ar1_resolves_alpha_from_rate_and_back():
    config = VAEConfig(latent_size=8, prior="ar1", committed_rate=2.5, latent_length=30)
    assert isinstance(config.ar1_alpha, float)
    assert abs(ar1_committed_rate(config.ar1_alphas(), 30) - 2.5) < 1e-6
    spread = VAEConfig(
        latent_size=8, prior="ar1", committed_rate=2.5, latent_length=30, ar1_alpha_spread="linear"
    )
    assert len(spread.ar1_alpha) == 8 and spread.ar1_alpha[0] < spread.ar1_alpha[-1]
    given = VAEConfig(latent_size=2, prior="ar1", ar1_alpha=[0.3, 0.6], latent_length=5)
    assert given.committed_rate == pytest.approx(ar1_committed_rate([0.3, 0.6], 5))


def test_ar1_rejects_bad_alphas_and_contradictions():
    with pytest.raises(ValueError, match=r"ar1_alpha=1.0 .*\[0.0, 1.0\)"):
        VAEConfig(prior="ar1", ar1_alpha=1.0, latent_length=4)
    with pytest.raises(ValueError, match="one α or latent_size=4"):
        VAEConfig(latent_size=4, prior="ar1", ar1_alpha=[0.1, 0.2], latent_length=4)
    with pytest.raises(ValueError, match="give either the parameters or the committed_rate"):
        VAEConfig(latent_size=4, prior="ar1", ar1_alpha=0.5, committed_rate=9.0, latent_length=4)
    with pytest.raises(ValueError, match="2 or more positions"):
        VAEConfig(prior="ar1", committed_rate=1.0)


def test_presets_hold_the_paper_sizes():
    yahoo = TextVAEConfig.from_preset("yahoo")
    assert (
        yahoo.embedding_size,
        yahoo.encoder_hidden_size,
        yahoo.decoder_hidden_size,
        yahoo.latent_size,
    ) == (512, 1024, 1024, 32)
    ptb = TextVAEConfig.from_preset("ptb", vocab_size=5000)
    assert (
        ptb.embedding_size,
        ptb.encoder_hidden_size,
        ptb.decoder_hidden_size,
        ptb.latent_size,
        ptb.vocab_size,
    ) == (256, 256, 256, 32, 5000)
    assert TextVAEConfig.from_preset("synthetic").latent_size == 2
    with pytest.raises(ValueError, match="preset='imagenet'.*'yahoo'"):
        TextVAEConfig.from_preset("imagenet")


def test_save_load_round_trip_and_equality(tmp_path):
    config = TextVAEConfig(
        vocab_size=321, latent_size=5, prior="constrained", committed_rate=1.5, word_dropout=0.25
    )
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "text_vae" and saved["word_dropout"] == 0.25
    loaded = TextVAEConfig.from_pretrained(tmp_path)
    assert loaded == config
    assert loaded != TextVAEConfig(vocab_size=321, latent_size=6)
    assert AutoConfig.from_pretrained(tmp_path) == config


def test_overrides_at_load_are_validated(tmp_path):
    TextVAEConfig().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="latent_size=-7"):
        TextVAEConfig.from_pretrained(tmp_path, latent_size=-7)


def test_auto_config_knows_the_text_vae():
    config = AutoConfig.for_model("text_vae", latent_size=3)
    assert isinstance(config, TextVAEConfig) and config.latent_size == 3
    with pytest.raises(ValueError, match="latent_size=0"):
        AutoConfig.for_model("text_vae", latent_size=0)
