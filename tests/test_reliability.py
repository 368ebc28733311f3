"""Nothing lost, nothing leaked, nothing hangs: release, pull, evaluate, push and train under
hostile input, full disks, slow or lying servers and concurrent runs (issue 34).

Every case uses real files, real processes and real sockets on 127.0.0.1; a full disk is a
small tmpfs mounted here (skipped, with the reason, where mounting is not allowed).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vaehub import hub, safe_io
from vaehub.cli import main

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"
SMALL_MODEL = MODEL_CARDS / "synthetic-vae-elbo"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB file system (tmpfs) under tmp_path, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill here: {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


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
    with pytest.raises(ValueError, match=r"metrics\.kl_per_dim\[3\] = inf"):
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
