"""The generation report: each formula against a case computed by hand, the report of a
small trained model made twice from one seed, and a release whose card shows samples that
`vaehub verify` regenerates and checks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from vaehub.commands.main import main
from vaehub.evaluation.generation_report import (
    corpus_bleu,
    distinct_n,
    edit_distance,
    endpoint_fidelity,
    exact_match_rate,
    generation_report,
    interpolation_summary,
    token_accuracy,
)
from vaehub.hub.cards import render_model_card
from vaehub.models.results import GENERATION_FILE
from vaehub.recipes import release
from vaehub.recipes.demo import show_flagship

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"


def test_token_accuracy_counts_matches_at_the_same_position_end_included():
    # a b c </s> against a x c d </s>: a and c match, b ≠ x, </s> ≠ d → 2 of 4.
    assert token_accuracy(["a b c"], ["a x c d"]) == 0.5
    # Over a corpus the counts add up: 2 of 4, then 2 of 2 (y </s>) → 4 of 6.
    assert token_accuracy(["a b c", "y"], ["a x c d", "y"]) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="as many hypotheses"):
        token_accuracy(["a"], [])


def test_corpus_bleu_is_papinenis_formula():
    reference, hypothesis = "the cat sat on a mat", "the cat sat on the mat"
    # Clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty.
    expected = 100 * math.exp(sum(map(math.log, (5 / 6, 3 / 5, 2 / 4, 1 / 3))) / 4)
    assert corpus_bleu([reference], [hypothesis]) == pytest.approx(expected, abs=1e-9)
    assert corpus_bleu([reference], [reference]) == pytest.approx(100.0)
    # A hypothesis of 3 words against a reference of 6: brevity penalty exp(1 − 6/3).
    short = corpus_bleu(["a b c d e f"], ["a b c"])
    assert short == pytest.approx(0.0)  # no 4-gram matches: BLEU is 0 without smoothing


def test_exact_match_counts_whole_sentences_token_for_token():
    assert exact_match_rate(["a b c", "d e", "f"], ["a b c", "d x", "f "]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="as many hypotheses"):
        exact_match_rate(["a"], ["a", "b"])


def test_endpoint_fidelity_scores_each_end_against_its_input():
    pairs = [("the cat sat on a mat", "a b c d e f")]
    # The path starts at a one-word-off decoding of the first sentence (the BLEU of
    # test_corpus_bleu_is_papinenis_formula) and ends exactly at the second.
    paths = [["the cat sat on the mat", "x y", "a b c d e f"]]
    fidelity = endpoint_fidelity(pairs, paths)
    start = 100 * math.exp(sum(map(math.log, (5 / 6, 3 / 5, 2 / 4, 1 / 3))) / 4)
    assert fidelity["start_bleu"] == pytest.approx(start, abs=1e-9)
    assert fidelity["end_bleu"] == pytest.approx(100.0)
    # Both ends as one corpus: matches 11/12, 8/10, 6/8, 4/6 (5+6, 3+5, 2+4, 1+3).
    both = 100 * math.exp(sum(map(math.log, (11 / 12, 8 / 10, 6 / 8, 4 / 6))) / 4)
    assert fidelity["endpoint_bleu"] == pytest.approx(both, abs=1e-9)
    # A path that ends elsewhere scores 0 at that end.
    assert endpoint_fidelity(pairs, [["a", "x y z w v u"]])["end_bleu"] == 0.0
    with pytest.raises(ValueError, match="one path per pair"):
        endpoint_fidelity(pairs, [])


def test_distinct_n_is_distinct_over_all_ngrams():
    assert distinct_n(["a b a", "a b"], 1) == pytest.approx(2 / 5)
    assert distinct_n(["a b a", "a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a"], 2) == 0.0


def test_edit_distance_is_levenshteins():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance("the cat sat".split(), "the cat".split()) == 1
    assert edit_distance([], ["a", "b"]) == 2


def test_interpolation_summary_counts_sentences_and_steps():
    summary = interpolation_summary([["a b", "a b", "a c"], ["x", "y z", "y z"]])
    # Distinct: 2 and 2; neighbour distances: 0, 1 and 2, 0 → mean 3/4.
    assert summary == {"distinct_sentences": 2.0, "neighbour_edit_distance": 0.75}
    with pytest.raises(ValueError, match="at least 2"):
        interpolation_summary([["only"]])


@pytest.fixture(scope="module")
def report_model(trained_ptb_model):
    return trained_ptb_model


def test_a_report_is_made_again_identically_from_its_seed(report_model, ptb_slice):
    sentences = [s.strip() for s in ptb_slice["corpus"]["validation"]["text"][:12]]
    kwargs = dict(num_samples=12, num_pairs=2, steps=4, seed=3)
    report = generation_report(report_model, sentences, **kwargs)
    assert report == generation_report(report_model, sentences, **kwargs)
    assert report["settings"]["examples"] == 12 and len(report["shown"]["samples"]) == 5
    samples = report["samples"]
    assert 0 <= samples["ended_fraction"] <= 1 and samples["count"] == 12
    assert 1 <= report["interpolation"]["distinct_sentences"] <= 4
    shown = report["shown"]["reconstructions"][0]
    assert shown["input"] == sentences[0]
    assert shown["output"] == report_model.reconstruct(sentences[0])[0]


def test_a_release_shows_samples_that_verify_regenerates(tmp_path, capsys):
    source = tmp_path / "source"
    shutil.copytree(MODEL_CARDS / "synthetic-vae-aggressive", source)
    folder = Path(
        release.release(
            str(source),
            "writes",
            "synthetic",
            output_dir=str(tmp_path / "out"),
            first=24,
            iw_samples=5,
        )  # fmt: skip
    )
    report = json.loads((folder / GENERATION_FILE).read_text(encoding="utf-8"))
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "## What it writes" in card
    assert all(sentence in card for sentence in report["shown"]["samples"])
    assert (folder / "README.md").read_text(encoding="utf-8") == str(
        render_model_card(folder, repo_id="vaehub/writes")
    )
    # The release recorded the corpus's lengths, and decoding stops at them.
    config = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    assert config["length_statistics"]["sentences"] > 0
    checks = release.verify(str(folder))
    shown = [c for c in checks if c.metric.startswith("generation.shown.")]
    assert len(shown) == 5 + 3 + report["settings"]["steps"] and all(c.ok for c in checks)
    # The demo shows a released model offline, on the sentences its card shows.
    capsys.readouterr()
    show = show_flagship(str(folder), seed=0)
    printed = capsys.readouterr().out
    assert [pair[0] for pair in show.reconstructions] == [
        pair["input"] for pair in report["shown"]["reconstructions"]
    ]
    assert show.interpolation == report["shown"]["interpolation"]["path"]
    assert all(sentence in printed for sentence in show.samples)
    assert show_flagship(str(tmp_path / "nothing-here")) is None
    assert "No released flagship" in capsys.readouterr().out
    # A sample edited in the report (and so in the card) no longer verifies.
    report["shown"]["samples"][0] = "not what the model writes"
    (folder / GENERATION_FILE).write_text(json.dumps(report), encoding="utf-8")
    failing = [c.metric for c in release.verify(str(folder)) if not c.ok]
    assert failing == ["generation.shown.samples[0]"]
    assert main(["verify", str(folder)]) == 1
    assert "generation.shown.samples[0]" in capsys.readouterr().err


def test_the_commands_decode_with_the_same_options(tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(MODEL_CARDS / "synthetic-vae-aggressive", folder)
    sentence_a, sentence_b = "12 7 400 31 9 9 2 56 1 3", "800 5 5 61 17 230 4 4 90 11"
    assert main(["reconstruct", str(folder), sentence_a, "--num_beams", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"  {sentence_a}" and out[1].startswith("→ ")
    assert main(["interpolate", str(folder), sentence_a, sentence_b, "--steps", "3",
                 "--method", "slerp", "--greedy_text"]) == 0  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in out] == ["a   ", "0.00", "0.50", "1.00", "b   "]
    assert main(["evaluate", str(folder), "--data", "synthetic", "--split", "validation",
                 "--max_examples", "8", "--iw-samples", "0", "--generation", "--no-progress",
                 "--output", str(tmp_path / "eval.json")]) == 0  # fmt: skip
    record = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert record["generation"]["settings"]["examples"] == 8
    assert "reconstruction bleu" in capsys.readouterr().out
