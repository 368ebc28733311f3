"""What several test files share, in one place: free loopback ports, the shared data
folder, the small text VAE config the unit tests build, and Hub servers that fail on
purpose (one answering with an error status, one never answering).

Nothing here imports vaehub, transformers or huggingface_hub at import time: `conftest.py`
takes `HUB_PORT` from here before it points huggingface_hub at the loopback Hub.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
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


class _Answer(BaseHTTPRequestHandler):
    status = 503
    release = threading.Event()  # set when the test is over, so the server can stop

    def _answer(self):
        if self.status is None:  # never answer: the client must time out
            self.release.wait(30)
            return
        body = json.dumps({"error": "test server"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_PUT = _answer

    def log_message(self, *args):
        pass


def serving(status: int | None) -> tuple[HTTPServer, str]:
    handler = type("Handler", (_Answer,), {"status": status, "release": threading.Event()})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def fresh_python(*args: str) -> str:
    """`python *args` in a new process (what is imported starts from nothing); it must
    succeed, and its standard output is returned."""
    completed = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def run_against_a_silent_server(*args: str) -> tuple[subprocess.CompletedProcess, str]:
    """`python -c *args` in a process whose Hub is a server that never answers; returns
    what it did and the server's endpoint."""
    server, endpoint = serving(None)
    environment = {**os.environ, "HF_ENDPOINT": endpoint}
    try:
        completed = subprocess.run(
            [sys.executable, "-c", *args],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
    finally:
        server.RequestHandlerClass.release.set()
        server.shutdown()
    return completed, endpoint
