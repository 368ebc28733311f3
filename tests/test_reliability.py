"""Nothing lost, nothing leaked, nothing hangs: release, pull, evaluate, push and train under
hostile input, full disks, slow or lying servers and concurrent runs (issue 34).

Every case uses real files, real processes and real sockets on 127.0.0.1; a full disk is a
small tmpfs mounted here (skipped, with the reason, where mounting is not allowed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
