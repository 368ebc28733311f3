"""The main job, shortened: it trains, samples, interpolates and saves a loadable model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from vaehub import TextVAEModel
from vaehub.commands.main import main
from vaehub.recipes.demo import run_demo


def test_demo_compares_objectives_samples_plots_and_saves(tmp_path, capsys):
    result = run_demo(
        output_dir=str(tmp_path / "demo"),
        num_sentences=500,
        epochs=1,
        iw_samples=5,
        recipes=("elbo", "free_bits", "aggressive"),
        show_progress=False,
    )
    printed = capsys.readouterr().out
    assert "recipe" in printed and "Interpolation" in printed and "Wall time" in printed
    # One verdict per recipe against the reference, whichever way it goes.
    for name in ("free_bits", "aggressive"):
        assert f"{name} keeps the code in use" in printed or f"{name} falls short" in printed
    assert list(result.results) == ["elbo", "free_bits", "aggressive"]
    # Free bits hold λ = 0.75 nats in each of the 2 dimensions from the first step on, so
    # even one epoch leaves the code more KL than the ELBO's.
    assert result.results["free_bits"]["kl"] > result.results["elbo"]["kl"]
    for metrics in result.results.values():
        # Ten tokens from 1000 ids: an untrained model would need 10·ln(1004) ≈ 69 nats.
        assert 0 < metrics["nll"] < 69
        assert metrics["kl"] >= 0 and 0 <= metrics["active_units"] <= 2
    assert result.results["aggressive"]["aggressive_epochs"] == 1
    assert len(result.samples) == 5 and len(result.interpolation) == 5
    for objective in ("elbo", "free_bits", "aggressive"):
        loaded = AutoModel.from_pretrained(tmp_path / "demo" / objective)
        assert isinstance(loaded, TextVAEModel) and loaded.tokenizer is not None
    written = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert written["results"]["free_bits"]["kl"] == result.results["free_bits"]["kl"]
    assert written["recipes"]["free_bits"] == {"objective": "free_bits", "free_bits": 0.75}
    png = (tmp_path / "demo" / "posterior_mean_space.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    torch.manual_seed(0)
    assert len(loaded.generate_sentences(num_samples=2)) == 2


def test_command_line_runs_the_demo_and_reports_errors(tmp_path, capsys):
    arguments = ["demo", "--output-dir", str(tmp_path / "cli"), "--num-sentences", "200"]
    assert main([*arguments, "--epochs", "1", "--iw-samples", "2"]) == 0
    assert (tmp_path / "cli" / "free_bits" / "model.safetensors").is_file()
    assert main(["demo", "--num-sentences", "0"]) == 1
    assert "num_sentences must be a positive integer" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown demo recipe beta"):
        run_demo(output_dir=str(tmp_path / "bad"), recipes=("elbo", "beta"))


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "vaehub"
    completed = subprocess.run(
        [str(script), "demo", "--help"], capture_output=True, text=True, check=True
    )
    assert "--num-sentences" in completed.stdout
