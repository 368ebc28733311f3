"""The main job, shortened: it trains, samples, interpolates and saves a loadable model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModel

from vaehub import TextVAEModel
from vaehub.cli import main
from vaehub.demo import run_demo


def test_demo_compares_objectives_samples_plots_and_saves(tmp_path, capsys):
    result = run_demo(
        output_dir=str(tmp_path / "demo"),
        num_sentences=500,
        epochs=1,
        iw_samples=5,
        show_progress=False,
    )
    printed = capsys.readouterr().out
    assert "objective" in printed and "Interpolation" in printed
    assert set(result.results) == {"elbo", "aggressive"}
    for metrics in result.results.values():
        # Ten tokens from 1000 ids: an untrained model would need 10·ln(1004) ≈ 69 nats.
        assert 0 < metrics["nll"] < 69
        assert metrics["kl"] >= 0 and 0 <= metrics["active_units"] <= 2
    assert result.results["aggressive"]["aggressive_epochs"] == 1
    assert len(result.samples) == 5 and len(result.interpolation) == 5
    for objective in ("elbo", "aggressive"):
        loaded = AutoModel.from_pretrained(tmp_path / "demo" / objective)
        assert isinstance(loaded, TextVAEModel) and loaded.tokenizer is not None
    png = (tmp_path / "demo" / "posterior_mean_space.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    torch.manual_seed(0)
    assert len(loaded.generate_sentences(num_samples=2)) == 2


def test_command_line_runs_the_demo_and_reports_errors(tmp_path, capsys):
    arguments = ["demo", "--output-dir", str(tmp_path / "cli"), "--num-sentences", "200"]
    assert main([*arguments, "--epochs", "1", "--iw-samples", "2"]) == 0
    assert (tmp_path / "cli" / "aggressive" / "model.safetensors").is_file()
    assert main(["demo", "--num-sentences", "0"]) == 1
    assert "num_sentences must be a positive integer" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "vaehub"
    completed = subprocess.run(
        [str(script), "demo", "--help"], capture_output=True, text=True, check=True
    )
    assert "--num-sentences" in completed.stdout
