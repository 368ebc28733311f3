"""Shared fixtures: the real PTB data beside the project, and a text VAE trained briefly on
a slice of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from helpers import HUB_PORT, PTB_DIR, small_config

# huggingface_hub reads its endpoint and cache once, when it is imported: point them at the
# loopback Hub server (started only by the tests that need it) before anything imports it.
HUB_ROOT = Path(tempfile.mkdtemp(prefix="vaehub-hub-"))
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"
os.environ["HF_HUB_CACHE"] = str(HUB_ROOT / "cache")
os.environ["HF_TOKEN"] = "hf_local_test_token"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# The Xet upload pipeline talks to storage olah does not have; uploads take the
# single-commit path (`create_commit`) instead.
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.pop("HF_HUB_OFFLINE", None)

import pytest  # noqa: E402
import torch  # noqa: E402
from hub_server import HubServer  # noqa: E402

from vaehub import TextVAEModel, build_tokenizer  # noqa: E402
from vaehub.data.batching import length_bucketed_batches  # noqa: E402
from vaehub.data.text import TextCollator, load_text_corpus, tokenize_corpus  # noqa: E402


@pytest.fixture(scope="session")
def ptb_dir() -> Path:
    if not (PTB_DIR / "ptb.train.txt").is_file():
        pytest.skip(f"PTB not found at {PTB_DIR}; set VAEHUB_SHARED_DATA to the data folder")
    return PTB_DIR


@pytest.fixture(scope="session")
def ptb_slice(ptb_dir, tmp_path_factory) -> dict:
    """The first 2000 PTB training sentences and 200 validation sentences, tokenized."""
    folder = tmp_path_factory.mktemp("ptb_slice")
    for split, count in (("train", 2000), ("valid", 200)):
        with open(ptb_dir / f"ptb.{split}.txt", encoding="utf-8") as source:
            lines = [next(source) for _ in range(count)]
        (folder / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
    corpus = load_text_corpus(
        {"train": str(folder / "train.txt"), "validation": str(folder / "valid.txt")}
    )
    tokenizer = build_tokenizer(corpus["train"]["text"], vocab_size=1500)
    data = tokenize_corpus(corpus, tokenizer, max_length=64)
    return {"corpus": corpus, "tokenizer": tokenizer, "data": data}




@pytest.fixture(scope="session")
def trained_ptb_model(ptb_slice) -> TextVAEModel:
    """A small text VAE trained for 5 epochs on the PTB slice as a noisy autoencoder
    (β = 0): a weighted-down KL term collapses this briefly-trained model, and the
    generation tests need one whose z carries information."""
    torch.manual_seed(0)
    tokenizer, train = ptb_slice["tokenizer"], ptb_slice["data"]["train"]
    model = TextVAEModel(
        small_config(
            len(tokenizer),
            decoder_embedding_dropout=0.0,
            decoder_output_dropout=0.0,
            init_range=0.1,
        )
    )
    model.tokenizer = tokenizer
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    collate = TextCollator()
    model.train()
    for epoch in range(5):
        for indices in length_bucketed_batches(train["length"], 32, shuffle=True, seed=epoch):
            outputs = model(**collate(train.select(indices)))
            loss = outputs.reconstruction_nll.mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def hub_server():
    """A real Hub-API server (olah) on loopback, serving git repositories from a folder."""
    server = HubServer(HUB_ROOT, HUB_PORT)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hub(hub_server, monkeypatch):
    """The loopback Hub, with uploads written as git commits into the repositories it serves.

    olah takes no uploads, so `HfApi.create_repo` and `HfApi.create_commit` — the two calls
    that write on the real Hub — become git operations on the served folder, and the
    server-side check of a card's YAML (`RepoCard.validate`, and `HfApi._validate_yaml`
    that `upload_folder` uses) is skipped; every other call, and every download, goes to
    the server over HTTP.
    """
    from huggingface_hub import HfApi, RepoCard

    monkeypatch.setattr(HfApi, "create_repo", hub_server.create_repo)
    monkeypatch.setattr(HfApi, "create_commit", hub_server.create_commit)
    monkeypatch.setattr(RepoCard, "validate", lambda self, repo_type=None: None)
    monkeypatch.setattr(HfApi, "_validate_yaml", lambda self, content, **kwargs: None)
    return hub_server
