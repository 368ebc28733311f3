"""The checkpoints under model_cards/, served as a Hub: each loads through the Auto classes,
its card is the one its results render, and its card's verification slice, measured again
on the weights, agrees with the card. A card edited by hand fails."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from helpers import SHARED_DATA
from safetensors import safe_open
from transformers import AutoModel

from vaehub.commands.main import main
from vaehub.hub import verification as slices
from vaehub.hub.cards import render_model_card
from vaehub.hub.transfer import push_folder
from vaehub.recipes import release

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"
CHECKPOINTS = sorted(
    path.name for path in MODEL_CARDS.iterdir() if (path / slices.VERIFICATION_FILE).is_file()
)


def test_there_are_checkpoints_to_check():
    assert {"synthetic-vae-elbo", "synthetic-vae-aggressive"} <= set(CHECKPOINTS)


def serve(hub, folder: Path, repo_id: str) -> None:
    # The committed card goes up as it is: what a user pulls is what is checked.
    push_folder(folder, repo_id, card=False)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_checkpoint_loads_from_the_hub_and_its_card_holds(hub, name):
    repo_id = f"vaehub/{name}"
    serve(hub, MODEL_CARDS / name, repo_id)
    model = AutoModel.from_pretrained(repo_id)
    assert model.config.model_type in ("text_vae", "text_lm", "delta_vae", "pixelcnn")
    piece, _ = release.card_slice(release.load_card(repo_id), repo_id)
    # A slice of PTB or MNIST reads the data here, as a user gives it with --data.
    data = None if piece.data in slices.SELF_CONTAINED else str(SHARED_DATA / piece.data)
    checks = release.verify(repo_id, data)
    latent = model.config.model_type in ("text_vae", "delta_vae")
    assert {check.metric for check in checks} >= (
        {"nll", "kl", "mi", "active_units"} if latent else {"nll"}
    )
    failing = [check for check in checks if not check.ok]
    assert not failing, f"{name}: the card differs from its weights: {failing}"


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_card_is_the_one_its_results_render(name):
    folder = MODEL_CARDS / name
    rendered = render_model_card(folder, repo_id=f"vaehub/{name}")
    assert (folder / "README.md").read_text(encoding="utf-8") == str(rendered)


def edit_slice_number(card: Path, metric_type: str, delta: float) -> float:
    """Add `delta` to one number of the card's verification slice; returns the new value."""
    text = card.read_text(encoding="utf-8")
    _, header, body = text.split("---\n", 2)
    data = yaml.safe_load(header)
    results = data["model-index"][0]["results"]
    piece = next(r for r in results if "[:" in r["dataset"]["split"])
    metric = next(m for m in piece["metrics"] if m["type"] == metric_type)
    metric["value"] = round(metric["value"] + delta, 4)
    card.write_text(
        "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---\n" + body,
        encoding="utf-8",
    )
    return metric["value"]


@pytest.mark.parametrize(("metric_type", "delta"), [("kl", 0.05), ("nll", -0.1)])
def test_an_edited_card_fails_verification(hub, tmp_path, capsys, metric_type, delta):
    folder = tmp_path / "edited"
    shutil.copytree(MODEL_CARDS / "synthetic-vae-aggressive", folder)
    edited = edit_slice_number(folder / "README.md", metric_type, delta)
    repo_id = f"vaehub/synthetic-vae-aggressive-edited-{metric_type}"
    serve(hub, folder, repo_id)
    checks = {check.metric: check for check in release.verify(repo_id)}
    key = "nll" if metric_type == "nll" else "kl"
    assert checks[key].card == pytest.approx(edited)
    assert not checks[key].ok
    assert all(check.ok for name, check in checks.items() if name != key)
    assert main(["verify", repo_id]) == 1
    assert "does not match its weights" in capsys.readouterr().err


def test_a_card_without_a_slice_is_refused_with_the_way_to_give_it_one(tmp_path):
    folder = tmp_path / "plain"
    shutil.copytree(MODEL_CARDS / "synthetic-vae-elbo", folder)
    (folder / slices.VERIFICATION_FILE).unlink()
    render_model_card(folder).save(folder / "README.md")
    with pytest.raises(slices.VerificationError, match="vaehub release"):
        release.verify(str(folder))


def decoder_alone(vae_folder: Path, folder: Path) -> str:
    """The decoder alone of a text VAE, sized and tokenized as its (untrained: what the
    decoder reads is the same arithmetic whatever the baseline learnt), saved in `folder`."""
    from vaehub import TextLMConfig, TextLMModel
    from vaehub.models.text.configuration_text_vae import TEXT_DECODER_FIELDS

    vae = AutoModel.from_pretrained(vae_folder)
    torch.manual_seed(0)
    lm = TextLMModel(TextLMConfig(**{k: getattr(vae.config, k) for k in TEXT_DECODER_FIELDS}))
    lm.tokenizer = vae.tokenizer
    lm.save_pretrained(folder)
    return str(folder)


def test_release_measures_the_slice_on_the_stored_weights(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(MODEL_CARDS / "synthetic-vae-elbo", source)
    baseline = decoder_alone(source, tmp_path / "lm")
    folder = release.release(
        str(source), "half", "synthetic", output_dir=str(tmp_path / "out"), first=64,
        iw_samples=10, dtype="bfloat16", baseline=baseline,
    )  # fmt: skip
    piece, metrics = slices.read_verification(folder)
    assert piece == slices.VerificationSlice("synthetic", "validation", 64, iw_samples=10)
    assert metrics["num_examples"] == 64
    again = release.measure(release._load_for_measuring(folder), piece)
    assert again["nll"] == pytest.approx(metrics["nll"], abs=1e-6)
    # Beside the baseline, the slice and the split say what the decoder reads from z, and
    # the card's model-index carries it where verify checks it.
    split_metrics = json.loads((Path(folder) / "eval_validation.json").read_text())["metrics"]
    for measured in (metrics, split_metrics):
        assert measured["nats_read"] == pytest.approx(
            measured["baseline_nll"] - measured["reconstruction"]
        )
    slice_rows = release.card_slice(release.load_card(folder), folder)[1]
    assert {"nats_read", "rate_unread"} <= set(slice_rows)
    # The weights went to disk in bfloat16, and the card's split was measured on them.
    with safe_open(str(Path(folder) / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.bfloat16}
    split = json.loads((Path(folder) / "eval_validation.json").read_text(encoding="utf-8"))
    assert split["stored_dtype"] == "bfloat16"
    results = yaml.safe_load((Path(folder) / "README.md").read_text().split("---\n")[1])
    assert results["model-index"][0]["results"][1]["dataset"]["split"] == "validation[:64]"
    checks = {check.metric: check for check in release.verify(folder)}
    assert checks["nats_read"].ok and all(check.ok for check in checks.values())


def test_the_stored_weights_split_can_be_measured_with_another_k(tmp_path, capfd):
    source = tmp_path / "source"
    shutil.copytree(MODEL_CARDS / "synthetic-vae-elbo", source)
    recorded = json.loads((source / "eval_validation.json").read_text(encoding="utf-8"))
    assert recorded["iw_samples"] != 3
    folder = release.release(
        str(source), "half", "synthetic", output_dir=str(tmp_path / "out"), first=16,
        iw_samples=2, dtype="bfloat16", split_iw_samples=3, show_progress=True,
    )  # fmt: skip
    split = json.loads((Path(folder) / "eval_validation.json").read_text(encoding="utf-8"))
    assert split["iw_samples"] == 3 and split["metrics"]["iw_samples"] == 3
    # The long measurement (the whole split) counts its examples up to the split's size.
    total = split["metrics"]["num_examples"]
    assert f"{total}/{total}" in capfd.readouterr().err
    with pytest.raises(ValueError, match="split_iw_samples sets K"):
        release.release(str(source), "full", "synthetic", output_dir=str(tmp_path / "out"),
                        split_iw_samples=3)  # fmt: skip
    assert not (tmp_path / "out" / "full").exists()


def test_a_refined_model_is_released_and_verified_on_its_refined_posterior(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(MODEL_CARDS / "synthetic-vae-aggressive", source)
    # Its results measured as an SA-VAE's are: on the posterior refined by SVI steps, here
    # with a momentum and clipping that are not Kim et al.'s, which the release must keep.
    assert main(
        ["evaluate", str(source), "--data", "synthetic", "--split", "validation",
         "--max_examples", "64", "--iw-samples", "10", "--refine_steps", "3",
         "--refine_momentum", "0.9", "--refine_max_grad_norm", "0.5", "--no-progress",
         "--overwrite"]
    ) == 0  # fmt: skip
    folder = release.release(
        str(source), "refined", "synthetic", output_dir=str(tmp_path / "out"), first=32,
        iw_samples=10, dtype="bfloat16",
    )  # fmt: skip
    piece, metrics = slices.read_verification(folder)
    assert (piece.refine_steps, piece.refine_momentum, piece.refine_max_grad_norm) == (3, 0.9, 0.5)
    stored = release._load_for_measuring(folder)
    assert metrics["kl"] == pytest.approx(release.measure(stored, piece)["kl"], abs=1e-6)
    unrefined = release.measure(stored, replace(piece, refine_steps=0))
    assert abs(metrics["kl"] - unrefined["kl"]) > 1e-3
    kim_et_als = release.measure(
        stored, replace(piece, refine_momentum=0.5, refine_max_grad_norm=5.0)
    )
    assert abs(metrics["kl"] - kim_et_als["kl"]) > 1e-4
    split = json.loads((Path(folder) / "eval_validation.json").read_text(encoding="utf-8"))
    assert split["metrics"]["refine_steps"] == 3 and split["metrics"]["num_examples"] == 64
    card = (Path(folder) / "README.md").read_text(encoding="utf-8")
    index = yaml.safe_load(card.split("---\n")[1])["model-index"][0]["results"]
    args = index[1]["dataset"]["args"]
    refined = (args["refine_steps"], args["refine_momentum"], args["refine_max_grad_norm"])
    assert refined == (3, 0.9, 0.5)
    assert "refine_lr" not in args  # η is Kim et al.'s: the card leaves it unnamed
    assert "refined by\n3 SVI steps with momentum 0.9, gradients clipped at norm 0.5" in card
    assert "--refine_steps 3 --refine_momentum 0.9 --refine_max_grad_norm 0.5`" in card
    checks = release.verify(folder)
    assert checks and all(check.ok for check in checks)

