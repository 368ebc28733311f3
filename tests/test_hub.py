"""Sharing on the Hub, against a real Hub-API server on loopback (see hub_server.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import free_port, run_against_a_silent_server, serving, small_config
from huggingface_hub import ModelCard
from transformers import AutoModel

from vaehub import CheckpointError, DeltaVAEConfig, DeltaVAEModel, TextVAEModel, build_tokenizer
from vaehub.commands.main import main
from vaehub.evaluation.metrics import evaluate_vae
from vaehub.hub.cards import NO_LATENT, render_model_card
from vaehub.hub.transfer import HubError, pull
from vaehub.models.results import (
    MissingResultsError,
    training_summary,
    write_results,
    write_training_summary,
)
from vaehub.utils import network
from vaehub.utils.formatting import fixed

CORPUS = ["the cat sat on the mat", "a dog ate the cat", "the dog sat on a log"]
METRICS = {
    "nll": 31.25,
    "ppl": 120.5,
    "kl": 2.5,
    "mi": 1.75,
    "active_units": 3,
    "neg_elbo": 33.0,
    "reconstruction": 30.5,
    "num_examples": 3,
}


def make_model(seed: int = 0, with_results: bool = True) -> TextVAEModel:
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(CORPUS)
    model = TextVAEModel(small_config(len(tokenizer), init_range=0.3)).eval()
    model.tokenizer = tokenizer
    if with_results:
        model.evaluation_results["test"] = {
            "split": "test",
            "dataset": {"name": "toy sentences", "type": "custom"},
            "iw_samples": 500,
            "metrics": dict(METRICS),
        }
        model.training_summary = {"objective": "aggressive", "learning_rate": 0.001}
    return model


def logits_of(model: TextVAEModel) -> torch.Tensor:
    input_ids, attention_mask = model.tokenize(CORPUS)
    z = torch.linspace(-1, 1, len(CORPUS) * model.config.latent_size).view(len(CORPUS), -1)
    with torch.no_grad():
        return model(input_ids, attention_mask, z=z).logits


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- push and pull ------------------------------------------------------------------------


def test_push_then_pull_gives_identical_logits_and_tokenizer(hub):
    model = make_model()
    url = model.push_to_hub("org/round-trip")
    assert "org/round-trip" in url
    for loader in (TextVAEModel, AutoModel):
        pulled = loader.from_pretrained("org/round-trip")
        assert isinstance(pulled, TextVAEModel)
        assert torch.equal(logits_of(pulled), logits_of(model))
        assert pulled.tokenizer.get_vocab() == model.tokenizer.get_vocab()
        assert pulled.evaluation_results["test"]["metrics"] == METRICS
        assert pulled.training_summary["objective"] == "aggressive"
        assert pulled.tokenizer(CORPUS[0])["input_ids"] == model.tokenizer(CORPUS[0])["input_ids"]
    served = hub.repo_path("org/round-trip")
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "README.md",
        "eval_test.json",
    } <= set(os.listdir(served))


def test_revision_is_honoured(hub):
    first, second = make_model(seed=1), make_model(seed=2)
    first.push_to_hub("org/revisions")
    second.push_to_hub("org/revisions", revision="v2", commit_message="second version")
    main_model = TextVAEModel.from_pretrained("org/revisions")
    v2 = AutoModel.from_pretrained("org/revisions", revision="v2")
    assert torch.equal(logits_of(main_model), logits_of(first))
    assert torch.equal(logits_of(v2), logits_of(second))
    assert not torch.equal(logits_of(main_model), logits_of(v2))
    log = subprocess.run(
        ["git", "log", "--format=%s", "v2"],
        cwd=hub.repo_path("org/revisions"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert log.splitlines()[0] == "second version"


def test_command_line_push_pull_and_card(hub, tmp_path, capsys):
    folder = tmp_path / "model"
    make_model().save_pretrained(folder)
    before = folder_digest(folder)
    assert main(["card", str(folder), "--repo-id", "org/cli"]) == 0
    assert (folder / "README.md").is_file()
    (folder / "README.md").unlink()
    assert (
        main(
            [
                "push",
                str(folder),
                "org/cli",
                "--revision",
                "exp",
                "--commit-message",
                "from the command line",
            ]
        )
        == 0
    )
    assert folder_digest(folder) == before  # a push only reads the folder
    output = tmp_path / "pulled"
    assert main(["pull", "org/cli", "--revision", "exp", "--output-dir", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "pulled org/cli (exp)" in printed and "text_vae" in printed
    assert torch.equal(logits_of(TextVAEModel.from_pretrained(output)), logits_of(make_model()))


def test_pulling_into_a_folder_that_holds_a_model_is_refused_or_replaces_it_whole(
    hub, tmp_path, capsys
):
    first, second = make_model(seed=5), make_model(seed=6, with_results=False)
    first.push_to_hub("org/first")
    second.push_to_hub("org/second", card=False)
    folder = tmp_path / "model"
    assert main(["pull", "org/first", "--output-dir", str(folder)]) == 0
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    before = folder_digest(folder)
    assert "eval_test.json" in before

    assert main(["pull", "org/second", "--output-dir", str(folder)]) == 1
    error = capsys.readouterr().err
    assert f"{folder} is not empty (it holds" in error and "--force" in error
    assert folder_digest(folder) == before
    # A pull that fails, even with --force, leaves the folder and its parent as they were.
    assert main(["pull", "org/missing", "--output-dir", str(folder), "--force"]) == 1
    assert folder_digest(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]

    assert main(["pull", "org/second", "--output-dir", str(folder), "--force"]) == 0
    after = folder_digest(folder)
    assert "eval_test.json" not in after and "notes.txt" not in after  # nothing of the first
    assert torch.equal(logits_of(TextVAEModel.from_pretrained(folder)), logits_of(second))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(HubError, match="is a file, not a folder"):
        pull("org/second", local_dir=tmp_path / "file")


def test_command_line_pulls_a_delta_vae(hub, tmp_path, capsys):
    torch.manual_seed(0)
    config = DeltaVAEConfig(
        image_size=8,
        latent_size=2,
        encoder_channels=8,
        encoder_layers=2,
        decoder_channels=8,
        decoder_layers=2,
        prior="ar1",
        committed_rate=3.0,
    )
    model = DeltaVAEModel(config).eval()
    images = (torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    model.evaluation_results["test"] = {  # a card needs measured results
        "split": "test",
        "dataset": {"name": "random binary images", "type": "custom"},
        "iw_samples": 2,
        "metrics": evaluate_vae(model, [{"pixel_values": images}], iw_samples=2),
    }
    model.push_to_hub("org/images")
    output = tmp_path / "pulled"
    assert main(["pull", "org/images", "--output-dir", str(output)]) == 0
    assert "a delta_vae model" in capsys.readouterr().out
    pulled = DeltaVAEModel.from_pretrained(output).eval()
    z = torch.randn(3, *config.latent_shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(pulled(images, z=z).logits, model(images, z=z).logits)
    assert pulled.committed_rate == pytest.approx(3.0)


def test_offline_mode_loads_from_the_populated_cache(hub, tmp_path):
    model = make_model(seed=3)
    model.push_to_hub("org/offline")
    TextVAEModel.from_pretrained("org/offline")  # populates the cache
    expected = logits_of(model)
    torch.save(expected, tmp_path / "expected.pt")
    script = (
        "import sys, torch, vaehub\n"
        "from transformers import AutoModel\n"
        "model = AutoModel.from_pretrained('org/offline')\n"
        "input_ids, attention_mask = model.tokenize(sys.argv[2:])\n"
        "z = torch.linspace(-1, 1, input_ids.shape[0] * model.config.latent_size)"
        ".view(input_ids.shape[0], -1)\n"
        # As logits_of computes them: without autograd (on some CPUs the LSTM's forward
        # with autograd differs from the one without in the last bit).
        "with torch.no_grad():\n"
        "    logits = model.eval()(input_ids, attention_mask, z=z).logits\n"
        "assert torch.equal(logits, torch.load(sys.argv[1])), 'logits differ'\n"
        "print('loaded offline')\n"
    )
    # No server at all: the endpoint points at a port nothing listens on.
    environment = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    completed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "expected.pt"), *CORPUS],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "loaded offline" in completed.stdout


# --- model cards ----------------------------------------------------------------------------


def test_card_yaml_holds_the_numbers_vaehub_evaluate_measured(trained_ptb_model, ptb_dir, tmp_path):
    folder = tmp_path / "ptb-model"
    trained_ptb_model.save_pretrained(folder)
    assert (
        main(
            [
                "evaluate",
                str(folder),
                "--data",
                str(ptb_dir),
                "--split",
                "test",
                "--max-sentences",
                "30",
                "--iw-samples",
                "4",
            ]
        )
        == 0
    )
    measured = json.loads((folder / "eval_test.json").read_text())["metrics"]
    card = render_model_card(folder, repo_id="org/ptb-model")
    card.save(tmp_path / "README.md")
    text = (tmp_path / "README.md").read_text()
    front_matter = yaml.safe_load(text.split("---")[1])
    assert front_matter["library_name"] == "vaehub"
    assert front_matter["datasets"] == ["ptb_text_only"]
    (entry,) = front_matter["model-index"]
    results = {m["type"]: m["value"] for r in entry["results"] for m in r["metrics"]}
    assert results == {
        "nll": round(measured["nll"], 4),
        "perplexity": round(measured["ppl"], 4),
        "kl": round(measured["kl"], 4),
        "mutual_information": round(measured["mi"], 4),
        "active_units": measured["active_units"],
    }
    assert {r["dataset"]["split"] for r in entry["results"]} == {"test"}
    loaded = ModelCard.load(tmp_path / "README.md")
    assert {r.metric_type for r in loaded.data.eval_results} == set(results)
    assert "K = 4 samples" in text and f"{measured['nll']:.2f}" in text


def test_card_prints_counts_as_whole_numbers_and_no_negative_zero(tmp_path):
    folder = tmp_path / "model"
    model = make_model()
    # What a Trainer's evaluation logs: counts as floats, a tiny negative MI estimate.
    metrics = {**METRICS, "num_examples": 60.0, "active_units": 0.0, "mi": -0.0004}
    model.evaluation_results["test"]["metrics"] = metrics
    model.save_pretrained(folder)
    card = render_model_card(folder)
    text = str(card)
    assert "(test, 60 sentences)" in text and "60.0" not in text
    assert "| active units | 0 |" in text and "| MI (nats) | 0.00 |" in text
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values["active_units"] == 0 and isinstance(values["active_units"], int)
    assert fixed(-0.0004, 3) == "0.000" and fixed(-0.0006, 3) == "-0.001"  # vaehub evaluate


def test_the_card_lists_the_settings_the_run_used_and_no_others(tmp_path):
    from vaehub.training.arguments import VAETrainingArguments

    def table(folder):
        text = str(render_model_card(folder))
        section = text.split("## Training")[1].split("\n## ")[0]
        return {line.split(" | ")[0].strip("| ") for line in section.splitlines() if "|" in line}

    folder = tmp_path / "model"
    make_model().save_pretrained(folder)
    common = dict(output_dir=str(tmp_path), use_cpu=True, max_steps=100)
    write_training_summary(folder, training_summary(VAETrainingArguments(**common)))
    plain = table(folder)
    assert {"objective", "learning_rate", "max_steps", "beta"} <= plain
    # elbo, β constant: no aggressive loop, no annealing, no free bits; max_steps decides.
    assert not {k for k in plain if k.startswith(("aggressive_", "anneal_", "sa_vae_"))}
    assert "free_bits" not in plain and "num_train_epochs" not in plain

    args = VAETrainingArguments(**common, objective="aggressive", beta_schedule="linear")
    write_training_summary(folder, training_summary(args))
    used = table(folder)
    assert {"aggressive_window", "aggressive_patience", "anneal_beta_start"} <= used
    assert "anneal_cycles" not in used and not {k for k in used if k.startswith("sa_vae_")}

    args = VAETrainingArguments(**{**common, "max_steps": -1}, objective="sa_vae", free_bits=0.5)
    write_training_summary(folder, training_summary(args))
    used = table(folder)
    assert {"sa_vae_steps", "sa_vae_lr", "free_bits", "num_train_epochs"} <= used
    assert not {k for k in used if k.startswith("capacity")}

    args = VAETrainingArguments(**common, objective="capacity", capacity=60.0)
    write_training_summary(folder, training_summary(args))
    used = table(folder)
    assert {"capacity", "capacity_weight"} <= used


def test_a_resumed_runs_time_is_named_as_the_time_after_its_checkpoint(tmp_path):
    from transformers import TrainerState

    from vaehub.training.arguments import VAETrainingArguments

    state = TrainerState(global_step=10)
    state.log_history = [{"train_runtime": 12.5, "step": 10}]
    common = dict(output_dir=str(tmp_path), use_cpu=True)
    fresh = training_summary(VAETrainingArguments(**common), state)
    assert fresh["train_runtime_seconds"] == 12.5
    resumed = training_summary(
        VAETrainingArguments(**common, resume_from_checkpoint=str(tmp_path / "checkpoint-5")),
        state,
    )
    assert "train_runtime_seconds" not in resumed
    assert resumed["train_runtime_seconds_after_resume"] == 12.5


def test_a_refined_models_card_names_its_svi_settings_only_where_they_are_not_kim_et_als(
    tmp_path,
):
    from vaehub.latent import svi

    def how_to_measure(refine_lr, momentum=svi.DEFAULT_MOMENTUM, clip=svi.DEFAULT_MAX_GRAD_NORM):
        folder = tmp_path / f"model-{refine_lr}-{momentum}-{clip}"
        model = make_model()
        metrics = {**METRICS, "refine_steps": 5, "refine_lr": refine_lr,
                   "refine_momentum": momentum, "refine_max_grad_norm": clip}  # fmt: skip
        model.evaluation_results["test"]["metrics"] = metrics
        model.save_pretrained(folder)
        (command,) = re.findall(
            r"`(vaehub evaluate --refine_steps[^`]*)`", str(render_model_card(folder))
        )
        return command

    assert how_to_measure(0.03125) == "vaehub evaluate --refine_steps 5 --refine_lr 0.03125"
    assert how_to_measure(svi.DEFAULT_LEARNING_RATE) == "vaehub evaluate --refine_steps 5"
    assert how_to_measure(1.0, momentum=0.9, clip=1.0) == (
        "vaehub evaluate --refine_steps 5 --refine_momentum 0.9 --refine_max_grad_norm 1"
    )


def test_the_cards_models_without_a_latent_are_the_models_that_say_so():
    from vaehub import LinearVAEModel, PixelCNNModel, TextLMModel

    models = (TextVAEModel, DeltaVAEModel, TextLMModel, PixelCNNModel, LinearVAEModel)
    without = {m.config_class.model_type for m in models if not getattr(m, "has_latent", True)}
    # hub keeps its own list of the models without a latent: the models' own, exactly.
    assert set(NO_LATENT) == without == {"text_lm", "pixelcnn"}


def test_card_advertises_no_pipeline_that_transformers_cannot_build(tmp_path):
    from transformers import pipeline

    folder = tmp_path / "model"
    make_model().save_pretrained(folder)
    card = render_model_card(folder)
    assert card.data.pipeline_tag is None and "pipeline_tag" not in str(card)
    # What a text-generation tag would promise, and why the card does not carry it.
    with pytest.raises(ValueError, match="Unrecognized configuration class"):
        pipeline("text-generation", model=str(folder))


def test_card_usage_snippet_runs(hub, tmp_path):
    model = make_model(seed=4)
    model.push_to_hub("org/snippet")
    card = (hub.repo_path("org/snippet") / "README.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    assert 'AutoModel.from_pretrained("org/snippet")' in snippet
    completed = subprocess.run(
        [sys.executable, "-c", snippet],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "tensor(" in completed.stdout


def test_card_with_missing_results_names_them(tmp_path):
    folder = tmp_path / "model"
    make_model(with_results=False).save_pretrained(folder)
    with pytest.raises(MissingResultsError, match="holds no evaluation results"):
        render_model_card(folder)
    write_results(folder, "test", {"kl": 0.5, "mi": 0.2, "active_units": 1})
    with pytest.raises(
        MissingResultsError, match=r"lack NLL \(nats/sentence\), PPL.*--iw-samples > 0"
    ):
        render_model_card(folder)
    with pytest.raises(MissingResultsError, match="no results for split 'validation'"):
        render_model_card(folder, split="validation")
    assert not (folder / "README.md").exists()


def test_card_says_when_no_latent_is_in_use(tmp_path):
    folder = tmp_path / "model"
    make_model(with_results=False).save_pretrained(folder)
    collapsed = {**METRICS, "kl": 0.01, "mi": 0.004, "active_units": 0}
    write_results(folder, "test", collapsed, iw_samples=500)
    text = str(render_model_card(folder))
    assert "no latent dimension is active and the MI is 0.00 nats" in text
    write_results(folder, "test", METRICS, iw_samples=500)
    assert "no latent dimension is active" not in str(render_model_card(folder))


# --- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("stopped", "failed: ConnectError"),
        (503, "failed: HTTP 503"),
        (401, "failed: HTTP 401"),
        ("silent", "did not answer within 3 s"),
    ],
)
def test_a_failed_push_says_what_failed_and_leaves_the_folder_intact(tmp_path, case, message):
    folder = tmp_path / "model"
    make_model().save_pretrained(folder)
    before = folder_digest(folder)
    server = None
    if case == "stopped":
        endpoint = f"http://127.0.0.1:{free_port()}"
    else:
        server, endpoint = serving(None if case == "silent" else case)
    environment = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1"}
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "vaehub.commands.main",
                "push",
                str(folder),
                "org/failing",
                "--timeout",
                "3",
            ],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
    finally:
        if server is not None:
            server.RequestHandlerClass.release.set()
            server.shutdown()
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert "pushing" in completed.stderr and "org/failing" in completed.stderr
    assert message in completed.stderr, completed.stderr[-2000:]
    assert "is unchanged" in completed.stderr
    assert folder_digest(folder) == before


SILENT_SERVER_SCRIPT = """
import sys, vaehub
from transformers import AutoModel
from vaehub.commands.main import main
sys.path.insert(0, sys.argv[1])
from test_hub import make_model

def attempt(what, call):
    try:
        call()
    except Exception as error:
        print(what, type(error).__name__, str(error).replace(chr(10), " "))
    else:
        print(what, "did not fail")

print("pull", main(["pull", "org/x", "--timeout", "1", "--output-dir", sys.argv[2]]))
vaehub.utils.network.set_hub_timeout(1)
attempt("from_pretrained", lambda: vaehub.TextVAEModel.from_pretrained("org/x"))
attempt("auto", lambda: AutoModel.from_pretrained("org/x"))
attempt("push_to_hub", lambda: make_model().push_to_hub("org/x"))
"""


def test_a_silent_server_is_named_and_nothing_waits_on_it(tmp_path):
    completed, endpoint = run_against_a_silent_server(
        SILENT_SERVER_SCRIPT, str(Path(__file__).parent), str(tmp_path / "x")
    )
    lines = {line.split(" ", 1)[0]: line for line in completed.stdout.splitlines()}
    silent = f"the Hub server {endpoint.removeprefix('http://')} did not answer within 1 s"
    assert f"pulling org/x failed: {silent}" in completed.stderr, completed.stderr[-3000:]
    assert "Nothing local was changed" in completed.stderr and lines["pull"] == "pull 1"
    assert not (tmp_path / "x").exists()
    assert f"'org/x' (revision main): {silent}" in lines["from_pretrained"]
    assert "CheckpointError" in lines["from_pretrained"]
    # AutoModel reads config.json through transformers, whose message names the server.
    assert f"couldn't connect to '{endpoint}'" in lines["auto"]
    assert f"pushing this TextVAEModel to org/x failed: {silent}" in lines["push_to_hub"]
    assert "Nothing local was changed" in lines["push_to_hub"]


def test_a_bad_timeout_in_the_environment_warns_and_does_not_break_the_import():
    environment = {**os.environ, "VAEHUB_HUB_TIMEOUT": "soon"}
    completed = subprocess.run(
        [sys.executable, "-c", "import vaehub; print(vaehub.utils.network.resolve_timeout(None))"],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 1  # resolve_timeout itself refuses it...
    assert "VAEHUB_HUB_TIMEOUT='soon' is not a number" in completed.stderr
    assert "Using 10 s." in completed.stderr  # ...while the import warned and went on


def test_a_cached_model_loads_while_the_server_is_silent(hub, tmp_path):
    model = make_model(seed=4)
    model.push_to_hub("org/cached")
    TextVAEModel.from_pretrained("org/cached")  # populates the cache
    torch.save(logits_of(model), tmp_path / "expected.pt")
    script = (
        "import sys, torch, vaehub\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_hub import logits_of\n"
        "vaehub.utils.network.set_hub_timeout(1)\n"
        "model = vaehub.TextVAEModel.from_pretrained('org/cached')\n"
        "assert torch.equal(logits_of(model), torch.load(sys.argv[2])), 'logits differ'\n"
        "print('loaded from the cache')\n"
    )
    completed, _ = run_against_a_silent_server(
        script, str(Path(__file__).parent), str(tmp_path / "expected.pt")
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "loaded from the cache" in completed.stdout


@pytest.mark.parametrize(
    ("environment", "expected"),
    [({}, 10.0), ({"HF_HUB_DOWNLOAD_TIMEOUT": "7"}, 7.0), ({"VAEHUB_HUB_TIMEOUT": "2.5"}, 2.5)],
)
def test_the_timeout_comes_from_the_flag_then_the_environment(monkeypatch, environment, expected):
    for name in ("VAEHUB_HUB_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert network.resolve_timeout() == expected
    assert network.resolve_timeout(4) == 4.0
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="--timeout must be a positive number"):
            network.resolve_timeout(bad)
    monkeypatch.setenv("VAEHUB_HUB_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="VAEHUB_HUB_TIMEOUT='soon' is not a number"):
        network.resolve_timeout()


def test_pulling_what_does_not_exist_names_it(hub):
    make_model().push_to_hub("org/exists")
    with pytest.raises(
        HubError, match="pulling org/missing failed: the repository org/missing was not found on"
    ):
        pull("org/missing")
    with pytest.raises(HubError, match="pulling org/exists at revision nope failed"):
        pull("org/exists", revision="nope")
    with pytest.raises(CheckpointError, match="the repository org/missing was not found on http"):
        TextVAEModel.from_pretrained("org/missing")
    with pytest.raises(CheckpointError, match="revision nope"):
        TextVAEModel.from_pretrained("org/exists", revision="nope")


def test_pulling_a_repository_that_is_not_a_vaehub_model_says_so(hub):
    hub.add_repository("org/bert-like", {"config.json": json.dumps({"model_type": "bert"})})
    with pytest.raises(
        HubError,
        match="org/bert-like is not a vaehub model: expected a "
        "config.json with model_type 'text_vae'",
    ):
        pull("org/bert-like")
    with pytest.raises(CheckpointError, match="type 'bert', not a vaehub 'text_vae' model"):
        TextVAEModel.from_pretrained("org/bert-like")
