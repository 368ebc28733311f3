"""What several test files share, in one place: free loopback ports, the shared data
folder, and the small text VAE config the unit tests build.

Nothing here imports vaehub, transformers or huggingface_hub at import time: `conftest.py`
takes `HUB_PORT` from here before it points huggingface_hub at the loopback Hub.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The port of the tests' loopback Hub (see conftest.py and hub_server.py).
HUB_PORT = free_port()

SHARED_DATA = Path(
    os.environ.get("VAEHUB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
PTB_DIR = SHARED_DATA / "ptb"


def small_config(vocab_size: int, **overrides: Any) -> Any:
    """A `TextVAEConfig` small enough for a unit test; `overrides` replace its fields."""
    from vaehub import TextVAEConfig

    values = dict(
        vocab_size=vocab_size,
        embedding_size=32,
        encoder_hidden_size=48,
        decoder_hidden_size=64,
        latent_size=8,
        max_sequence_length=64,
    )
    return TextVAEConfig(**{**values, **overrides})
