"""The amortisation gap and `vaehub diagnose`, on two small models of He et al.'s synthetic
data: one trained with the ELBO (it collapses) and one with free bits (it keeps its latent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer
from vaehub.commands.main import main
from vaehub.data.batching import iterate_batches
from vaehub.data.synthetic import synthetic_corpus
from vaehub.data.text import TextCollator, tokenize_corpus
from vaehub.evaluation.gaps import GapSettings, amortisation_gaps, posterior_grids
from vaehub.training.arguments import VAETrainingArguments
from vaehub.training.trainer import VAETrainer

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    corpus = synthetic_corpus(3200, seed=0).train_test_split(test_size=200, seed=0)
    tokenizer = build_tokenizer(corpus["train"]["text"])
    config = TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer))
    data = tokenize_corpus(corpus, tokenizer, config.max_sequence_length)
    test_file = folder / "test.txt"
    test_file.write_text("\n".join(corpus["test"]["text"]) + "\n", encoding="utf-8")
    models = {}
    objectives = {"elbo": {}, "free_bits": {"free_bits": 1.0}}
    for name, objective in objectives.items():
        torch.manual_seed(0)
        model = TextVAEModel(config)
        model.tokenizer = tokenizer
        args = VAETrainingArguments(
            output_dir=str(folder / name), num_train_epochs=2, per_device_train_batch_size=32,
            learning_rate=3e-3, lr_scheduler_type="constant", use_cpu=True, report_to="none",
            disable_tqdm=True, save_strategy="no", seed=0, objective=name, **objective,
        )  # fmt: skip
        VAETrainer(
            model=model, args=args, train_dataset=data["train"], data_collator=TextCollator()
        ).train()
        model.save_pretrained(folder / name)
        models[name] = model.eval()
    return {"folder": folder, "models": models, "test": data["test"], "test_file": test_file}


def test_gaps_add_up_and_each_optimum_improves_on_what_it_starts_from(synthetic):
    model = synthetic["models"]["free_bits"]
    batches = list(iterate_batches(synthetic["test"].select(range(12)), 12, 0))
    torch.manual_seed(0)
    result = amortisation_gaps(model, batches, GapSettings(iw_samples=500, flow_steps=150))
    total = result.log_px - result.elbo_amortised
    torch.testing.assert_close(result.approximation_gap + result.amortisation_gap, total)
    summary = result.summary()
    # Up to the Monte Carlo noise of 100-sample ELBOs: q* beats q_φ, log p(x) bounds q*.
    assert summary["amortisation_gap"] > -0.05 and summary["approximation_gap"] > -0.05
    assert summary["gap"] > 0.05  # a used latent with a Gaussian q leaves a visible gap
    assert summary["elbo_optimal_flow"] >= summary["elbo_optimal"]


def test_the_optimal_flow_improves_on_the_gaussian_it_starts_from(synthetic):
    """The flow optimiser on its own (before the max with q* the gaps take): from q*
    with every step the identity, its ELBO ends no lower than q*'s, up to MC noise."""
    from vaehub.evaluation.gaps import elbo, optimal_flow, optimal_parameters

    model = synthetic["models"]["free_bits"]
    batch = model.checked_batch(
        **next(iter(iterate_batches(synthetic["test"].select(range(8)), 8, 0)))
    )
    torch.manual_seed(0)
    with torch.no_grad():
        initial = model.posterior_parameters(**batch)
    best, _ = optimal_parameters(model, batch, initial, 200, 100, 65536)
    gaussian = elbo(model, batch, model.posterior_from(best), 400, 65536).mean().item()
    flow = optimal_flow(model, batch, best, steps=150)
    assert elbo(model, batch, flow, 400, 65536).mean().item() > gaussian - 0.02


def test_posterior_grids_are_densities_centred_on_the_true_posterior(synthetic):
    model = synthetic["models"]["free_bits"]
    batch = next(iter(iterate_batches(synthetic["test"].select(range(3)), 3, 0)))
    torch.manual_seed(0)
    grids = posterior_grids(model, batch, examples=2, points=41, settings=GapSettings(flow=False))
    assert len(grids) == 2
    for grid in grids:
        assert set(grid) == {"x", "y", "true", "amortised", "optimal"}
        for name in ("true", "amortised", "optimal"):
            density = torch.tensor(grid[name])
            assert density.shape == (41, 41) and density.sum().item() == pytest.approx(1.0)
        # The optimal Gaussian sits where the true posterior's mass is.
        x, y = torch.tensor(grid["x"]), torch.tensor(grid["y"])
        true = torch.tensor(grid["true"])
        optimal = torch.tensor(grid["optimal"])
        true_mean = torch.stack([(true.sum(0) * x).sum(), (true.sum(1) * y).sum()])
        q_mean = torch.stack([(optimal.sum(0) * x).sum(), (optimal.sum(1) * y).sum()])
        step = (x[1] - x[0]).item()
        assert (true_mean - q_mean).abs().max().item() < 3 * step


def test_vaehub_diagnose_tells_a_collapsed_model_from_one_that_uses_its_latent(synthetic, capsys):
    verdicts = {}
    for name in ("elbo", "free_bits"):
        folder = synthetic["folder"] / name
        code = main(
            ["diagnose", str(folder), "--data", str(synthetic["test_file"]), "--max_examples",
             "150", "--gap_examples", "8", "--gap_iw_samples", "200", "--iw-samples", "20",
             "--no_flow", "--no-progress"]
        )  # fmt: skip
        assert code == 0
        report = json.loads((folder / "diagnosis" / "diagnosis.json").read_text())
        verdicts[name] = report["verdict"]["collapsed"]
        for figure in ("kl_per_dim", "posterior_mean_space", "posterior_contours"):
            path = folder / "diagnosis" / report["figures"][figure]
            assert path.read_bytes()[:8] == PNG
        markdown = (folder / "diagnosis" / "report.md").read_text()
        assert ("not collapsed" in markdown.splitlines()[0]) != verdicts[name]
        assert report["gaps"]["examples"] == 8
    assert verdicts == {"elbo": True, "free_bits": False}
    printed = capsys.readouterr().out
    assert "collapsed" in printed and "not collapsed" in printed


def test_diagnose_refuses_a_folder_without_a_model(tmp_path, capsys):
    assert main(["diagnose", str(tmp_path), "--data", "digits"]) == 1
    assert str(tmp_path) in capsys.readouterr().err


def test_a_latent_its_decoder_does_not_read_is_called_collapsed_in_those_words():
    from vaehub.evaluation.diagnose import verdict

    # KL, MI and AU of a used latent, but a decoder that reads 0.04 nats of the 7.06 paid.
    healthy = {"kl": 7.06, "mi": 2.63, "active_units": 32}
    unread = verdict({**healthy, "nats_read": 0.04, "rate_unread": 7.02}, 0.0, None)
    assert unread["collapsed"]
    words = "the decoder reads 0.04 of the 7.06 nats it pays for (7.02 paid unread)"
    assert words in unread["why"]
    read = verdict({**healthy, "nats_read": 5.5, "rate_unread": 1.56}, 0.0, None)
    assert not read["collapsed"]
    assert "the decoder reads 5.50 of the 7.06 nats it pays for" in read["why"]
    # Without a baseline the verdict is the one of KL, MI and AU alone.
    assert not verdict(healthy, 0.0, None)["collapsed"]


def test_vaehub_diagnose_with_a_baseline_measures_what_the_decoder_reads(tmp_path, capsys):
    from helpers import PTB_DIR

    root = Path(__file__).resolve().parents[1] / "model_cards"
    code = main(
        ["diagnose", str(root / "ptb-vae-high-rate"), "--data", str(PTB_DIR), "--max_examples",
         "24", "--gap_examples", "0", "--iw-samples", "4", "--baseline",
         str(root / "ptb-lstm-lm"), "--output_dir", str(tmp_path), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((tmp_path / "diagnosis.json").read_text())["metrics"]
    read = metrics["baseline_nll"] - metrics["reconstruction"]
    assert metrics["nats_read"] == pytest.approx(read)
    assert metrics["rate_unread"] == pytest.approx(metrics["kl"] - metrics["nats_read"])
    printed = capsys.readouterr().out
    assert f"the decoder reads {metrics['nats_read']:.2f} of the {metrics['kl']:.2f}" in printed
    assert "| nats the decoder reads from z |" in (tmp_path / "report.md").read_text()
