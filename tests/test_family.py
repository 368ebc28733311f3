"""The rate–distortion family: what the decoder reads, put beside a VAE's results from its
baseline's (`attach_baseline`), the family's table and figure from the cards, and the
results page against them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from vaehub.commands.main import main
from vaehub.hub.cards import attach_baseline
from vaehub.hub.family import family_row, family_table, plot_family
from vaehub.models.results import MissingResultsError, read_results, write_results

ROOT = Path(__file__).resolve().parents[1]
PTB = {"name": "Penn Treebank (Mikolov et al.)", "type": "ptb_text_only"}


def page_script():
    """examples/ptb_family_page.py, the script that renders the page."""
    path = ROOT / "examples" / "ptb_family_page.py"
    spec = importlib.util.spec_from_file_location("ptb_family_page", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def folders(tmp_path, vae=None, baseline=None, dataset=PTB):
    """A VAE's and an exact baseline's results folders (what runs write), by hand."""
    vae_dir, lm_dir = tmp_path / "vae", tmp_path / "lm"
    write_results(vae_dir, "test", vae or {"nll": 110.0, "reconstruction": 95.0, "kl": 20.0,
                                           "mi": 3.0, "num_examples": 10}, PTB, iw_samples=5)
    write_results(lm_dir, "test", baseline or {"nll": 104.0, "exact": True, "num_examples": 10},
                  dataset)  # fmt: skip
    return vae_dir, lm_dir


def test_attach_baseline_writes_what_the_decoder_reads_from_both_results_files(tmp_path):
    vae_dir, lm_dir = folders(tmp_path)
    metrics = attach_baseline(vae_dir, lm_dir)
    # 104 − 95 = 9 nats read of the 20 paid; 11 unread; ΔNLL 110 − 104 = 6.
    assert (metrics["nats_read"], metrics["rate_unread"], metrics["delta_nll"]) == (9.0, 11.0, 6.0)
    record = read_results(vae_dir)["test"]
    assert record["metrics"]["nats_read"] == 9.0 and record["iw_samples"] == 5
    row = family_row(vae_dir)
    assert (row["rate"], row["distortion"], row["nats_read"]) == (20.0, 95.0, 9.0)


@pytest.mark.parametrize(
    ("baseline", "dataset", "message"),
    [
        ({"nll": 104.0, "num_examples": 10}, PTB, "not an exact NLL"),
        ({"nll": 104.0, "exact": True, "num_examples": 9}, PTB, "same data"),
        ({"nll": 104.0, "exact": True, "num_examples": 10}, {"type": "files"}, "same data"),
    ],
)
def test_attach_baseline_refuses_what_is_not_the_decoder_alone_on_the_same_data(
    tmp_path, baseline, dataset, message
):
    vae_dir, lm_dir = folders(tmp_path, baseline=baseline, dataset=dataset)
    before = (vae_dir / "eval_test.json").read_text()
    with pytest.raises(ValueError, match=message):
        attach_baseline(vae_dir, lm_dir)
    assert (vae_dir / "eval_test.json").read_text() == before  # nothing written


def test_a_family_row_without_a_baseline_says_how_to_give_it_one(tmp_path):
    vae_dir, _ = folders(tmp_path)
    with pytest.raises(MissingResultsError, match="vaehub card .* --baseline"):
        family_row(vae_dir)


def test_the_family_figure_needs_one_baseline_for_all_its_rows(tmp_path):
    a, lm = folders(tmp_path / "a")
    attach_baseline(a, lm)
    b, lm_b = folders(tmp_path / "b", baseline={"nll": 90.0, "exact": True, "num_examples": 10})
    attach_baseline(b, lm_b)
    figure = plot_family([a], tmp_path / "rd.png")
    assert Path(figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="same baseline"):
        plot_family([a, b], tmp_path / "rd.png")


def test_vaehub_card_with_a_baseline_states_what_the_decoder_reads(tmp_path, capsys):
    source = ROOT / "model_cards" / "ptb-vae-high-rate"
    folder = tmp_path / "high-rate"
    folder.mkdir()
    for name in ("config.json", "eval_test.json", "training.json", "generation.json",
                 "about.md", "verification.json"):  # fmt: skip
        (folder / name).write_bytes((source / name).read_bytes())
    metrics = json.loads((source / "eval_test.json").read_text())["metrics"]
    lm = json.loads((ROOT / "model_cards/ptb-lstm-lm/eval_test.json").read_text())["metrics"]
    assert main(["card", str(folder), "--baseline", str(ROOT / "model_cards/ptb-lstm-lm")]) == 0
    read = lm["nll"] - metrics["reconstruction"]
    printed = capsys.readouterr().out
    assert f"the decoder reads {read:.2f} of the {metrics['kl']:.2f} nats" in printed
    card = (folder / "README.md").read_text()
    assert f"| nats the decoder reads from z | {read:.2f} |" in card


def test_the_family_page_is_the_one_the_cards_and_probes_render():
    script = page_script()
    page = script.PAGE.read_text(encoding="utf-8")
    block = page.split("<!-- family -->\n")[1].split("<!-- /family -->")[0]
    released = script.members(ROOT / "model_cards")
    assert len(released) >= 2
    assert block == family_table(released)
    probes = page.split("<!-- probes -->\n")[1].split("<!-- /probes -->")[0]
    assert probes == script.probes_table()
    assert script.FIGURE.is_file()


def test_a_continued_text_vae_keeps_its_encoder_resets_its_decoder_and_takes_word_dropout(
    tmp_path, capsys
):
    from safetensors.torch import load_file

    source = ROOT / "model_cards" / "synthetic-vae-elbo"
    out = tmp_path / "continued"
    common = ["--dataset", "synthetic", "--synthetic_sentences", "200", "--preset", "synthetic",
              "--max_steps", "1", "--learning_rate", "0", "--use_cpu", "--report_to", "none",
              "--disable_tqdm", "true", "--save_strategy", "no", "--eval_strategy", "no",
              "--model_name_or_path", str(source)]  # fmt: skip
    assert main(["train", *common, "--reset_decoder", "True", "--word_dropout", "0.3",
                 "--decoder_output_dropout", "0.1", "--output_dir", str(out)]) == 0  # fmt: skip
    before, after = load_file(source / "model.safetensors"), load_file(out / "model.safetensors")
    encoder = [k for k in before if not k.startswith("decoder.")]
    decoder = [k for k in before if k.startswith("decoder.") and "embed" not in k]
    assert encoder and decoder
    assert all(torch.equal(before[k].float(), after[k].float()) for k in encoder)
    # He et al.'s initialisation, U(−0.01, 0.01), in place of the trained decoder.
    assert all(after[k].float().abs().max() <= 0.01 for k in decoder)
    assert any(before[k].float().abs().max() > 0.01 for k in decoder)
    config = json.loads((out / "config.json").read_text())
    assert (config["word_dropout"], config["decoder_output_dropout"]) == (0.3, 0.1)
    assert config["decoder_embedding_dropout"] == 0.5  # not given: the saved model's
    # A size is the weights': refused, naming it; a reset needs a saved VAE.
    capsys.readouterr()
    assert main(["train", *common, "--latent_size", "8", "--output_dir", str(tmp_path / "x")]) == 1
    assert "--latent_size 8" in capsys.readouterr().err
    assert main(["train", *common[:-2], "--reset_decoder", "True", "--output_dir", str(out)]) == 1
    error = capsys.readouterr().err
    assert "--reset_decoder re-initialises the decoder of a saved text VAE" in error


def test_a_built_models_dropouts_change_in_its_layers_and_bad_rates_change_nothing():
    from transformers import AutoModel

    model = AutoModel.from_pretrained(ROOT / "model_cards" / "synthetic-vae-elbo")
    model.set_regularisation(decoder_embedding_dropout=0.2, word_dropout=0.1)
    assert model.decoder.embedding_dropout.p == 0.2 and model.config.word_dropout == 0.1
    with pytest.raises(ValueError, match="decoder_output_dropout=1.5"):
        model.set_regularisation(decoder_output_dropout=1.5)
    assert model.decoder.output_dropout.p == model.config.decoder_output_dropout == 0.5
    with pytest.raises(ValueError, match="not a dropout of this model"):
        model.set_regularisation(latent_size=3)


def test_the_readme_shows_what_the_reconstruction_flagships_card_shows():
    script = page_script()
    readme = script.README.read_text(encoding="utf-8")
    block = readme.split("<!-- recon -->\n")[1].split("<!-- /recon -->")[0]
    card = ROOT / "model_cards" / script.RECON
    assert block == script.shown_block(card)
    shown = json.loads((card / "generation.json").read_text())["shown"]
    assert shown["reconstructions"][0]["output"] in block
