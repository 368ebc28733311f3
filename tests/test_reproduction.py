"""`vaehub reproduce`: He et al.'s table in kind on the synthetic corpus, real runs."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import shutil
from pathlib import Path

import pytest

from vaehub.commands.main import main
from vaehub.recipes.reproduce import (
    IMAGE_ROWS,
    MARKDOWN_FILE,
    SETTINGS_FILE,
    TABLE_FILE,
    TEXT_ROWS,
    TableSettings,
    check_resumable,
    record_row,
    render_command,
    render_markdown,
    row_arguments,
    row_command_line,
    row_done,
    row_folder,
    row_settings,
    run_row,
    summarise,
)
from vaehub.recipes.train import build_arguments

# A budget small enough for the suite that still shows the lesson: the synthetic
# model has 50-unit LSTMs and a 2-d latent; the inner loops are cut short (at most 10
# aggressive encoder steps per update, 3 SVI steps), given to every row after `--`.
TABLE = dict(dataset="synthetic", max_steps=200, iw_samples=20)
INNER = ["--aggressive_max_inner_steps", "10", "--sa_vae_steps", "3"]
DATA = ["--synthetic-sentences", "4000", "--max-eval-examples", "300"]
ROWS = ["vae", "vae_anneal", "sa_vae_anneal", "aggressive", "delta_vae"]  # table order
CURES = ("aggressive", "sa_vae_anneal")


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reproduce")
    status = main(
        ["reproduce", "--dataset", "synthetic", "--output-dir", str(folder), "--rows", *ROWS,
         "--max-steps", str(TABLE["max_steps"]), "--iw-samples", str(TABLE["iw_samples"]),
         *DATA, "--", "--disable_tqdm", "True", *INNER]
    )  # fmt: skip
    assert status == 0
    return folder


def read_table(folder, dataset: str = "synthetic") -> dict:
    with open(os.path.join(folder, dataset, "table.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_the_table_shows_collapse_and_its_cures(table_dir):
    rows = read_table(table_dir)["rows"]
    assert list(rows) == ["lstm_lm", *ROWS]  # the exact baseline joins, first
    mean = {name: {k: v["mean"] for k, v in row.items() if isinstance(v, dict) and "mean" in v}
            for name, row in rows.items()}  # fmt: skip
    for collapsed in ("vae", "vae_anneal"):
        assert mean[collapsed]["kl"] < 0.5 and mean[collapsed]["active_units"] <= 1, collapsed
    for cure in CURES:
        for key in ("kl", "mi", "active_units"):
            assert mean[cure][key] > mean["vae"][key], (cure, key)
    # The δ-VAE's KL is at least its committed rate, by construction, whether or not its
    # posterior means carry information about x (MI and AU say that).
    assert mean["delta_vae"]["kl"] >= 1.0 - 1e-3
    # ΔNLL is the row's IW-NLL minus the exact NLL of the LM of the same seed.
    for name in ROWS:
        assert mean[name]["delta_nll"] == pytest.approx(
            mean[name]["nll"] - mean["lstm_lm"]["nll"], abs=1e-6
        )


def test_each_row_is_a_vaehub_train_folder_with_its_command(table_dir):
    settings = TableSettings(output_dir=str(table_dir), rows=ROWS, **TABLE)
    for row in settings.table_rows:
        folder = row_folder(settings, row, 0)
        assert os.path.isfile(os.path.join(folder, "model.safetensors"))
        assert not [n for n in os.listdir(folder) if n.startswith("checkpoint-")]
        with open(os.path.join(folder, "training.json"), encoding="utf-8") as handle:
            assert json.load(handle)["global_step"] == TABLE["max_steps"]
        with open(os.path.join(folder, "command.txt"), encoding="utf-8") as handle:
            assert handle.read().startswith("vaehub train --dataset synthetic")
        with open(os.path.join(folder, SETTINGS_FILE), encoding="utf-8") as handle:
            recorded = json.load(handle)
        assert recorded["settings"]["max_steps"] == TABLE["max_steps"]
        assert recorded["settings"]["aggressive_max_inner_steps"] == 10  # from after `--`


def test_markdown_and_figure_come_from_the_json(table_dir):
    table = read_table(table_dir)
    folder = os.path.join(table_dir, "synthetic")
    with open(os.path.join(folder, "table.md"), encoding="utf-8") as handle:
        markdown = handle.read()
    assert markdown == render_markdown(table)
    vae = table["rows"]["vae"]
    assert f"| VAE | {vae['nll']['mean']:.2f} |" in markdown
    assert "| 329 / 0 / 0 / 0 |" in markdown  # He et al.'s VAE row beside ours
    assert os.path.getsize(os.path.join(folder, "collapse.png")) > 10_000


def test_a_finished_row_is_kept_not_trained_again(table_dir, capsys):
    weights = os.path.join(table_dir, "synthetic", "vae", "seed-0", "model.safetensors")
    before = os.path.getmtime(weights)
    status = main(
        ["reproduce", "--dataset", "synthetic", "--output-dir", str(table_dir), "--rows", "vae",
         "--max-steps", str(TABLE["max_steps"]), "--iw-samples", str(TABLE["iw_samples"]),
         *DATA]
    )  # fmt: skip
    assert status == 0
    assert os.path.getmtime(weights) == before
    assert "vae seed 0: done before, kept" in capsys.readouterr().out


def test_table_only_trains_nothing_and_reports_the_seeds_that_finished(table_dir, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(table_dir, folder)
    before = read_table(folder)
    capsys.readouterr()
    status = main(
        ["reproduce", "--dataset", "synthetic", "--output-dir", str(folder), "--seeds", "0", "1",
         "--max-steps", str(TABLE["max_steps"]), "--iw-samples", str(TABLE["iw_samples"]),
         "--table-only"]
    )  # fmt: skip
    assert status == 0
    assert not os.path.exists(os.path.join(folder, "synthetic", "vae", "seed-1"))
    after = read_table(folder)
    # Every row whose seed 0 finished, whichever run trained it; seed 1 trained nowhere.
    finished = [
        row.name for row in TEXT_ROWS
        if row_done(os.path.join(folder, "synthetic", row.name, "seed-0"))
    ]  # fmt: skip
    assert after["seeds"] == [0, 1] and list(after["rows"]) == finished
    assert set(before["rows"]) <= set(finished)
    assert all(list(row["seeds"]) == ["0"] for row in after["rows"].values())
    assert after["rows"]["vae"]["nll"] == before["rows"]["vae"]["nll"]
    assert render_markdown(after) in capsys.readouterr().out


def test_row_settings_name_the_baseline_and_the_budget(tmp_path):
    settings = TableSettings(dataset="synthetic", output_dir=str(tmp_path), max_steps=1000)
    rows = {row.name: row for row in TEXT_ROWS}
    ours = row_settings(settings, rows["lm_free_bits_aggressive"], 3)
    lm = row_folder(settings, rows["lstm_lm"], 3)
    assert ours["baseline"] == lm and ours["init_decoder_from"] == lm
    assert ours["max_steps"] == 1000 and ours["seed"] == 3
    assert ours["free_bits"] == 0.75  # the synthetic model's λ
    assert row_settings(settings, rows["vae_anneal"], 0)["anneal_steps"] == 300
    assert "anneal_steps" not in row_settings(settings, rows["vae"], 0)
    assert "baseline" not in row_settings(settings, rows["lstm_lm"], 0)
    ptb = TableSettings(dataset="ptb", output_dir=str(tmp_path))
    delta = row_settings(ptb, rows["delta_vae"], 0)
    assert delta["committed_rate"] == 5.0 and delta["latent_length"] == 22
    assert "latent_length" not in row_settings(settings, rows["delta_vae"], 0)
    assert row_settings(ptb, rows["vae"], 0)["final_iw_nll_splits"] == ["test"]
    # The CPU budget checks aggressive's MI every 50 updates and takes K = 5 SVI steps;
    # the papers' budget keeps He et al.'s per-epoch check and Kim et al.'s K = 20.
    cpu = row_settings(ptb, rows["aggressive_anneal"], 0)
    assert cpu["aggressive_check_steps"] == 50 and cpu["aggressive_window"] == 10
    assert row_settings(ptb, rows["sa_vae_anneal"], 0)["sa_vae_steps"] == 5
    # Without annealing, SA-VAE steps λ by Kim et al.'s η = 1 over a batch mean of 32.
    assert row_settings(ptb, rows["sa_vae"], 0)["sa_vae_lr"] == 0.03125
    assert "sa_vae_lr" not in row_settings(ptb, rows["sa_vae_anneal"], 0)
    paper = TableSettings(dataset="ptb", output_dir=str(tmp_path), budget="paper")
    for name in ("aggressive", "sa_vae", "lm_free_bits_aggressive"):
        values = row_settings(paper, rows[name], 0)
        assert not {"aggressive_check_steps", "sa_vae_steps"} & set(values)
    assert row_settings(ptb, rows["vae"], 0)["paper_training"] is True
    images = {row.name: row for row in IMAGE_ROWS}
    for dataset in ("mnist", "omniglot"):
        image = TableSettings(dataset=dataset, output_dir=str(tmp_path))
        aggressive = row_settings(image, images["aggressive"], 0)
        assert aggressive["aggressive_check_steps"] == 50
        # He et al.'s image code: window 10, patience 5, each given once.
        for budget in ("cpu", "paper"):
            setting = TableSettings(dataset=dataset, output_dir=str(tmp_path), budget=budget)
            flags = row_command_line(setting, images["aggressive"], 0)
            assert flags.count("--aggressive_window") == flags.count("--aggressive_patience") == 1
            rules = row_settings(setting, images["aggressive"], 0)
            assert (rules["aggressive_window"], rules["aggressive_patience"]) == (10, 5)
        assert row_settings(image, images["sa_vae"], 0)["sa_vae_steps"] == 5
        assert row_settings(image, images["sa_vae"], 0)["sa_vae_lr"] == 0.03125
        assert "sa_vae_steps" not in row_settings(image, images["vae"], 0)


def test_a_rows_settings_reach_the_training_arguments(tmp_path):
    rows = {row.name: row for row in TEXT_ROWS}
    synthetic = TableSettings(dataset="synthetic", output_dir=str(tmp_path), max_steps=1000)
    for beta in (0.2, 0.4, 0.6, 0.8):
        model, data, training = row_arguments(synthetic, rows[f"beta_{beta}"], 3)
        assert (training.objective, training.beta) == ("beta", beta)
        assert (training.max_steps, training.seed, training.iw_samples) == (1000, 3, 100)
        assert training.learning_rate == 3e-3 and data.dataset == "synthetic"
        assert training.output_dir == row_folder(synthetic, rows[f"beta_{beta}"], 3)
    model, _, training = row_arguments(synthetic, rows["lm_free_bits_aggressive"], 0)
    assert model.init_decoder_from == row_folder(synthetic, rows["lstm_lm"], 0)
    assert (training.objective, training.free_bits) == ("aggressive", 0.75)
    ptb = TableSettings(dataset="ptb", output_dir=str(tmp_path))
    _, _, training = row_arguments(ptb, rows["aggressive"], 0)
    assert (training.aggressive_check_steps, training.aggressive_window) == (50, 10)
    # paper_training: He et al.'s SGD, as `vaehub train --paper_training` gives it.
    assert training.optim == "sgd" and training.learning_rate == 1.0
    assert training.lr_scheduler_kwargs == {"factor": 0.5, "patience": 2, "min_lr": 0.03125}
    paper = TableSettings(dataset="ptb", output_dir=str(tmp_path), budget="paper")
    _, _, training = row_arguments(paper, rows["aggressive"], 0)
    assert (training.aggressive_check_steps, training.aggressive_window) == (None, 15)
    model, _, _ = row_arguments(ptb, rows["delta_vae"], 0)
    assert (model.prior, model.committed_rate, model.latent_length) == ("ar1", 5.0, 22)
    # Flags after `--` are parsed on top of a row's settings, so they win.
    extra = TableSettings(dataset="synthetic", output_dir=str(tmp_path),
                          extra_flags=("--beta", "0.5", "--learning_rate", "0.01"))  # fmt: skip
    _, _, training = row_arguments(extra, rows["beta_0.2"], 0)
    assert (training.beta, training.learning_rate) == (0.5, 0.01)


def test_settings_are_checked_and_paper_training_lies_under_them(tmp_path):
    out = {"output_dir": str(tmp_path)}
    with pytest.raises(ValueError, match="betaa: not a field of ModelArguments"):
        build_arguments({**out, "betaa": 0.2})
    with pytest.raises(ValueError, match="objective='magic' is not valid"):
        build_arguments({**out, "objective": "magic"})
    _, _, training = build_arguments({**out, "paper_training": True, "learning_rate": 0.5})
    assert training.optim == "sgd" and training.learning_rate == 0.5
    _, _, training = build_arguments(out, ["--paper_training", "False"])
    assert training.optim != "sgd" and training.learning_rate == 5e-5


def same_arguments(first: tuple, second: tuple) -> bool:
    model, data, training = first
    return (
        dataclasses.asdict(model) == dataclasses.asdict(second[0])
        and dataclasses.asdict(data) == dataclasses.asdict(second[1])
        and training.to_dict() == second[2].to_dict()
    )


@pytest.mark.parametrize("dataset", ["synthetic", "ptb", "mnist"])
def test_command_txt_parses_back_to_the_rows_arguments(dataset, tmp_path):
    from transformers import HfArgumentParser

    from vaehub.recipes.train import DataArguments, ModelArguments
    from vaehub.training.arguments import VAETrainingArguments

    parser = HfArgumentParser((ModelArguments, DataArguments, VAETrainingArguments))
    settings = TableSettings(
        dataset=dataset, output_dir=str(tmp_path / "a dir"), max_steps=40,
        extra_flags=("--disable_tqdm", "True", "--max_grad_norm", "2.5"),
    )  # fmt: skip
    for row in settings.table_rows:
        argv = shlex.split(render_command(settings, row, 1))
        assert argv[:2] == ["vaehub", "train"]
        arguments = row_arguments(settings, row, 1)
        assert arguments[2].max_grad_norm == 2.5  # the flag after `--` wins
        # As `vaehub train` reads it (He et al.'s optimisation under --paper_training) ...
        assert same_arguments(build_arguments(flags=argv[2:]), arguments), row.name
        if dataset != "ptb":
            # ... and as transformers' parser alone does, where the row asks for no more.
            parsed = parser.parse_args_into_dataclasses(argv[2:], look_for_args_file=False)
            assert same_arguments(parsed, arguments), row.name


# The commands folders recorded before settings.json (vaehub's row_flags, output folder
# `out`, max_steps 1000, seed 3, `-- --disable_tqdm True`): they must still resume.
OLD_COMMANDS = {
    ("synthetic", "cpu", "vae_anneal"): (
        "vaehub train --dataset synthetic --preset synthetic --optim adamw_torch --learning_rate "
        "3e-3 --lr_scheduler_type constant --per_device_train_batch_size 32 --max_grad_norm 5.0 "
        "--objective anneal --max_steps 1000 --seed 3 --eval_iw_nll True "
        "--iw_nll_after_training_only True --iw_samples 100 --save_strategy steps --save_steps "
        "250 --save_total_limit 1 --logging_steps 50 --report_to none --output_dir "
        "out/synthetic/vae_anneal/seed-3 --anneal_steps 300 --baseline "
        "out/synthetic/lstm_lm/seed-3 --disable_tqdm True"
    ),
    ("ptb", "cpu", "lm_free_bits_aggressive"): (
        "vaehub train --dataset ptb --preset ptb --paper_training --objective aggressive "
        "--free_bits 0.25 --aggressive_check_steps 50 --aggressive_window 10 "
        "--final_iw_nll_splits test --max_steps 1000 --seed 3 --eval_iw_nll True "
        "--iw_nll_after_training_only True --iw_samples 100 --save_strategy steps --save_steps "
        "250 --save_total_limit 1 --logging_steps 50 --report_to none --output_dir "
        "out/ptb/lm_free_bits_aggressive/seed-3 --baseline out/ptb/lstm_lm/seed-3 "
        "--init_decoder_from out/ptb/lstm_lm/seed-3 --disable_tqdm True"
    ),
    ("ptb", "cpu", "delta_vae"): (
        "vaehub train --dataset ptb --preset ptb --paper_training --prior ar1 --committed_rate "
        "5.0 --final_iw_nll_splits test --latent_length 22 --max_steps 1000 --seed 3 "
        "--eval_iw_nll True --iw_nll_after_training_only True --iw_samples 100 --save_strategy "
        "steps --save_steps 250 --save_total_limit 1 --logging_steps 50 --report_to none "
        "--output_dir out/ptb/delta_vae/seed-3 --baseline out/ptb/lstm_lm/seed-3 "
        "--disable_tqdm True"
    ),
    ("ptb", "paper", "aggressive_anneal"): (
        "vaehub train --dataset ptb --preset ptb --paper_training --objective aggressive "
        "--beta_schedule linear --final_iw_nll_splits test --max_steps 1000 --seed 3 "
        "--eval_iw_nll True --iw_nll_after_training_only True --iw_samples 100 --save_strategy "
        "steps --save_steps 250 --save_total_limit 1 --logging_steps 50 --report_to none "
        "--output_dir out/ptb/aggressive_anneal/seed-3 --anneal_steps 300 --baseline "
        "out/ptb/lstm_lm/seed-3 --disable_tqdm True"
    ),
    ("mnist", "cpu", "aggressive"): (
        "vaehub train --dataset mnist --learning_rate 1e-3 --lr_scheduler_type constant "
        "--per_device_train_batch_size 32 --max_grad_norm 5.0 --model_type delta_vae "
        "--objective aggressive --aggressive_window 10 --aggressive_patience 5 "
        "--aggressive_check_steps 50 --final_iw_nll_splits test --max_steps 1000 --seed 3 "
        "--eval_iw_nll True --iw_nll_after_training_only True --iw_samples 100 --save_strategy "
        "steps --save_steps 250 --save_total_limit 1 --logging_steps 50 --report_to none "
        "--output_dir out/mnist/aggressive/seed-3 --baseline out/mnist/pixelcnn/seed-3 "
        "--disable_tqdm True"
    ),
}


def fake_checkpoint(folder: str) -> str:
    checkpoint = os.path.join(folder, "checkpoint-2")
    os.makedirs(checkpoint)
    return checkpoint


@pytest.mark.parametrize("key", sorted(OLD_COMMANDS))
def test_a_folder_with_only_its_old_command_resumes_under_the_same_settings(
    key, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    dataset, budget, name = key
    table = dict(dataset=dataset, output_dir="out", budget=budget, max_steps=1000,
                 extra_flags=("--disable_tqdm", "True"))  # fmt: skip
    settings = TableSettings(**table)
    row = next(row for row in settings.table_rows if row.name == name)
    folder = row_folder(settings, row, 3)
    checkpoint = fake_checkpoint(folder)
    Path(folder, "command.txt").write_text(OLD_COMMANDS[key] + "\n")
    check_resumable(settings, row, 3, checkpoint)  # the same settings, however written
    changed = TableSettings(**{**table, "iw_samples": 7})
    with pytest.raises(ValueError, match="other flags .iw_samples: 100 → 7; the earlier command"):
        check_resumable(changed, row, 3, checkpoint)
    # A recorded flag today's parser refuses is told word by word, as before.
    Path(folder, "command.txt").write_text(OLD_COMMANDS[key] + " --a_flag_since_renamed 1\n")
    with pytest.raises(ValueError, match="other flags .*words"):
        check_resumable(settings, row, 3, checkpoint)


def test_resuming_is_refused_naming_the_settings_that_changed(tmp_path):
    rows = {row.name: row for row in TEXT_ROWS}
    table = dict(dataset="synthetic", output_dir=str(tmp_path), max_steps=100)
    settings = TableSettings(**table)
    folder = row_folder(settings, rows["beta_0.4"], 0)
    record_row(settings, rows["beta_0.4"], 0)
    with open(os.path.join(folder, SETTINGS_FILE), encoding="utf-8") as handle:
        assert json.load(handle)["settings"]["beta"] == 0.4
    checkpoint = fake_checkpoint(folder)
    check_resumable(settings, rows["beta_0.4"], 0, checkpoint)
    flags = TableSettings(**table, extra_flags=("--beta", "0.6", "--learning_rate", "0.01"))
    with pytest.raises(ValueError) as refused:
        check_resumable(flags, rows["beta_0.4"], 0, checkpoint)
    message = str(refused.value)
    assert "checkpoint-2 of a run started with other flags" in message
    assert "(learning_rate: 3e-3 → 0.01; beta: 0.4 → 0.6;" in message
    assert f"the earlier settings are in {folder}/{SETTINGS_FILE}" in message
    assert "Rerun with the flags that started it to resume, or delete the folder" in message
    # A setting the row leaves at its default is named too.
    longer = TableSettings(**{**table, "max_steps": 200})
    with pytest.raises(ValueError, match="max_steps: 100 → 200; save_steps: 25 → 50"):
        check_resumable(longer, rows["beta_0.4"], 0, checkpoint)
    # settings.json, where the folder has one, is what counts, not command.txt's wording.
    Path(folder, "command.txt").write_text("vaehub train --edited by hand\n")
    check_resumable(settings, rows["beta_0.4"], 0, checkpoint)
    # A settings.json that is no such record is named, with what to do, not a KeyError.
    for broken, problem in (
        ('{"command": "vaehub train"}', "no 'settings' key"),
        ('{"settings": [1, 2]}', "its settings are a list"),
        ('{"settings": {"beta": 0.4', "Expecting"),
    ):
        Path(folder, SETTINGS_FILE).write_text(broken)
        with pytest.raises(ValueError, match="is not a row's settings record") as refused:
            check_resumable(settings, rows["beta_0.4"], 0, checkpoint)
        assert problem in str(refused.value) and "delete the row's folder" in str(refused.value)


# The command a folder from before settings.json recorded for the stopped row below.
OLD_STOPPED_COMMAND = (
    "vaehub train --dataset synthetic --preset synthetic --optim adamw_torch --learning_rate "
    "3e-3 --lr_scheduler_type constant --per_device_train_batch_size 32 --max_grad_norm 5.0 "
    "--model_type text_lm --max_steps 8 --seed 0 --eval_iw_nll True --iw_nll_after_training_only "
    "True --iw_samples 2 --save_strategy steps --save_steps 2 --save_total_limit 1 "
    "--logging_steps 1 --report_to none --output_dir OUT/synthetic/lstm_lm/seed-0 "
    "--synthetic_sentences 400 --max_eval_examples 40 --disable_tqdm True --logging_steps 100"
)


@pytest.mark.parametrize("recorded", ["settings", "command only"])
def test_a_stopped_row_resumes_and_refuses_other_flags(recorded, tmp_path, capsys):
    from vaehub.commands.train import train

    small = ["--synthetic_sentences", "400", "--max_eval_examples", "40", "--disable_tqdm",
             "True", "--logging_steps", "100"]  # fmt: skip
    settings = TableSettings(dataset="synthetic", output_dir=str(tmp_path), rows=["lstm_lm"],
                             max_steps=8, iw_samples=2, extra_flags=tuple(small))  # fmt: skip
    lm = TEXT_ROWS[0]  # the exact row: it needs no baseline trained first
    folder = row_folder(settings, lm, 0)
    # A run stopped after its first checkpoint (every 2 updates): the row's own command,
    # cut at 2 updates, leaves checkpoint-2 and no finished model. Its folder recorded the
    # row as run_row does, or (from before settings.json) its command alone.
    if recorded == "settings":
        record_row(settings, lm, 0)
    else:
        os.makedirs(folder)
        old = OLD_STOPPED_COMMAND.replace("OUT", str(tmp_path))
        Path(folder, "command.txt").write_text(old + "\n")
    assert train([*row_command_line(settings, lm, 0), "--max_steps", "2"]) == 0
    os.remove(os.path.join(folder, "model.safetensors"))
    assert not row_done(folder) and os.path.isdir(os.path.join(folder, "checkpoint-2"))

    changed = TableSettings(dataset="synthetic", output_dir=str(tmp_path), rows=["lstm_lm"],
                            max_steps=8, iw_samples=3, extra_flags=tuple(small))  # fmt: skip
    with pytest.raises(ValueError, match="checkpoint-2 of a run started with other flags"):
        run_row(changed, lm, 0)
    assert os.path.isdir(os.path.join(folder, "checkpoint-2"))  # nothing lost
    with pytest.raises(ValueError, match="iw_samples: 2 → 3"):
        run_row(changed, lm, 0)

    run_row(settings, lm, 0)
    assert "resuming from" in capsys.readouterr().out
    assert row_done(folder)
    with open(os.path.join(folder, "training.json"), encoding="utf-8") as handle:
        assert json.load(handle)["global_step"] == 8
    with open(os.path.join(folder, "wall_seconds.json"), encoding="utf-8") as handle:
        assert json.load(handle)["resumed_from"].endswith("checkpoint-2")
    # The folder now records its settings (a folder from before settings.json too).
    with open(os.path.join(folder, SETTINGS_FILE), encoding="utf-8") as handle:
        assert json.load(handle)["settings"]["iw_samples"] == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(dataset="cifar"), "dataset 'cifar' is not known"),
        (dict(dataset="synthetic", rows=["vae", "gan"]), "unknown text row gan"),
        (dict(dataset="mnist", rows=["iaf"]), "unknown image row iaf"),
        (dict(dataset="synthetic", max_steps=0), "max_steps=0 is not valid"),
        (dict(dataset="ptb", budget="gpu"), "budget='gpu' is not valid"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TableSettings(**settings)


def test_summary_over_seeds():
    assert summarise([1.0, 3.0]) == {"mean": 2.0, "sd": pytest.approx(math.sqrt(2))}
    assert summarise([5.0, None]) == {"mean": 5.0, "sd": None}
    assert summarise([None]) == {"mean": None, "sd": None}


def test_the_image_table_runs_beside_its_pixelcnn(tmp_path):
    status = main(
        ["reproduce", "--dataset", "digits", "--output-dir", str(tmp_path), "--rows", "vae",
         "delta_constrained", "--max-steps", "30", "--iw-samples", "5", "--max-train-examples",
         "640", "--", "--disable_tqdm", "True", "--decoder_layers", "2"]
    )  # fmt: skip
    assert status == 0
    rows = read_table(tmp_path, "digits")["rows"]
    assert list(rows) == ["pixelcnn", "vae", "delta_constrained"]
    assert rows["pixelcnn"]["bits_per_dim"]["mean"] > 0
    for name in ("vae", "delta_constrained"):
        row = rows[name]
        assert row["delta_nll"]["mean"] == pytest.approx(
            row["nll"]["mean"] - rows["pixelcnn"]["nll"]["mean"], abs=1e-6
        )
    assert rows["delta_constrained"]["kl"]["mean"] >= 2.0 - 1e-3  # its committed rate


REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
# marker → (the results page that shows the table, the run folder that wrote it)
PUBLISHED_TABLES = {
    "reproduce-synthetic-table": (
        RESULTS / "synthetic.md",
        REPO / "examples/results/reproduce/synthetic",
    ),
    "reproduce-ptb-table": (RESULTS / "ptb.md", REPO / "examples/results/reproduce/ptb"),
    "reproduce-ptb-first-rows": (
        RESULTS / "ptb.md",
        REPO / "examples/results/reproduce/ptb-2630-updates",
    ),
    "reproduce-ptb-sa-vae-float32": (
        RESULTS / "ptb.md",
        REPO / "examples/results/reproduce/ptb-sa-vae-float32",
    ),
    "reproduce-mnist-table": (RESULTS / "mnist.md", REPO / "examples/results/reproduce/mnist"),
    "reproduce-mnist-sa-vae-float32": (
        RESULTS / "mnist.md",
        REPO / "examples/results/reproduce/mnist-sa-vae-float32",
    ),
    "reproduce-omniglot-table": (
        RESULTS / "omniglot.md",
        REPO / "examples/results/reproduce/omniglot",
    ),
    "reproduce-omniglot-sa-vae-float32": (
        RESULTS / "omniglot.md",
        REPO / "examples/results/reproduce/omniglot-sa-vae-float32",
    ),
}


@pytest.mark.parametrize("marker", sorted(PUBLISHED_TABLES))
def test_the_results_pages_tables_are_the_ones_their_runs_wrote(marker):
    page, folder = PUBLISHED_TABLES[marker]
    text = page.read_text(encoding="utf-8")
    block = text.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]
    markdown = (folder / MARKDOWN_FILE).read_text(encoding="utf-8")
    assert markdown in block
    with open(folder / TABLE_FILE, encoding="utf-8") as handle:
        assert render_markdown(json.load(handle)) == markdown
