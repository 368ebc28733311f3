"""Nothing lost, nothing leaked, nothing hangs: release, pull, evaluate, push and train under
hostile input, full disks, slow or lying servers and concurrent runs (issue 34).

Every case uses real files, real processes and real sockets on 127.0.0.1; a full disk is a
small tmpfs mounted here (skipped, with the reason, where mounting is not allowed).
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from helpers import HUB_PORT
from safetensors.torch import load_file, save_file

from vaehub import hub
from vaehub.commands.main import main
from vaehub.utils import safe_io

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"
SMALL_MODEL = MODEL_CARDS / "synthetic-vae-elbo"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def mount_disk(request, mount_point: Path, size: str) -> Path:
    """A real file system of `size` (a tmpfs) at `mount_point`, unmounted after the test."""
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill here: {done.stderr.strip()}")
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(mount_point)], check=False))
    return mount_point


@pytest.fixture
def small_disk(request, tmp_path):
    """A real 256 KiB file system under tmp_path."""
    return mount_disk(request, tmp_path / "disk", "256k")


def fill(disk: Path) -> None:
    """Write into `disk` until it is full."""
    with open(disk / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC


# --- §1 release --name stays inside --output-dir ----------------------------------------------


@pytest.mark.parametrize("name", [".", "..", "a/b", "<absolute>", "", "../outside", "escape"])
def test_release_refuses_a_name_that_is_not_one_folder_inside_the_output_dir(
    tmp_path, capsys, name
):
    source = tmp_path / "source"
    shutil.copytree(SMALL_MODEL, source)
    output = tmp_path / "area" / "model_cards"
    kept = output / "ptb-vae-elbo"
    kept.mkdir(parents=True)
    (kept / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "area" / "sibling.txt").write_text("keep me", encoding="utf-8")
    # A link inside the output folder that points out of it resolves outside: refused too.
    (output / "escape").symlink_to(tmp_path / "area")
    before = tree(tmp_path / "area")
    if name == "<absolute>":
        name = str(tmp_path / "area" / "absolute")

    code = main(["release", str(source), "--name", name, "--data", "synthetic",
                 "--output-dir", str(output)])  # fmt: skip
    assert code == 1
    error = capsys.readouterr().err
    assert "the release name" in error and "single folder name" in error
    assert tree(tmp_path / "area") == before
    assert sorted(p.name for p in output.iterdir()) == ["escape", "ptb-vae-elbo"]


# --- §1 every results, card and JSON write is whole or not at all -----------------------------

FULL_RECORD = {
    "nll": 95.0,
    "ppl": 110.0,
    "kl": 2.0,
    "mi": 1.0,
    "active_units": 3,
    "num_examples": 8,
}


def test_a_nested_non_finite_metric_is_named_and_the_previous_record_is_kept(tmp_path):
    path = Path(hub.write_results(tmp_path, "test", dict(FULL_RECORD)))
    before = path.read_bytes()
    metrics = {**FULL_RECORD, "kl_per_dim": [0.5, 0.25, 0.0, float("inf")]}
    with pytest.raises(
        ValueError, match=r"the test results hold non-finite values \(kl_per_dim\[3\] = inf\)"
    ):
        hub.write_results(tmp_path, "test", metrics)
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match=r"the diagnosis hold non-finite values \(gaps\.rows\[1\]"):
        safe_io.write_json(
            tmp_path / "d.json", {"gaps": {"rows": [1.0, float("nan")]}}, "the diagnosis"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_test.json"]


def test_a_full_disk_leaves_the_previous_results_card_and_state_intact(small_disk):
    path = Path(hub.write_results(small_disk, "test", dict(FULL_RECORD)))
    card = Path(safe_io.write_text(small_disk / "README.md", "---\nlicense: mit\n---\n# card\n"))
    before = {p: p.read_bytes() for p in (path, card)}
    fill(small_disk)
    many = {**FULL_RECORD, "kl_per_dim": [0.125] * 20000}
    with pytest.raises(safe_io.DiskFullError) as caught:
        hub.write_results(small_disk, "test", many)
    message = str(caught.value)
    assert "the disk is full" in message and str(path) in message
    assert "the previous eval_test.json is intact" in message
    with pytest.raises(safe_io.DiskFullError, match="the previous README.md is intact"):
        safe_io.write_text(card, "# a much longer card\n" * 20000)
    # A library that writes by itself (torch.save) says nothing of the disk: the helper does.
    import torch

    with pytest.raises(safe_io.DiskFullError, match="nothing was written there"):
        safe_io.write_atomically(
            small_disk / "encoder_optimizer.pt", lambda p: torch.save(torch.zeros(100000), p)
        )
    assert {p: p.read_bytes() for p in (path, card)} == before
    assert json.loads(path.read_text(encoding="utf-8"))["metrics"] == FULL_RECORD
    assert sorted(os.listdir(small_disk)) == ["README.md", "eval_test.json", "filler"]


# --- a hostile Hub on loopback: olah behind a proxy that lies or drips -------------------------

HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length", "content-encoding"}


class HostileProxy(BaseHTTPRequestHandler):
    """Forwards every request to the loopback olah, except that the body of
    `model.safetensors` is altered (`lie`: other finite weights of the same size), sent one
    byte every `drip_seconds` (`drip`), or answered with HTTP 500 (`fail`)."""

    mode = "lie"
    drip_seconds = 2.0
    stop = threading.Event()
    protocol_version = "HTTP/1.1"

    def do_HEAD(self):  # noqa: N802 - the stdlib's name
        self._forward(send_body=False)

    def do_GET(self):  # noqa: N802
        self._forward(send_body=True)

    def _forward(self, send_body: bool) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", HUB_PORT, timeout=30)
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("host", "accept-encoding")
        }
        upstream.request(self.command, self.path, headers=headers)
        answer = upstream.getresponse()
        body = answer.read()
        upstream.close()
        weights = "/resolve/" in self.path and self.path.endswith("model.safetensors")
        if weights and self.mode == "fail":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if weights and send_body and answer.status == 200 and self.mode == "lie":
            # The last 64 bytes are tensor data: other finite numbers, the same size.
            body = body[:-64] + torch.full((16,), 0.5).numpy().tobytes()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value.replace(f"127.0.0.1:{HUB_PORT}", self.headers["Host"]))
        length = answer.getheader("Content-Length") if self.command == "HEAD" else len(body)
        self.send_header("Content-Length", str(length or 0))
        self.end_headers()
        if not send_body:
            return
        if weights and self.mode == "drip":
            for index in range(len(body)):
                if self.stop.wait(self.drip_seconds):
                    return
                try:
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                except OSError:  # the client gave up: what the test wants
                    return
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile(hub):
    """Start a proxy in `mode` in front of the loopback Hub; returns its endpoint."""
    servers = []

    def start(mode: str) -> str:
        handler = type("Handler", (HostileProxy,), {"mode": mode, "stop": threading.Event()})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.RequestHandlerClass.stop.set()
        server.shutdown()
        server.server_close()


def run_vaehub(args: list[str], endpoint: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`vaehub ARGS` in a process of its own whose Hub is `endpoint`."""
    environment = {**os.environ, "HF_ENDPOINT": endpoint, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "vaehub.commands.main", *args], capture_output=True, text=True,
        env=environment, timeout=timeout,
    )  # fmt: skip


def damaged_copy(folder: Path, damage: str) -> Path:
    """A copy of the small model with one thing wrong."""
    shutil.copytree(SMALL_MODEL, folder)
    weights = folder / "model.safetensors"
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "NaN weights":
        tensors = load_file(weights)
        first = sorted(tensors)[0]
        tensors[first] = torch.full_like(tensors[first], float("nan"))
        save_file(tensors, weights)
    elif damage == "corrupt tokenizer":
        (folder / "tokenizer.json").write_text('{"version": "1.0", "model": ', encoding="utf-8")
    elif damage == "sizes unlike the config":
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config["latent_size"] += 1
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


# --- §1 pull --force checks everything before it replaces anything ---------------------------


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("truncated weights", "model.safetensors"),
        ("NaN weights", "NaN or infinite"),
        ("corrupt tokenizer", "tokenizer.json"),
        ("sizes unlike the config", "does not match the sizes"),
    ],
)
def test_pull_force_checks_the_download_before_it_replaces_a_working_model(
    hub, tmp_path, capsys, damage, named
):
    from vaehub.hub.transfer import push_folder

    repo_id = f"org/damaged-{damage.replace(' ', '-').lower()}"
    push_folder(damaged_copy(tmp_path / "damaged", damage), repo_id, card=False)
    good = tmp_path / "area" / "good"
    shutil.copytree(SMALL_MODEL, good)
    before = tree(good)
    assert main(["pull", repo_id, "--output-dir", str(good), "--force"]) == 1
    error = capsys.readouterr().err
    assert f"pulling {repo_id} failed" in error and named in error, error
    assert "Nothing local was changed" in error
    assert tree(good) == before
    assert sorted(p.name for p in (tmp_path / "area").iterdir()) == ["good"]  # no staging left


@pytest.mark.slow  # a process of its own, whose Hub is the lying proxy
def test_pull_refuses_a_download_whose_hash_is_not_the_one_the_server_listed(
    hub, hostile, tmp_path
):
    from vaehub.hub.transfer import push_folder

    push_folder(SMALL_MODEL, "org/lied-about", card=False)
    good = tmp_path / "good"
    shutil.copytree(SMALL_MODEL, good)
    (good / "notes.txt").write_text("mine", encoding="utf-8")
    before = tree(good)
    done = run_vaehub(
        ["pull", "org/lied-about", "--output-dir", str(good), "--force"], hostile("lie")
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "model.safetensors does not match the hash the server listed" in done.stderr
    assert tree(good) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


@pytest.mark.parametrize("where", ["cwd", "parent of cwd", "home"])
def test_pull_force_refuses_a_folder_that_holds_the_current_folder_or_home(
    hub, tmp_path, monkeypatch, capsys, where
):
    from vaehub.hub.transfer import push_folder

    push_folder(SMALL_MODEL, "org/plain", card=False)
    work = tmp_path / "project" / "work"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text("mine", encoding="utf-8")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "project"))
    target = {"cwd": ".", "parent of cwd": "..", "home": str(tmp_path / "project")}[where]
    before = tree(tmp_path)
    assert main(["pull", "org/plain", "--output-dir", target, "--force"]) == 1
    error = capsys.readouterr().err
    assert "deleting everything in it" in error and "Give a new or empty folder" in error
    assert tree(tmp_path) == before
    # An empty folder, even the current one, is fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert main(["pull", "org/plain", "--output-dir", ".", "--force"]) == 0
    assert (empty / "model.safetensors").is_file()


# --- §1 evaluate never replaces a released or fuller record silently ---------------------------


def test_evaluate_refuses_to_replace_a_released_record_with_one_of_other_data(tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(SMALL_MODEL, model)
    other = tmp_path / "other.txt"
    other.write_text("the cat sat on the mat\na dog ate the cat\n", encoding="utf-8")
    before = tree(model)
    args = ["evaluate", str(model), "--data", str(other), "--split", "validation"]
    assert main(args) == 1
    error = capsys.readouterr().err
    assert "eval_validation.json is a released result" in error
    assert "--output PATH" in error and "--overwrite" in error
    # Released: even the same data is not measured into it without --overwrite.
    assert main(["evaluate", str(model), "--data", "synthetic", "--split", "validation"]) == 1
    assert "is a released result" in capsys.readouterr().err
    assert tree(model) == before
    # Not released: other data is still not credited with the record's place.
    (model / "verification.json").unlink()
    before = tree(model)
    assert main([*args, "--iw-samples", "2"]) == 1
    error = capsys.readouterr().err
    assert "eval_validation.json holds results measured on He et al. 2019 synthetic" in error
    assert f"this evaluation reads {other}" in error
    assert tree(model) == before
    # Elsewhere, it is written, and the released record stays.
    elsewhere = tmp_path / "other-eval.json"
    assert main([*args, "--iw-samples", "2", "--output", str(elsewhere)]) == 0
    assert json.loads(elsewhere.read_text(encoding="utf-8"))["dataset"]["name"] == "other.txt"
    assert tree(model) == before


def test_evaluate_never_replaces_a_fuller_record_with_a_weaker_one(tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(SMALL_MODEL, model)
    for name in ("verification.json", "eval_validation.json"):  # not released
        (model / name).unlink()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\na dog ate the cat\n" * 6, encoding="utf-8")
    full = ["evaluate", str(model), "--data", str(corpus), "--iw-samples", "4"]
    assert main(full) == 0
    before = tree(model)
    weaker = [*full[:4], "--iw-samples", "0", "--max_examples", "4"]
    for extra in ([], ["--overwrite"]):
        assert main([*weaker, *extra]) == 1
        error = capsys.readouterr().err
        assert "which holds an NLL, with a record without one" in error
        assert "The record was kept" in error
    assert tree(model) == before
    # Fewer examples, or a smaller K: only with --overwrite.
    smaller = [*full[:4], "--iw-samples", "2", "--max_examples", "4"]
    assert main(smaller) == 1
    error = capsys.readouterr().err
    assert "with a smaller one (it covers 4 examples, the record 12; its NLL uses K = 2" in error
    assert tree(model) == before
    # The same data measured as fully replaces it; `vaehub card` renders from it.
    assert main(full) == 0
    assert main(["card", str(model), "--output", str(tmp_path / "card.md")]) == 0


# --- §1 one training run per output folder; a full disk during a checkpoint -------------------

HOLD_THE_LOCK = """
import importlib.util, sys, time
# The lock's own module, without the package (and torch) around it: the holder starts fast.
spec = importlib.util.spec_from_file_location("safe_io", sys.argv[2])
safe_io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(safe_io)
with safe_io.folder_lock(sys.argv[1], "vaehub train --output_dir RUN (the first run)"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_training_run_into_one_folder_is_refused_naming_the_first(tmp_path, capsys):
    run = tmp_path / "run"
    corpus = tmp_path / "train.txt"
    corpus.write_text("the cat sat on the mat\na dog ate the cat\n" * 8, encoding="utf-8")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(run), safe_io.__file__],
        stdout=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip
    try:
        assert first.stdout.readline().strip() == "locked"
        code = main(["train", "--output_dir", str(run), "--dataset", "files",
                     "--train_file", str(corpus), "--max_steps", "1", "--use_cpu", "True",
                     "--report_to", "none", "--save_strategy", "no"])  # fmt: skip
        assert code == 1
        error = capsys.readouterr().err
        assert f"{run} is in use by another run (pid {first.pid} on" in error
        assert "(the first run)" in error and "give another folder" in error
        assert sorted(p.name for p in run.iterdir()) == [".vaehub.lock"]
    finally:
        first.kill()  # SIGKILL: no cleanup, the lock file stays behind
        first.wait()
    # The killed run's lock is stale: the next run takes it over, naming the dead pid.
    with safe_io.folder_lock(run, "next") as stale:
        assert stale["pid"] == first.pid
        with pytest.raises(safe_io.FolderInUseError):  # even within one process
            with safe_io.folder_lock(run, "third"):
                pass
    assert not (run / ".vaehub.lock").exists()


def tiny_trainer(output_dir: Path, callbacks=(), **settings):
    """A VAETrainer of a tiny text VAE on 24 sentences, saving a checkpoint every step."""
    from datasets import Dataset

    from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer
    from vaehub.data.text import TextCollator, tokenize_corpus
    from vaehub.training.arguments import VAETrainingArguments
    from vaehub.training.trainer import VAETrainer

    torch.manual_seed(0)
    sentences = ["the cat sat on the mat", "a dog ate the cat", "the dog sat on a log"] * 8
    tokenizer = build_tokenizer(sentences)
    data = tokenize_corpus(Dataset.from_dict({"text": sentences}), tokenizer, 16)
    model = TextVAEModel(TextVAEConfig(
        vocab_size=len(tokenizer), embedding_size=16, encoder_hidden_size=32,
        decoder_hidden_size=32, latent_size=4, max_sequence_length=16,
    ))  # fmt: skip
    model.tokenizer = tokenizer
    arguments = dict(
        output_dir=str(output_dir), per_device_train_batch_size=8, max_steps=2,
        save_strategy="steps", save_steps=1, use_cpu=True, report_to="none",
        disable_tqdm=True, objective="aggressive", aggressive_max_inner_steps=1,
    )  # fmt: skip
    return VAETrainer(
        model=model, args=VAETrainingArguments(**{**arguments, **settings}),
        train_dataset=data, eval_dataset=data, data_collator=TextCollator(),
        callbacks=list(callbacks),
    )  # fmt: skip


def test_a_full_disk_while_saving_a_checkpoint_names_the_file_and_keeps_the_previous(
    request, tmp_path
):
    from transformers import TrainerCallback

    from vaehub.models.checkpoints import check_training_checkpoint

    disk = mount_disk(request, tmp_path / "disk", "4m")

    class FillTheDisk(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 1:
                fill(disk)

    trainer = tiny_trainer(disk / "run", callbacks=[FillTheDisk()])
    with pytest.raises(safe_io.DiskFullError) as caught:
        trainer.train()
    message = str(caught.value)
    previous = disk / "run" / "checkpoint-1"
    assert (
        f"the disk is full: saving checkpoint {disk / 'run' / 'checkpoint-2'} failed while "
        in message
    )
    assert f"the previous checkpoint {previous} is intact" in message
    assert f"--resume_from_checkpoint {previous}" in message
    assert not (disk / "run" / "checkpoint-2").exists()
    check_training_checkpoint(
        previous, {"vae_trainer_state.json": "json", "encoder_optimizer.pt": "torch"}
    )


# --- §2 push and release never follow a link out of the folder -------------------------------


@pytest.mark.parametrize("command", ["push", "release"])
def test_push_and_release_refuse_a_link_out_of_the_folder_naming_it(hub, tmp_path, capsys, command):
    secret = tmp_path / "secret.txt"
    secret.write_text("hf_the_token_of_someone_else", encoding="utf-8")
    model = tmp_path / "model"
    shutil.copytree(SMALL_MODEL, model)
    (model / "notes.txt").symlink_to("../secret.txt")
    args = {
        "push": ["push", str(model), "org/leaky", "--no-card"],
        "release": ["release", str(model), "--name", "leaky", "--data", "synthetic",
                    "--output-dir", str(tmp_path / "out")],
    }[command]  # fmt: skip
    assert main(args) == 1
    error = capsys.readouterr().err
    assert "holds links that lead out of it: notes.txt -> ../secret.txt" in error
    served = hub.repo_path("org/leaky")
    leaked = [p for p in served.rglob("*") if p.is_file() and b"hf_the_token" in p.read_bytes()]
    assert not leaked
    assert not (tmp_path / "out").exists()


# --- §3 a slow-drip server is given up on; an interrupted pull leaves nothing ----------------


@pytest.mark.slow  # a process of its own (importing torch) and a 3 s stall
def test_pull_gives_up_on_a_server_that_drips_one_byte_every_two_seconds(hub, hostile, tmp_path):
    from vaehub.hub.transfer import push_folder

    push_folder(SMALL_MODEL, "org/drip", card=False)
    start = time.monotonic()
    args = ["pull", "org/drip", "--output-dir", str(tmp_path / "x"), "--timeout", "3"]
    done = run_vaehub(args, hostile("drip"), timeout=90)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "stalled: it sent" in done.stderr and "--timeout SECONDS" in done.stderr
    assert "Nothing local was changed" in done.stderr
    assert time.monotonic() - start < 60
    assert list(tmp_path.iterdir()) == []  # no .x.pull-* staging folder


@pytest.mark.slow  # a process of its own
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_pull_removes_its_staging_folder(hub, hostile, tmp_path, stop):
    from vaehub.hub.transfer import push_folder

    push_folder(SMALL_MODEL, "org/drip-stopped", card=False)
    environment = {**os.environ, "HF_ENDPOINT": hostile("drip"),
                   "PYTHONPATH": os.pathsep.join(sys.path)}  # fmt: skip
    args = ["pull", "org/drip-stopped", "--output-dir", str(tmp_path / "x"), "--timeout", "60"]
    process = subprocess.Popen(
        [sys.executable, "-m", "vaehub.commands.main", *args], env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # Stopped while model.safetensors drips into the staging folder.
        while not list(tmp_path.glob(".x.pull-*/.cache/huggingface/download/*.incomplete")):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        process.send_signal(stop)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert list(tmp_path.iterdir()) == []


# --- §3/§4 a saved generation config is checked on load, as the arguments are ------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("min_length", 1e8, "an integer >= 0"),
        ("min_length", 10**8, "at most the model's max_sequence_length=12"),
        ("num_beams", 0, "an integer >= 1"),
        ("temperature", -1, "a number > 0"),
        ("typical_p", 5, "a number in (0, 1]"),
        ("epsilon_cutoff", -1, "a number in [0, 1)"),
    ],
)
def test_a_bad_saved_generation_config_is_refused_naming_the_file_and_field(
    tmp_path, capsys, field, value, expected
):
    model = tmp_path / "model"
    shutil.copytree(SMALL_MODEL, model)
    path = model / "generation_config.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**saved, field: value}), encoding="utf-8")
    assert main(["generate", str(model), "--num_samples", "2"]) == 1
    error = capsys.readouterr().err
    assert f"{path}: {field}={value!r} is not valid: expected {expected}" in error, error


def test_typical_p_and_epsilon_cutoff_arguments_are_checked():
    from vaehub.models.text.lstm_decoder import check_generation_options

    for options in ({"typical_p": 5}, {"epsilon_cutoff": -1}, {"eta_cutoff": 1.5}):
        with pytest.raises(ValueError, match="is not valid"):
            check_generation_options(options)


# --- §3 K is bounded; a card cannot choose unbounded work ------------------------------------


def test_evaluate_refuses_an_unbounded_number_of_importance_samples(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\n", encoding="utf-8")
    args = ["evaluate", str(SMALL_MODEL), "--data", str(corpus), "--iw-samples", "10000000",
            "--output", str(tmp_path / "out.json")]  # fmt: skip
    start = time.monotonic()
    assert main(args) == 1
    error = capsys.readouterr().err
    assert "iw_samples=10,000,000 is above the limit of 50,000" in error
    assert time.monotonic() - start < 30
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(("metric", "value"), [("iw_samples", 10**7), ("refine_steps", 10**6)])
def test_verify_refuses_a_card_that_asks_for_unbounded_work(tmp_path, capsys, metric, value):
    import yaml

    folder = tmp_path / "card"
    shutil.copytree(SMALL_MODEL, folder)
    card = folder / "README.md"
    _, header, body = card.read_text(encoding="utf-8").split("---\n", 2)
    data = yaml.safe_load(header)
    for result in data["model-index"][0]["results"]:
        if "[:" in result["dataset"]["split"]:
            result["dataset"]["args"][metric] = value
    card.write_text("---\n" + yaml.safe_dump(data, sort_keys=False) + "---\n" + body, "utf-8")
    start = time.monotonic()
    assert main(["verify", str(folder)]) == 1
    error = capsys.readouterr().err
    assert f"the verification slice's {metric}={value:,} is outside" in error
    assert "unbounded work" in error
    assert time.monotonic() - start < 30


# --- §3 one allocation of gigabytes is refused or batched -------------------------------------


@pytest.fixture(scope="module")
def text_vae():
    from vaehub import TextVAEModel

    return TextVAEModel.from_pretrained(SMALL_MODEL).eval()


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda m: m.generate_sentences(num_samples=10**7), "num_samples=10,000,000"),
        (lambda m: m.interpolate("a b", "c d", steps=10**6), "steps=1,000,000"),
        (lambda m: m.generate(z=torch.zeros(10**5, m.config.latent_size)), "z.shape[0]=100,000"),
    ],
)
def test_decoding_more_than_fits_at_once_is_refused_with_the_size_and_limit(text_vae, call, named):
    start = time.monotonic()
    with pytest.raises(ValueError, match="the limit is 4,096") as caught:
        call(text_vae)
    assert named in str(caught.value) and "in batches of at most 4,096" in str(caught.value)
    assert time.monotonic() - start < 5


def test_image_generate_refuses_more_than_fits_at_once():
    from vaehub import DeltaVAEConfig, DeltaVAEModel

    model = DeltaVAEModel(DeltaVAEConfig(image_size=8)).eval()
    with pytest.raises(ValueError, match=r"num_samples=10,000,000 .* the limit is 4,096"):
        model.generate(num_samples=10**7)


def test_encode_of_many_sentences_runs_in_chunks_with_the_same_result(text_vae):
    from vaehub.models.modeling_utils import ENCODED_AT_ONCE

    words = list(text_vae.tokenizer.get_vocab())[5:25]
    sentences = [" ".join(words[i % 7 : i % 7 + 3 + i % 5]) for i in range(2 * ENCODED_AT_ONCE + 7)]
    seen = []
    hook = text_vae.encoder.register_forward_hook(lambda m, a, out: seen.append(a[0].shape[0]))
    try:
        with torch.no_grad():
            whole = text_vae.encode(sentences).mean
            first = text_vae.encode(sentences[:3]).mean
    finally:
        hook.remove()
    assert seen[:3] == [ENCODED_AT_ONCE, ENCODED_AT_ONCE, 7]
    assert whole.shape == (len(sentences), text_vae.config.latent_size)
    assert torch.allclose(whole[:3], first, atol=1e-6)


# --- §4 training settings that would silently do nothing ---------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--free_bits", "nan"], "free_bits=nan is not valid: expected a finite"),
        (["--objective", "free_bits", "--free_bits", "inf"], "free_bits=inf is not valid"),
        (["--max_steps", "0", "--num_train_epochs", "0"], "ask for no training at all"),
        (["--learning_rate", "nan"], "learning_rate=nan is not valid"),
    ],
)
def test_training_settings_that_would_do_nothing_are_refused(tmp_path, capsys, flags, message):
    corpus = tmp_path / "train.txt"
    corpus.write_text("the cat sat on the mat\n" * 4, encoding="utf-8")
    args = ["train", "--output_dir", str(tmp_path / "run"), "--dataset", "files",
            "--train_file", str(corpus), "--use_cpu", "True", "--report_to", "none",
            *flags]  # fmt: skip
    assert main(args) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_nan_or_huge_latents_are_refused_where_they_would_score_or_decode_silently(text_vae):
    input_ids, attention_mask = text_vae.tokenize(["a b c"])
    z = torch.full((1, text_vae.config.latent_size), float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite"):
        text_vae.log_likelihood(input_ids, attention_mask, z)
    huge = torch.full((1, text_vae.config.latent_size), 1e30)
    with pytest.raises(ValueError, match="magnitude 1e\\+30, beyond 10000"):
        text_vae.generate_sentences(huge)


# --- §5 resuming: errors that name the file, the folder and the fix ----------------------------


def test_resume_names_a_missing_folder_a_pickled_state_and_takes_true_as_true(tmp_path):
    from vaehub import CheckpointError

    run = tmp_path / "run"
    tiny_trainer(run, max_steps=3).train()
    last, previous = run / "checkpoint-3", run / "checkpoint-2"
    # `--resume_from_checkpoint True` arrives as the string "True": it means the last one.
    tiny_trainer(run, max_steps=3).train(resume_from_checkpoint="True")
    with pytest.raises(CheckpointError) as caught:
        tiny_trainer(run, max_steps=3).train(resume_from_checkpoint=str(run / "checkpoint-9"))
    assert "checkpoint-9: there is no such folder" in str(caught.value)
    assert f"The newest complete checkpoint in {run} is {last}" in str(caught.value)
    for filename in ("rng_state.pth", "scheduler.pt"):
        original = (last / filename).read_bytes()
        torch.save({"state": open}, last / filename)  # a pickled function
        with pytest.raises(CheckpointError) as caught:
            tiny_trainer(run, max_steps=3).train(resume_from_checkpoint="True")
        message = str(caught.value)
        assert f"{filename} holds a pickled Python object (io.open)" in message
        assert f"--resume_from_checkpoint {previous}" in message
        assert "weights_only" not in message
        (last / filename).write_bytes(original)


# --- §4/§5 data: unknown words are counted; bad files are named -------------------------------


def test_a_text_of_unknown_words_is_warned_about_and_its_unk_fraction_recorded(tmp_path):
    corpus = tmp_path / "unknown.txt"
    corpus.write_text("zyx wvu tsr qpo\nnml kji hgf\n" * 4, encoding="utf-8")
    output = tmp_path / "eval.json"
    args = ["evaluate", str(SMALL_MODEL), "--data", str(corpus), "--iw-samples", "2",
            "--output", str(output)]  # fmt: skip
    with pytest.warns(UserWarning, match=r"of the tokens of .*unknown.txt are <unk>"):
        assert main(args) == 0
    record = json.loads(output.read_text(encoding="utf-8"))
    # 7 words and 2 </s> per two sentences: 7 of 9 scored tokens are <unk>.
    assert record["unk_fraction"] == pytest.approx(7 / 9)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no sentences (it is empty or blank)"),
        (b"\n  \n", "holds no sentences"),
        ("the cat\n".encode("utf-16"), "is UTF-16 text; vaehub reads UTF-8"),
        (b"the cat\ncaf\xe9 au lait\n", "is not UTF-8 text: byte 11 (line 2)"),
    ],
)
def test_a_training_file_that_is_empty_or_not_utf8_is_named(tmp_path, capsys, content, message):
    corpus = tmp_path / "train.txt"
    corpus.write_bytes(content)
    good = tmp_path / "valid.txt"
    good.write_text("the cat sat\n", encoding="utf-8")
    args = ["train", "--output_dir", str(tmp_path / "run"), "--dataset", "files",
            "--train_file", str(corpus), "--validation_file", str(good), "--use_cpu", "True",
            "--report_to", "none", "--max_steps", "1"]  # fmt: skip
    assert main(args) == 1
    error = capsys.readouterr().err
    assert f"the train file {corpus} {message}" in error, error


def test_evaluate_with_max_examples_0_is_refused_by_name(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat\n", encoding="utf-8")
    args = ["evaluate", str(SMALL_MODEL), "--data", str(corpus), "--max_examples", "0",
            "--output", str(tmp_path / "e.json")]  # fmt: skip
    assert main(args) == 1
    assert "--max_examples 0 is not valid: expected an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("bad: [unclosed", "not valid YAML (line 2"),
        ("bad: !!python/object/apply:os.system ['touch PWNED']", "python/object/apply:os.system"),
    ],
)
def test_verify_names_a_card_whose_metadata_is_not_yaml(tmp_path, capsys, line, problem):
    folder = tmp_path / "card"
    shutil.copytree(SMALL_MODEL, folder)
    card = folder / "README.md"
    card.write_text(card.read_text(encoding="utf-8").replace("---\n", f"---\n{line}\n", 1), "utf-8")
    assert main(["verify", str(folder)]) == 1
    error = capsys.readouterr().err
    assert f"the card of {folder} ({card}) has metadata that is not valid YAML" in error
    assert problem in error and "Traceback" not in error
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


@pytest.mark.slow  # a process of its own, whose Hub is the lying proxy
def test_from_pretrained_refuses_weights_whose_hash_is_not_the_one_the_server_listed(
    hub, hostile, tmp_path
):
    from vaehub.hub.transfer import push_folder

    push_folder(SMALL_MODEL, "org/lied-about-again", card=False)
    environment = {**os.environ, "HF_ENDPOINT": hostile("lie"),
                   "HF_HUB_CACHE": str(tmp_path / "cache"),
                   "PYTHONPATH": os.pathsep.join(sys.path)}  # fmt: skip
    script = "from vaehub import TextVAEModel; TextVAEModel.from_pretrained('org/lied-about-again')"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        "CheckpointError: model.safetensors of 'org/lied-about-again' does not match the hash"
        in (done.stderr)
    )
    weights = [p for p in (tmp_path / "cache").rglob("blobs/*") if p.stat().st_size > 10000]
    assert not weights  # the altered file was removed from the cache


@pytest.mark.slow  # a process of its own
def test_a_server_error_on_the_weights_is_named_as_the_servers(hub, hostile, tmp_path):
    from vaehub.hub.transfer import push_folder

    push_folder(SMALL_MODEL, "org/failing", card=False)
    environment = {**os.environ, "HF_ENDPOINT": hostile("fail"),
                   "HF_HUB_CACHE": str(tmp_path / "cache"),
                   "PYTHONPATH": os.pathsep.join(sys.path)}  # fmt: skip
    script = "from vaehub import TextVAEModel; TextVAEModel.from_pretrained('org/failing')"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment,
        timeout=120,
    )  # fmt: skip
    last = done.stderr.strip().splitlines()[-1]
    assert "CheckpointError: could not get model.safetensors of 'org/failing'" in last
    assert "answered HTTP 500 (a failure on the server's side, not of your connection)" in last
    assert "internet connection" not in last
    assert time.monotonic() - start < 30  # not half a minute of retries on top of the start


def test_a_tokenizer_whose_words_were_shuffled_is_refused_on_load(text_vae, tmp_path):
    from vaehub import CheckpointError, TextVAEModel

    folder = tmp_path / "model"
    text_vae.save_pretrained(folder)
    again = TextVAEModel.from_pretrained(folder)  # as saved: loads
    assert again.tokenizer.get_vocab() == text_vae.tokenizer.get_vocab()
    path = folder / "tokenizer.json"
    tokenizer = json.loads(path.read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    words = sorted(word for word, index in vocab.items() if index > 10)[:6]
    ids = [vocab[word] for word in words]
    for word, index in zip(words, ids[1:] + ids[:1], strict=True):  # the same words, other ids
        vocab[word] = index
    path.write_text(json.dumps(tokenizer), encoding="utf-8")
    with pytest.raises(CheckpointError, match="is not the one the model was saved with"):
        TextVAEModel.from_pretrained(folder)


def test_diagnose_refuses_an_unbounded_k_for_the_gaps(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\n", encoding="utf-8")
    args = ["diagnose", str(SMALL_MODEL), "--data", str(corpus), "--gap_iw_samples", "10000000",
            "--output_dir", str(tmp_path / "report")]  # fmt: skip
    assert main(args) == 1
    assert "gap_iw_samples=10,000,000 is above the limit" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


# -- a path that does not exist is named as one -----------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["card", "{missing}"],
        ["verify", "{missing}"],
        ["push", "{missing}", "org/x"],
        ["evaluate", "{missing}", "--data", "synthetic"],
        ["generate", "{missing}"],
    ],
)
def test_a_missing_folder_is_named_as_missing(tmp_path, capsys, command):
    missing = str(tmp_path / "no" / "such-model")
    assert main([part.format(missing=missing) for part in command]) == 1
    error = capsys.readouterr().err
    assert f"{missing} is not a folder" in error, error
    assert "holds no" not in error and "Repo id must be" not in error


def test_a_mistyped_relative_folder_is_not_taken_for_a_hub_id_silently(
    hub, tmp_path, monkeypatch, capsys
):
    from vaehub.models.auto import load_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "model_cards").mkdir()
    from vaehub.models.checkpoints import CheckpointError

    with pytest.raises(CheckpointError) as raised:
        load_model("model_cards/ptb-typo")  # a valid Hub id as well, served nowhere
    message = str(raised.value)
    assert "could not get config.json of 'model_cards/ptb-typo'" in message
    assert "there is no folder model_cards/ptb-typo here either" in message


def test_a_staged_folder_replaces_its_target_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="half way"):
        with safe_io.staged_folder(target, prefix=".model-") as staging:
            (Path(staging) / "new.txt").write_text("new")
            raise RuntimeError("half way")
    assert tree(target) == {"old.txt": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left behind
    with safe_io.staged_folder(target, prefix=".model-") as staging:
        (Path(staging) / "new.txt").write_text("new")
    assert tree(target) == {"new.txt": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_killed_release_leaves_no_staging_folder_and_the_earlier_checkpoint(tmp_path):
    """SIGTERM (`kill`, a scheduler's stop) mid-release cleans up as Ctrl-C does."""
    source, out = tmp_path / "source", tmp_path / "out"
    shutil.copytree(MODEL_CARDS / "synthetic-vae-elbo", source)
    (out / "half").mkdir(parents=True)
    (out / "half" / "README.md").write_text("earlier")
    command = [
        sys.executable, "-m", "vaehub", "release", str(source), "--name", "half",
        "--data", "synthetic", "--output-dir", str(out), "--dtype", "bfloat16",
        "--split-iw-samples", "20000", "--no-progress",
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".half-*/model.safetensors")):  # measuring the stored weights
        assert process.poll() is None, process.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "the release never wrote its staging folder"
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert sorted(p.name for p in out.iterdir()) == ["half"]
    assert tree(out / "half") == {"README.md": b"earlier"}
