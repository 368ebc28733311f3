"""The flagship text VAEs in model_cards/ (those released with a generation report): their
default decodings end within the length their training sentences have, and 5-point
interpolations between test sentences move through at least 4 sentences on average."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import SHARED_DATA
from transformers import AutoModel

from vaehub.data.sources import evaluation_sentences
from vaehub.evaluation.generation_report import interpolation_summary
from vaehub.hub.cards import checkpoint_table
from vaehub.models.results import GENERATION_FILE, read_generation_report
from vaehub.models.text.decoding import decoding_options, training_lengths
from vaehub.recipes.demo import FLAGSHIP

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"
FLAGSHIPS = sorted(p.name for p in MODEL_CARDS.iterdir() if (p / GENERATION_FILE).is_file())


def test_the_demos_flagship_is_released_with_its_report():
    assert Path(FLAGSHIP).name in FLAGSHIPS


@pytest.fixture(scope="module", params=FLAGSHIPS)
def flagship(request):
    folder = MODEL_CARDS / request.param
    return AutoModel.from_pretrained(folder).float().eval(), read_generation_report(folder)


def test_default_decodings_end_within_the_recorded_length(flagship):
    model, report = flagship
    stats = training_lengths(model)
    assert stats is not None and model.generation_config.max_length == stats["p99"] + 1
    torch.manual_seed(0)
    z = model.sample_prior(20)
    ids = model.generate(z, **decoding_options(model, "generate", {}))
    assert all(model.config.eos_token_id in row for row in ids.tolist())
    inputs = [pair["input"] for pair in report["shown"]["reconstructions"]]
    for sentence in model.reconstruct(inputs) + model.generate_sentences(z):
        assert len(sentence.split()) + 1 <= stats["p99"]
    assert report["samples"]["ended_fraction"] == 1.0


def test_interpolations_between_test_sentences_move(flagship):
    """Over the report's fixed pairs of test sentences (the first 2 · num_pairs of its slice),
    a 5-point path passes through at least 4 distinct sentences on average: measured again
    here, on the PTB test split, and equal to what the card reports."""
    model, report = flagship
    pairs = report["settings"]["num_pairs"]
    sentences, _ = evaluation_sentences(str(SHARED_DATA / "ptb"), "test", 2 * pairs)
    text = sentences["text"]
    assert [text[0], text[1]] == report["shown"]["interpolation"]["inputs"]
    paths = [
        list(model.interpolate(text[2 * i], text[2 * i + 1], steps=5)) for i in range(pairs)
    ]
    distinct = interpolation_summary(paths)["distinct_sentences"]
    assert distinct == pytest.approx(report["interpolation"]["distinct_sentences"])
    assert distinct >= 4, paths


def test_the_results_page_flagship_table_is_the_one_the_cards_render():
    page = (MODEL_CARDS.parent / "docs" / "results" / "flagships.md").read_text(encoding="utf-8")
    block = page.split("<!-- flagships -->")[1].split("<!-- /flagships -->")[0]
    folders = [MODEL_CARDS / name for name in ("ptb-lstm-lm", *FLAGSHIPS)]
    assert checkpoint_table(folders) in block


def flagship_targets():
    """examples/flagship_targets.py, the script that renders the targets table."""
    import importlib.util

    path = MODEL_CARDS.parent / "examples" / "flagship_targets.py"
    spec = importlib.util.spec_from_file_location("flagship_targets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_targets_table_is_the_one_the_cards_give():
    page = (MODEL_CARDS.parent / "docs" / "results" / "flagships.md").read_text(encoding="utf-8")
    block = page.split("<!-- targets -->")[1].split("<!-- /targets -->")[0]
    assert flagship_targets().targets_table(MODEL_CARDS) in block


def test_the_readme_states_the_flagships_numbers_of_their_cards():
    readme = (MODEL_CARDS.parent / "README.md").read_text(encoding="utf-8")
    for name, value in flagship_targets().measured(MODEL_CARDS).items():
        stated = (
            f"`{name}`: NLL {value['nll']:.2f}, KL {value['kl']:.2f}, MI {value['mi']:.2f}, "
            f"AU {value['active_units']:.0f}, reconstruction BLEU {value['bleu']:.1f}"
        )
        assert stated in readme, stated
