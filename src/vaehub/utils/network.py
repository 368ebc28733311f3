"""One timeout for every request vaehub makes to a Hub server, and an error that says which
server did not answer.

huggingface_hub's shared HTTP client waits forever by default: most of its API calls pass
no timeout, so a server that accepts the connection and never answers hangs `pull`,
`from_pretrained` and `push_to_hub` with no output. vaehub installs a client whose
transport caps every request's connect, read, write and pool timeouts at one limit:

- `--timeout SECONDS` on the commands that talk to a Hub, else
- the environment variable `VAEHUB_HUB_TIMEOUT`, else
- huggingface_hub's own `HF_HUB_DOWNLOAD_TIMEOUT`, else 10 seconds.

The limit also bounds a whole transfer's stalls, not only each read: a response body must
bring at least `MIN_PROGRESS_BYTES` in every `timeout` seconds, so a server that drips one
byte every two seconds (each read answered in time) is given up on too (`ServerTooSlow`).
`cancel_transfers()` stops the transfers in flight at their next chunk (an interrupted
pull, whose download threads would otherwise run on).

A request that runs out of time raises `ServerDidNotAnswer`, a `httpx2.ReadTimeout`, so
huggingface_hub still falls back to files already in the cache; its message names the
server and the limit. Once a server has not answered, further requests to it in the next
`QUIET_PERIOD` seconds fail at once (`ServerStillSilent`) instead of waiting out the limit
again in each of huggingface_hub's retries. A client factory set by the user
(`huggingface_hub.set_client_factory`) is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
from huggingface_hub import constants
from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError
from huggingface_hub.utils import _http as hf_http

DEFAULT_TIMEOUT = 10.0
ENVIRONMENT_VARIABLE = "VAEHUB_HUB_TIMEOUT"
QUIET_PERIOD = 60.0  # seconds a silent server is not asked again
# A transfer that brings less than this in a whole `timeout` window has stalled.
MIN_PROGRESS_BYTES = 1024
_CANCELLED = threading.Event()


class ServerDidNotAnswer(httpx2.ReadTimeout):
    """A Hub server accepted the connection (or not) but did not answer within the limit."""

    def __init__(self, server: str, timeout: float, request: httpx2.Request) -> None:
        self.server = server
        self.timeout = timeout
        super().__init__(
            f"the Hub server {server} did not answer within {timeout:g} s (allow more with "
            f"--timeout SECONDS on the command line or the environment variable "
            f"{ENVIRONMENT_VARIABLE})",
            request=request,
        )


class ServerTooSlow(ServerDidNotAnswer):
    """A Hub server answered, but its response body stalled: less than
    `MIN_PROGRESS_BYTES` arrived in `timeout` seconds."""

    def __init__(self, server: str, timeout: float, received: int, request: httpx2.Request):
        self.server = server
        self.timeout = timeout
        httpx2.ReadTimeout.__init__(
            self,
            f"the Hub server {server} stalled: it sent {received} bytes in {timeout:g} s, "
            f"less than {MIN_PROGRESS_BYTES} (allow more time with --timeout SECONDS on the "
            f"command line or the environment variable {ENVIRONMENT_VARIABLE})",
            request=request,
        )


class ServerFailing(OfflineModeIsEnabled):
    """A request refused without asking: the server answered it with an HTTP 5xx twice in
    a row a moment ago. Not an HTTP error on purpose, as `ServerStillSilent`: huggingface_hub
    would otherwise retry it for half a minute, then blame the user's connection."""

    def __init__(self, server: str, url: str, status: int) -> None:
        self.server, self.status = server, status
        super().__init__(
            f"the Hub server {server} answered HTTP {status} (a failure on the server's side, "
            f"not of your connection) for {url}, twice; try again later"
        )


class TransferCancelled(RuntimeError):
    """A transfer stopped by `cancel_transfers()` (the command was interrupted)."""


def cancel_transfers() -> None:
    """Stop every transfer of this process at its next chunk, and refuse new requests,
    until `allow_transfers()`."""
    _CANCELLED.set()


def allow_transfers() -> None:
    """Undo `cancel_transfers()`."""
    _CANCELLED.clear()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM cancel the transfers in flight before raising
    KeyboardInterrupt.

    huggingface_hub downloads in a thread pool, and the pool waits for its threads before
    the interrupt reaches the caller: without the cancel, a stalled download would hold the
    command (and its staging folder) until its own timeout.
    """
    allow_transfers()

    def interrupt(signum: int, frame: Any) -> None:
        cancel_transfers()
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class _PacedStream(httpx2.SyncByteStream):
    """A response body that must keep coming: `MIN_PROGRESS_BYTES` per `timeout` window."""

    def __init__(self, stream: Any, transport: _CappedTransport, server: str, request: Any):
        self._stream, self._transport = stream, transport
        self._server, self._request = server, request

    def __iter__(self):
        timeout = self._transport.timeout
        window_start, received = time.monotonic(), 0
        for chunk in self._stream:
            if _CANCELLED.is_set():
                raise TransferCancelled(f"the transfer from {self._server} was cancelled")
            received += len(chunk)
            now = time.monotonic()
            if now - window_start >= timeout:
                if received < MIN_PROGRESS_BYTES:
                    slow = ServerTooSlow(self._server, timeout, received, self._request)
                    self._transport.remember_silent(self._server, slow)
                    raise slow
                window_start, received = now, 0
            yield chunk

    def close(self) -> None:
        self._stream.close()


class ServerStillSilent(OfflineModeIsEnabled):
    """A request to a server that did not answer a moment ago, refused without asking.

    Not a timeout or network error on purpose: huggingface_hub retries those with pauses
    of up to 8 s, while it treats this kind like a missing connection — it still falls
    back to the cache, but without waiting.
    """

    def __init__(self, first: ServerDidNotAnswer) -> None:
        self.server = first.server
        self.timeout = first.timeout
        super().__init__(str(first))


def resolve_timeout(timeout: float | None = None) -> float:
    """The limit in seconds: `timeout` if given, else the environment's, else the default."""
    if timeout is None:
        for name in (ENVIRONMENT_VARIABLE, "HF_HUB_DOWNLOAD_TIMEOUT"):
            value = os.environ.get(name)
            if value:
                try:
                    timeout = float(value)
                except ValueError:
                    raise ValueError(
                        f"{name}={value!r} is not a number of seconds; set it to e.g. 30."
                    ) from None
                source = name
                break
        else:
            return DEFAULT_TIMEOUT
    else:
        source = "--timeout"
    if not timeout > 0 or timeout == float("inf"):
        raise ValueError(f"{source} must be a positive number of seconds, got {timeout!r}.")
    return float(timeout)


class _CappedTransport(httpx2.HTTPTransport):
    """Caps each request's timeouts and remembers servers that did not answer."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        # server -> (until when it is not asked again, the error it gave)
        self._silent_until: dict[str, tuple[float, ServerDidNotAnswer]] = {}
        # url -> (until when, its last 5xx status, how many 5xx in a row)
        self._failing: dict[str, tuple[float, int, int]] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        server = request.url.netloc.decode("ascii", "replace")
        with self._lock:
            until, first = self._silent_until.get(server, (0.0, None))
            silent = until > time.monotonic()
        if _CANCELLED.is_set():
            raise TransferCancelled(f"a request to {server} was cancelled")
        if silent:
            raise ServerStillSilent(first)
        url = str(request.url)
        with self._lock:
            until, status, count = self._failing.get(url, (0.0, 0, 0))
        if count >= 2 and until > time.monotonic():
            raise ServerFailing(server, url, status)
        asked = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {
            key: self.timeout if asked.get(key) is None else min(asked[key], self.timeout)
            for key in ("connect", "read", "write", "pool")
        }
        try:
            response = super().handle_request(request)
        except httpx2.TimeoutException as error:
            silent = ServerDidNotAnswer(server, self.timeout, request)
            self.remember_silent(server, silent)
            raise silent from error
        response.stream = _PacedStream(response.stream, self, server, request)
        with self._lock:
            if response.status_code >= 500:
                _, _, count = self._failing.get(url, (0.0, 0, 0))
                self._failing[url] = (
                    time.monotonic() + QUIET_PERIOD,
                    response.status_code,
                    count + 1,
                )
            else:
                self._failing.pop(url, None)
        return response

    def remember_silent(self, server: str, error: ServerDidNotAnswer) -> None:
        with self._lock:
            self._silent_until[server] = (time.monotonic() + QUIET_PERIOD, error)
        with _SILENT_LOCK:
            _SILENT_LOG[server] = (time.monotonic(), error)


# Every server that did not answer, across clients: callers that lose the error's chain
# (`datasets` re-raises a bare ConnectionError) can still name the server.
_SILENT_LOG: dict[str, tuple[float, ServerDidNotAnswer]] = {}
_SILENT_LOCK = threading.Lock()


def silent_since(moment: float) -> ServerDidNotAnswer | None:
    """The latest server that did not answer after `moment` (a `time.monotonic()`), if any:
    for errors whose chain no longer holds the timeout."""
    with _SILENT_LOCK:
        recent = [(when, error) for when, error in _SILENT_LOG.values() if when >= moment]
    return max(recent, key=lambda pair: pair[0])[1] if recent else None


class _Factory:
    """A huggingface_hub client factory whose clients use `_CappedTransport`."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __call__(self) -> httpx2.Client:
        return httpx2.Client(
            transport=_CappedTransport(self.timeout),
            event_hooks={"request": [hf_http.hf_request_event_hook]},
            follow_redirects=True,
            timeout=self.timeout,
        )


def set_hub_timeout(timeout: float | None = None) -> float:
    """Make every Hub request of this process give up after `timeout` seconds (`None`: from
    the environment, see the module docstring); returns the limit in use.

    Does nothing when the user has set a client factory of their own.
    """
    seconds = resolve_timeout(timeout)
    current = hf_http._GLOBAL_CLIENT_FACTORY
    if current is hf_http.default_client_factory or isinstance(current, _Factory):
        hf_http.set_client_factory(_Factory(seconds))
    return seconds


def silent_server(
    error: BaseException | None,
) -> ServerDidNotAnswer | ServerStillSilent | None:
    """The server that did not answer behind `error` (through causes and contexts), if any."""
    silent = (ServerDidNotAnswer, ServerStillSilent)
    return next((cause for cause in _chain(error) if isinstance(cause, silent)), None)


def explain(error: BaseException, repo_id: str | None = None) -> str | None:
    """One line for the failures a user can act on — a silent server, a repository that
    does not exist or is private or gated — found anywhere in `error`'s chain; else `None`."""
    silent = silent_server(error)
    if silent is not None:
        return str(silent)
    failing = next((c for c in _chain(error) if isinstance(c, ServerFailing)), None)
    if failing is not None:
        return str(failing)
    name = repo_id or "asked for"
    for cause in _chain(error):
        if isinstance(cause, GatedRepoError):
            return (
                f"the repository {name} on {constants.ENDPOINT} is gated: ask for access on "
                "its page"
            )
        if isinstance(cause, RepositoryNotFoundError):
            return (
                f"the repository {name} was not found on {constants.ENDPOINT} (or it is "
                "private: log in with `hf auth login` or pass a token)"
            )
    return None


def _chain(error: BaseException | None):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
