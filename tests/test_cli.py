"""The `vaehub train` and `vaehub evaluate` commands, end to end on small runs."""

from __future__ import annotations

import json
import re

import pytest
import torch
from helpers import fresh_python

from vaehub import TextVAEModel
from vaehub.commands.main import main


def test_train_saves_a_model_and_its_evaluation(tmp_path, capsys):
    out = tmp_path / "model"
    code = main(
        [
            "train",
            "--dataset",
            "synthetic",
            "--synthetic_sentences",
            "400",
            "--preset",
            "synthetic",
            "--latent_size",
            "3",
            "--output_dir",
            str(out),
            "--max_steps",
            "6",
            "--per_device_train_batch_size",
            "16",
            "--use_cpu",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
            "--save_strategy",
            "no",
            "--objective",
            "anneal",
            "--anneal_steps",
            "4",
            "--eval_iw_nll",
            "--iw_samples",
            "4",
        ]
    )
    assert code == 0
    model = TextVAEModel.from_pretrained(out)
    assert model.config.latent_size == 3 and model.tokenizer is not None
    record = json.loads((out / "eval_validation.json").read_text())
    assert record["split"] == "validation" and record["iw_samples"] == 4
    training = json.loads((out / "training.json").read_text())
    assert training["objective"] == "anneal" and training["beta_schedule"] == "linear"
    assert training["anneal_steps"] == 4 and training["global_step"] == 6
    assert model.evaluation_results["validation"]["metrics"] == record["metrics"]
    metrics = record["metrics"]
    assert metrics["num_examples"] == 40
    for key in ("nll", "ppl", "kl", "mi", "active_units", "reconstruction"):
        assert key in metrics


@pytest.mark.parametrize("model_type", ["text_vae", "delta_vae"])
def test_the_same_seed_gives_bit_identical_weights(tmp_path, model_type):
    from safetensors.torch import load_file

    data = (
        ["--dataset", "synthetic", "--synthetic_sentences", "200", "--preset", "synthetic"]
        if model_type == "text_vae"
        else ["--model_type", "delta_vae", "--dataset", "digits", "--encoder_channels", "8",
              "--decoder_channels", "8", "--decoder_layers", "2", "--max_train_sentences",
              "64", "--max_eval_sentences", "16"]
    )  # fmt: skip
    weights = []
    for run, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        argv = [
            "train", *data, "--output_dir", str(tmp_path / run), "--max_steps", "3",
            "--per_device_train_batch_size", "16", "--use_cpu", "--report_to", "none",
            "--disable_tqdm", "true", "--save_strategy", "no", "--seed", seed,
        ]  # fmt: skip
        assert main(argv) == 0
        weights.append(load_file(tmp_path / run / "model.safetensors"))
    first, again, other = weights
    assert first.keys() == again.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_paper_training_sets_he_et_al_optimisation_and_explicit_flags_win(tmp_path, capsys):
    out = tmp_path / "paper"
    common = ["--dataset", "synthetic", "--synthetic_sentences", "300", "--preset", "synthetic",
              "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
              "--save_strategy", "no"]  # fmt: skip
    code = main(
        ["train", "--paper_training", *common, "--output_dir", str(out), "--learning_rate",
         "0.5", "--num_train_epochs", "2"]  # fmt: skip
    )
    assert code == 0
    training = json.loads((out / "training.json").read_text())
    assert training["optim"] == "sgd" and training["learning_rate"] == 0.5
    assert training["max_grad_norm"] == 5.0 and training["per_device_train_batch_size"] == 32
    assert training["lr_scheduler_type"] == "reduce_lr_on_plateau"
    assert (out / "eval_validation.json").is_file()  # evaluated every epoch, then recorded
    code = main(["train", "--paper_training", "--model_type", "delta_vae", "--dataset", "digits",
                 "--output_dir", str(tmp_path / "images"), "--use_cpu"])  # fmt: skip
    assert code == 1
    assert "--paper_training is He et al.'s text VAE" in capsys.readouterr().err


def test_train_refuses_bad_flags(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--output_dir", str(tmp_path), "--objective", "magic"])
    assert "invalid choice: 'magic'" in capsys.readouterr().err
    assert main(["train", "--output_dir", str(tmp_path), "--dataset", "ptb", "--use_cpu"]) == 1
    assert "--dataset ptb needs --data_dir" in capsys.readouterr().err
    # A flag no argument class has is one line and status 1, as HfArgumentParser reports it.
    assert main(["train", "--output_dir", str(tmp_path), "--no_such_flag", "3"]) == 1
    assert "not used by the HfArgumentParser: ['--no_such_flag', '3']" in capsys.readouterr().err


def test_evaluate_prints_a_table_and_writes_json(trained_ptb_model, ptb_dir, tmp_path, capsys):
    trained_ptb_model.save_pretrained(tmp_path / "model")
    output = tmp_path / "results.json"
    code = main(
        [
            "evaluate",
            str(tmp_path / "model"),
            "--data",
            str(ptb_dir),
            "--split",
            "validation",
            "--max-sentences",
            "40",
            "--iw-samples",
            "3",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "NLL (nats/sentence)" in printed and "active units" in printed
    record = json.loads(output.read_text())
    assert record["iw_samples"] == 3 and record["metrics"]["num_examples"] == 40
    assert record["metrics"]["nll"] <= record["metrics"]["neg_elbo"] + 1.0
    assert main(["evaluate", str(tmp_path / "nothing"), "--data", str(ptb_dir)]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_train_and_evaluate_the_image_delta_vae(tmp_path, capsys):
    out = tmp_path / "digits"
    code = main(["train", "--model_type", "delta_vae", "--dataset", "digits", "--prior", "ar1",
                 "--committed_rate", "4", "--encoder_channels", "8", "--decoder_channels", "8",
                 "--decoder_layers", "2", "--output_dir", str(out), "--max_steps", "3",
                 "--per_device_train_batch_size", "32", "--use_cpu", "--report_to", "none",
                 "--disable_tqdm", "true", "--save_strategy", "no", "--max_eval_sentences",
                 "32"])
    assert code == 0
    training = json.loads((out / "training.json").read_text())
    assert training["dataset"] == "scikit-learn digits 8x8" and training["global_step"] == 3
    record = json.loads((out / "eval_test.json").read_text())
    assert record["metrics"]["kl"] >= 4 - 1e-4
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", "digits", "--max-sentences", "32",
                 "--iw-samples", "2"]) == 0
    printed = capsys.readouterr().out
    assert "NLL (nats/image)" in printed and "bits/dim" in printed
    assert main(["train", "--model_type", "delta_vae", "--dataset", "ptb", "--output_dir",
                 str(tmp_path / "x"), "--use_cpu"]) == 1
    assert "trains on images" in capsys.readouterr().err


def test_every_flag_has_one_style_with_the_other_as_an_alias(capsys):
    from vaehub.commands.main import build_parser

    parser = build_parser()
    for command in ("demo", "evaluate", "push", "pull", "card"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        text = capsys.readouterr().out
        for flag in re.findall(r"--[a-z]+[-_][a-z_-]+", text):
            other = flag.replace("_", "-") if "_" in flag else "--" + flag[2:].replace("-", "_")
            assert other in text, (command, flag)
    dashed = parser.parse_args(["pull", "org/x", "--output-dir", "a"])
    underscored = parser.parse_args(["pull", "org/x", "--output_dir", "a"])
    assert dashed.output_dir == underscored.output_dir == "a"
    evaluation = parser.parse_args(["evaluate", "m", "--data", "d", "--max-sentences", "3"])
    assert evaluation.max_examples == 3  # the old name still works


def test_help_describes_both_models_and_every_prior(capsys):
    from vaehub.commands.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    listed = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    assert "train a text VAE, an image δ-VAE, either's decoder alone, or a linear VAE" in listed
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "text_lm (its decoder alone, exact NLL)" in text and "--init_decoder_from" in text
    assert "standard, constrained or ar1" in text and "--max_train_examples" in text
    assert "for prior=constrained or ar1" in text


def test_generate_and_interpolate_commands_decode_as_the_model_does(
    trained_ptb_model, tmp_path, capsys
):
    folder = tmp_path / "text"
    trained_ptb_model.save_pretrained(folder)
    assert main(["generate", str(folder), "--num_samples", "3", "--do_sample", "--top_k",
                 "20", "--seed", "1", "--max_new_tokens", "12"]) == 0  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    torch.manual_seed(1)
    expected = trained_ptb_model.generate_sentences(
        num_samples=3, do_sample=True, top_k=20, max_new_tokens=12
    )
    assert printed == expected and len(printed) == 3
    a, b = "the company said it expects higher sales", "the stock fell sharply"
    assert main(["interpolate", str(folder), a, b, "--steps", "4", "--num-beams", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    path = trained_ptb_model.interpolate(a, b, 4, num_beams=2)
    steps = ("0.00", "0.33", "0.67", "1.00")
    assert printed == [
        f"a     {a}", *(f"{t}  {s}" for t, s in zip(steps, path, strict=True)), f"b     {b}"
    ]
    assert main(["generate", str(folder), "--num_beams", "0"]) == 1
    assert "num_beams=0 is not valid" in capsys.readouterr().err


def test_generate_and_interpolate_write_image_grids_for_a_delta_vae(tmp_path, capsys):
    from vaehub import DeltaVAEConfig, DeltaVAEModel, save_image_grid
    from vaehub.data.images import image_batches, load_digits

    torch.manual_seed(0)
    config = DeltaVAEConfig(image_size=8, latent_size=2, encoder_channels=8,
                            decoder_channels=8, decoder_layers=2)  # fmt: skip
    model = DeltaVAEModel(config).eval()
    model.save_pretrained(tmp_path / "images")
    grid = tmp_path / "grid.png"
    argv = ["generate", str(tmp_path / "images"), "--num_samples", "4", "--output", str(grid)]
    assert main(argv) == 0
    torch.manual_seed(0)
    save_image_grid(model.generate(num_samples=4), tmp_path / "expected.png")
    assert grid.read_bytes() == (tmp_path / "expected.png").read_bytes()
    row = tmp_path / "row.png"
    argv = ["interpolate", str(tmp_path / "images"), "3", "7", "--data", "digits",
            "--steps", "3", "--output", str(row)]  # fmt: skip
    assert main(argv) == 0
    pair = next(image_batches(load_digits("test").select([3, 7]), 2))["pixel_values"]
    path = model.interpolate(pair[0], pair[1], 3)
    save_image_grid(torch.cat([pair[:1], path, pair[1:]]), tmp_path / "same.png", columns=5)
    assert row.read_bytes() == (tmp_path / "same.png").read_bytes()
    capsys.readouterr()
    assert main(["interpolate", str(tmp_path / "images"), "3", "x", "--data", "digits"]) == 1
    assert "'x' is not an image index" in capsys.readouterr().err


def test_help_and_import_load_no_model_code():
    """`vaehub --help`, a command's `--help` and `import vaehub` stay light: no torch, no
    transformers models, no datasets (the start-up targets are timed in benchmarks/)."""
    script = (
        "import sys, contextlib, io\n"
        "import vaehub\n"
        "from vaehub.commands.main import main\n"
        "for argv in (['--help'], ['generate', '--help'], ['evaluate', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "print(sorted(m for m in ('torch', 'datasets', 'transformers.modeling_utils')"
        " if m in sys.modules))\n"
    )
    assert fresh_python("-c", script).strip() == "[]"


def test_every_command_runs_a_function():
    import argparse

    from vaehub.commands.main import build_parser

    commands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name, parser in commands.choices.items():
        run = parser.get_default("run")
        if name in ("train", "app"):  # handed on unparsed by `main`
            continue
        assert callable(run) and not isinstance(run, argparse.ArgumentParser), name


@pytest.mark.parametrize("module", ["vaehub", "vaehub.cli"])
def test_python_dash_m_runs_the_command(module):
    """`python -m vaehub` where the scripts folder is not on PATH; `python -m vaehub.cli`,
    0.1's spelling, through the moved-path table."""
    assert fresh_python("-m", module, "generate", "--help").startswith("usage: vaehub generate")
