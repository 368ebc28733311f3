"""The linear VAE through the command line, on the real Frey Faces: `vaehub train` builds it
from the data, `vaehub evaluate` gives its IW-NLL and exact NLL in nats per example,
`vaehub release` writes a card that `vaehub verify` checks (and that fails when edited),
`vaehub push`/`pull` carry it through the loopback Hub; bad data gets a clear error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA

from vaehub import LinearVAEModel
from vaehub.commands.main import main
from vaehub.data.vectors import read_vector_file

FREY = SHARED_DATA / "frey_faces"
pytestmark = pytest.mark.skipif(
    not (FREY / "freyfaces.npz").is_file(), reason=f"Frey Faces not found in {FREY}"
)
QUICK = ["--report_to", "none", "--use_cpu", "True", "--disable_tqdm", "true",
         "--save_strategy", "no"]  # fmt: skip


def frey_split(split: str) -> torch.Tensor:
    """The split as `vaehub.data.vectors` documents it, computed here from the raw file: the
    faces scaled to [0, 1] and flattened, permuted with seed 0, the first 10% test, the next
    5% validation."""
    with np.load(FREY / "freyfaces.npz") as archive:
        faces = archive["images"].reshape(-1, 560).astype(np.float32) / 255.0
    order = np.random.default_rng(0).permutation(len(faces))
    n_test, n_validation = len(faces) // 10, len(faces) // 20
    rows = {
        "test": order[:n_test],
        "validation": order[n_test : n_test + n_validation],
        "train": order[n_test + n_validation :],
    }[split]
    return torch.from_numpy(faces[np.sort(rows)])


@pytest.fixture(scope="module")
def frey_run(tmp_path_factory) -> Path:
    """A linear VAE trained for 5 steps on Frey Faces by `vaehub train`."""
    out = tmp_path_factory.mktemp("linear") / "frey"
    code = main(
        ["train", "--model_type", "linear_vae", "--dataset", "frey_faces",
         "--data_dir", str(FREY), "--latent_size", "2", "--observation_variance", "0.05",
         "--output_dir", str(out), "--max_steps", "5", "--per_device_train_batch_size", "32",
         "--learning_rate", "1e-3", "--max_eval_examples", "16", "--eval_iw_nll",
         "--iw_samples", "4", *QUICK]
    )  # fmt: skip
    assert code == 0
    return out


def test_train_builds_the_linear_vae_from_the_data_and_records_its_exact_nll(frey_run):
    model = LinearVAEModel.from_pretrained(frey_run).eval()
    config = model.config
    assert (config.input_size, config.latent_size) == (560, 2)  # D from the data
    assert config.observation_variance == 0.05 and config.hidden_sizes == []
    record = json.loads((frey_run / "eval_test.json").read_text())
    metrics = record["metrics"]
    assert record["dataset"]["name"].startswith("Frey Faces") and metrics["num_examples"] == 16
    assert "bits_per_dim" not in metrics  # a density of continuous values: no bits/dim
    # The recorded exact NLL is −log p(x) of the first 16 test faces of the documented split.
    with torch.no_grad():
        exact = -model.log_marginal(frey_split("test")[:16]).double().mean().item()
    assert metrics["exact_nll"] == pytest.approx(exact, rel=1e-5)
    # The IW bound (K = 4) is not far above it: the same model was measured.
    assert abs(metrics["nll"] - metrics["exact_nll"]) < 0.05 * abs(metrics["exact_nll"])
    training = json.loads((frey_run / "training.json").read_text())
    assert training["global_step"] == 5


def test_evaluate_prints_nats_per_example_and_says_why_there_is_no_bits_per_dim(
    frey_run, tmp_path, capsys
):
    output = tmp_path / "eval.json"
    code = main(
        ["evaluate", str(frey_run), "--data", str(FREY), "--split", "validation",
         "--iw-samples", "4", "--max_examples", "20", "--output", str(output)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "NLL (nats/example)" in printed and "exact NLL (nats/example)" in printed
    assert "no bits/dim" in printed and "bits/dim  " not in printed
    shown = float(re.search(r"exact NLL \(nats/example\)\s+(-?[\d.]+)", printed)[1])
    model = LinearVAEModel.from_pretrained(frey_run).eval()
    with torch.no_grad():
        exact = -model.log_marginal(frey_split("validation")[:20]).double().mean().item()
    assert shown == pytest.approx(exact, abs=1e-3)
    assert json.loads(output.read_text())["metrics"]["exact_nll"] == pytest.approx(exact)


def test_release_verify_push_and_pull(frey_run, hub, tmp_path, capsys):
    released = tmp_path / "cards"
    code = main(
        ["release", str(frey_run), "--name", "frey-linear", "--data", str(FREY),
         "--output-dir", str(released), "--examples", "12", "--iw-samples", "4"]
    )  # fmt: skip
    assert code == 0
    folder = released / "frey-linear"
    card = (folder / "README.md").read_text()
    assert "Lucas et al. (2019)" in card and "exact NLL (nats/example)" in card
    assert "bits/dim" not in card.split("## Results")[1].split("|\n\n")[0]  # not in the table
    assert "--data PATH_TO_FREY_FACES" in card
    assert main(["verify", str(folder), "--data", str(FREY)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"exact_nll .* ok", printed) and "every number" in printed

    # Through the loopback Hub: what is pulled is what was released, and verifies.
    assert main(["push", str(folder), "org/frey-linear"]) == 0
    pulled = tmp_path / "pulled"
    assert main(["pull", "org/frey-linear", "--output-dir", str(pulled)]) == 0
    assert "a linear_vae model" in capsys.readouterr().out
    x = frey_split("test")[:4]
    with torch.no_grad():
        assert torch.equal(
            LinearVAEModel.from_pretrained(pulled).log_marginal(x),
            LinearVAEModel.from_pretrained(folder).log_marginal(x),
        )
    assert main(["verify", "org/frey-linear", "--data", str(FREY)]) == 0
    capsys.readouterr()

    # A card whose exact NLL was edited by hand fails, naming it.
    edited = tmp_path / "edited"
    shutil.copytree(folder, edited)
    readme = (edited / "README.md").read_text()
    value = re.findall(r"type: exact_nll\n\s+value: (-?[\d.]+)", readme)[-1]
    (edited / "README.md").write_text(readme.replace(f"value: {value}", "value: 1.5"))
    assert main(["verify", str(edited), "--data", str(FREY)]) == 1
    assert "exact_nll differ" in capsys.readouterr().err


def test_a_vector_file_trains_and_the_flags_reach_the_config(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(60, 7)).astype(np.float32)
    path = tmp_path / "vectors.npy"
    np.save(path, vectors)
    out = tmp_path / "deep"
    code = main(
        ["train", "--model_type", "linear_vae", "--dataset", "vectors", "--train_file",
         str(path), "--latent_size", "2", "--hidden_sizes", "8", "4",
         "--learn_observation_variance", "true", "--observation_variance", "0.5",
         "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "8",
         *QUICK]
    )  # fmt: skip
    assert code == 0
    model = LinearVAEModel.from_pretrained(out)
    assert model.config.input_size == 7 and model.config.hidden_sizes == [8, 4]
    assert model.config.learn_observation_variance and model.log_observation_variance.requires_grad
    # Learned from 0.5: two steps moved it.
    assert model.observation_variance.item() != pytest.approx(0.5, abs=1e-7)
    test = json.loads((out / "eval_test.json").read_text())["metrics"]
    assert test["num_examples"] == 6 and "exact_nll" not in test  # the deep VAE has none


def test_a_vector_archive_with_named_splits_keeps_them(tmp_path):
    path = tmp_path / "splits.npz"
    train, test = np.arange(40.0).reshape(20, 2), np.ones((3, 2))
    np.savez(path, train=train, test=test)
    assert read_vector_file(path, "test").tolist() == test.tolist()
    # Without a validation array, the last 5% of train (at least one row) validates.
    assert read_vector_file(path, "validation").tolist() == [[38.0, 39.0]]
    assert len(read_vector_file(path, "train")) == 19


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dataset", "frey_faces", "--data_dir", "{tmp}/missing"],
         "--data_dir {tmp}/missing is not a folder: give the folder of freyfaces.npz"),
        (["--dataset", "frey_faces"], "--dataset frey_faces needs --data_dir"),
        (["--dataset", "vectors", "--train_file", "{tmp}/one.npy"],
         "has shape (7,): expected (examples, D), one vector per row"),
        (["--dataset", "vectors", "--train_file", "{tmp}/nan.npy"], "NaN or infinite values"),
        (["--dataset", "vectors", "--train_file", "{tmp}/vectors.txt"],
         "the linear VAE reads vectors from a .npy or .npz file"),
        (["--dataset", "vectors"], "--dataset vectors reads a .npy or .npz file"),
        (["--dataset", "frey_faces", "--data_dir", str(FREY), "--embedding_size", "8"],
         "--embedding_size is not a linear_vae setting"),
    ],
)  # fmt: skip
def test_bad_training_data_is_named(tmp_path, capsys, flags, message):
    np.save(tmp_path / "one.npy", np.zeros(7))
    np.save(tmp_path / "nan.npy", np.full((5, 3), np.nan))
    (tmp_path / "vectors.txt").write_text("1 2 3\n")
    flags = [flag.replace("{tmp}", str(tmp_path)) for flag in flags]
    code = main(
        ["train", "--model_type", "linear_vae", *flags, "--output_dir", str(tmp_path / "out"),
         "--max_steps", "1", *QUICK]
    )  # fmt: skip
    assert code == 1
    assert message.replace("{tmp}", str(tmp_path)) in capsys.readouterr().err
    assert not (tmp_path / "out" / "config.json").exists()


def test_evaluating_on_vectors_of_another_size_or_no_data_is_named(frey_run, tmp_path, capsys):
    np.save(tmp_path / "small.npy", np.zeros((10, 7), dtype=np.float32))
    base = ["evaluate", str(frey_run), "--output", str(tmp_path / "e.json")]
    assert main([*base, "--data", str(tmp_path / "small.npy")]) == 1
    assert "holds vectors of 7 values, but the model reads input_size=560" in (
        capsys.readouterr().err
    )
    assert main([*base, "--data", str(tmp_path / "missing")]) == 1
    assert "does not exist: give a Frey Faces or MNIST folder" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path)]) == 1
    assert "holds neither freyfaces.npz" in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()
