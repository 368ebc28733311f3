"""Bad input gets a clear error that says what was wrong, never a traceback from torch."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import small_config
from transformers import AutoModel

from vaehub import CheckpointError, TextVAEConfig, TextVAEModel, build_tokenizer

CORPUS = ["the cat sat on the mat", "a dog ate the cat"]


@pytest.fixture
def model() -> TextVAEModel:
    tokenizer = build_tokenizer(CORPUS)
    model = TextVAEModel(small_config(len(tokenizer), max_sequence_length=8)).eval()
    model.tokenizer = tokenizer
    return model


@pytest.fixture
def saved(model, tmp_path):
    model.save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ("", "sentence #0 is empty"),
        (["the cat", "   "], "sentence #1 is empty"),
        ([], "at least one sentence, got an empty list"),
        ([b"bytes"], "sentence #0 is a bytes, not a string"),
        (["fine", None], "sentence #1 is a NoneType, not a string"),
        (42, "expected a sentence or a list of sentences, got int"),
    ],
)
def test_bad_sentences_are_refused_by_every_text_method(model, texts, message):
    for method in (model.encode, model.reconstruct, model.tokenize):
        with pytest.raises(ValueError, match=message):
            method(texts)


def test_interpolate_wants_two_strings(model):
    with pytest.raises(ValueError, match="text_b must be one sentence as a string, got list"):
        model.interpolate("the cat", ["a", "b"])
    with pytest.raises(ValueError, match="sentence #0 is empty"):
        model.interpolate("", "the cat")


def test_long_sentences_are_truncated_with_a_warning(model):
    long = " ".join(["cat"] * 20)
    with pytest.warns(UserWarning, match="1 sentence.*exceed max_sequence_length=8 tokens"):
        input_ids, _ = model.tokenize(["the cat", long])
    assert input_ids.shape[1] == 8 and input_ids[1, -1] == model.config.eos_token_id
    with pytest.warns(UserWarning, match="truncated"):
        assert model.reconstruct([long], max_new_tokens=3)


def test_unknown_words_are_encoded_as_unk(model):
    input_ids, _ = model.tokenize(["the zebra quagga"])
    assert input_ids[0, 2:4].tolist() == [model.config.unk_token_id] * 2
    assert model.encode("the zebra quagga").mean.shape == (1, model.config.latent_size)


def test_bad_token_ids_and_latents_are_refused(model):
    vocab_size = model.config.vocab_size
    with pytest.raises(ValueError, match=rf"input_ids must lie in \[0, {vocab_size}\)"):
        model(torch.tensor([[2, vocab_size, 3]]))
    with pytest.raises(ValueError, match="more than max_sequence_length=8"):
        model(torch.full((1, 9), 4))
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.tensor([[2.0, 4.0, 3.0]]))
    with pytest.raises(ValueError, match="at least <s> and </s>"):
        model(torch.tensor([[2, 4, 3]]), torch.tensor([[1, 0, 0]]))
    with pytest.raises(ValueError, match=r"z must have shape \(1, 8\)"):
        model(torch.tensor([[2, 4, 3]]), z=torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"z must be a \(batch, 8\) tensor, got \(8,\)"):
        model.generate(torch.zeros(8))
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        model.generate(num_samples=0)
    with pytest.raises(ValueError, match="either z or num_samples"):
        model.generate(torch.zeros(2, 8), num_samples=2)


def test_invalid_config_values_are_refused_before_a_model_is_built():
    with pytest.raises(ValueError, match="latent_size=0 is not valid"):
        TextVAEModel(TextVAEConfig(latent_size=0))


def test_a_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path} holds no config.json"):
        TextVAEModel.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="is not a folder"):
        TextVAEModel.from_pretrained(str(tmp_path / "missing" / "model"))
    with pytest.raises(CheckpointError, match="is not a folder"):
        TextVAEModel.from_pretrained("./no-such-folder")


def test_a_folder_with_another_kind_of_model_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="type 'bert', not a vaehub 'text_vae' model"):
        TextVAEModel.from_pretrained(tmp_path)


def test_a_broken_config_is_named(saved):
    (saved / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="config.json is not a readable JSON config"):
        TextVAEModel.from_pretrained(saved)


def test_an_invalid_value_in_a_saved_config_is_named(saved):
    config = json.loads((saved / "config.json").read_text())
    config["word_dropout"] = 3
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config.json of .* is not valid: word_dropout=3"):
        TextVAEModel.from_pretrained(saved)


@pytest.mark.parametrize("keep_bytes", [0, 5, 100, -200])
def test_a_truncated_weights_file_is_named(saved, keep_bytes):
    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:keep_bytes])
    with pytest.raises(CheckpointError, match=f"{weights} is truncated or corrupt"):
        TextVAEModel.from_pretrained(saved)


def test_missing_weights_are_named(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="holds no model.safetensors"):
        AutoModel.from_pretrained(saved)


def test_a_config_whose_sizes_do_not_match_the_weights_is_named(saved):
    config = json.loads((saved / "config.json").read_text())
    config["decoder_hidden_size"] = 80
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError,
        match=r"does not match the sizes in its config.json"
        r"(.|\n)*decoder.lm_head.weight: config gives \(12, 80\), file holds "
        r"\(12, 64\)",
    ):
        TextVAEModel.from_pretrained(saved)


def test_failed_loads_leave_the_folder_as_it_was(saved):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    config = json.loads(before["config.json"])
    config["latent_size"] = 9
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError):
        TextVAEModel.from_pretrained(saved)
    after = {p.name: p.read_bytes() for p in saved.iterdir()}
    assert set(after) == set(before) and after["model.safetensors"] == before["model.safetensors"]


# --- numbers that are not numbers ---------------------------------------------------------


def test_weights_holding_nan_or_infinity_are_refused_naming_the_tensors(saved):
    from safetensors.torch import load_file, save_file

    weights = load_file(saved / "model.safetensors")
    names = sorted(weights)
    weights[names[0]][0] = float("nan")
    weights[names[-1]].fill_(float("inf"))
    save_file(weights, saved / "model.safetensors", metadata={"format": "pt"})
    for loader in (TextVAEModel, AutoModel):
        with pytest.raises(CheckpointError, match="hold NaN or infinite values in 2 tensors") as e:
            loader.from_pretrained(saved)
        assert names[0] in str(e.value) and names[-1] in str(e.value)


def test_results_holding_nan_are_never_written_into_a_file_or_a_card(saved, capsys):
    from vaehub.commands.main import main
    from vaehub.hub.cards import render_model_card
    from vaehub.models.results import write_results

    metrics = {"nll": 30.0, "ppl": 100.0, "kl": float("nan"), "mi": 0.5, "active_units": 2}
    with pytest.raises(ValueError, match=r"non-finite values \(kl = nan\)"):
        write_results(saved, "test", metrics)
    assert not (saved / "eval_test.json").exists()
    # A results file written by hand (or by an older version) is refused by the card.
    record = {"split": "test", "dataset": {}, "metrics": {**metrics, "ppl": float("inf")}}
    (saved / "eval_test.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"non-finite values \(ppl = inf, kl = nan\)"):
        render_model_card(saved)
    assert main(["card", str(saved)]) == 1
    assert "kl = nan" in capsys.readouterr().err
    assert not (saved / "README.md").exists()


def test_a_latent_holding_nan_or_infinity_is_refused(model):
    from vaehub import DeltaVAEConfig, DeltaVAEModel

    z = torch.zeros(2, model.config.latent_size)
    z[1, 3] = float("nan")
    input_ids, attention_mask = model.tokenize(CORPUS)
    for call in (
        lambda: model.generate_sentences(z),
        lambda: model.generate(z),
        lambda: model(input_ids, attention_mask, z=z),
    ):
        with pytest.raises(ValueError, match="z holds 1 NaN or infinite value;"):
            call()
    images = DeltaVAEModel(
        DeltaVAEConfig(image_size=8, latent_size=2, encoder_channels=8, decoder_channels=8,
                       decoder_layers=2)
    ).eval()  # fmt: skip
    with pytest.raises(ValueError, match="z holds 2 NaN or infinite values"):
        images.generate(z=torch.full((1, 2), float("inf")))


@pytest.mark.parametrize("prior", ["standard", "ar1", "constrained"])
def test_extreme_encoder_outputs_keep_kl_and_loss_finite(prior):
    from vaehub import DeltaVAEConfig, DeltaVAEModel
    from vaehub.data.images import ImageCollator, load_digits

    torch.manual_seed(0)
    extra = {"committed_rate": 2.0} if prior != "standard" else {}
    images = DeltaVAEModel(
        DeltaVAEConfig(image_size=8, latent_size=4, encoder_channels=16, decoder_channels=8,
                       decoder_layers=2, prior=prior, **extra)
    )  # fmt: skip
    tokenizer = build_tokenizer(CORPUS)
    text = TextVAEModel(small_config(len(tokenizer), prior=prior, **extra))
    text.tokenizer = tokenizer
    batch = ImageCollator()([load_digits("test")[i] for i in range(32)])
    input_ids, attention_mask = text.tokenize(CORPUS)
    for model, inputs in ((images, batch), (text, {"input_ids": input_ids,
                                                   "attention_mask": attention_mask})):  # fmt: skip
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.startswith("encoder"):
                    parameter.mul_(10 if model is images else 1000)
        outputs = model(**inputs)
        for key in ("kl", "reconstruction_nll"):
            assert torch.isfinite(getattr(outputs, key)).all(), (type(model).__name__, key)
        outputs.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_beams": 0}, "num_beams=0 is not valid: expected an integer >= 1"),
        ({"num_beams": -1}, "num_beams=-1 is not valid"),
        ({"num_beams": 2.5}, "num_beams=2.5 is not valid"),
        ({"max_new_tokens": 0}, "max_new_tokens=0 is not valid"),
        ({"do_sample": True, "temperature": 0.0}, "temperature=0.0 is not valid"),
        ({"do_sample": True, "top_p": 1.5}, r"top_p=1.5 is not valid: .* in \(0, 1\]"),
        ({"do_sample": True, "top_k": -2}, "top_k=-2 is not valid: expected an integer >= 0"),
        (
            {"num_return_sequences": 3, "num_beams": 2},
            "num_return_sequences=3 needs num_beams >= 3",
        ),
    ],
)
def test_bad_generation_options_are_refused_before_transformers_sees_them(
    model, options, message
):
    with pytest.raises(ValueError, match=message):
        model.generate_sentences(num_samples=2, **options)
    with pytest.raises(ValueError, match=message):
        model.reconstruct(CORPUS[0], **options)


def test_a_tokenizer_larger_than_the_vocabulary_is_refused_on_load(saved):
    bigger = build_tokenizer(CORPUS + ["zebras graze near the river bank at dawn"])
    bigger.save_pretrained(saved)
    with pytest.raises(CheckpointError, match=r"has \d+ tokens, but its config.json gives "
                       r"vocab_size=12"):  # fmt: skip
        TextVAEModel.from_pretrained(saved)
    with pytest.raises(CheckpointError, match="vocab_size=12"):
        AutoModel.from_pretrained(saved)
