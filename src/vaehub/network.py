"""One timeout for every request vaehub makes to a Hub server, and an error that says which
server did not answer.

huggingface_hub's shared HTTP client waits forever by default: most of its API calls pass
no timeout, so a server that accepts the connection and never answers hangs `pull`,
`from_pretrained` and `push_to_hub` with no output. vaehub installs a client whose
transport caps every request's connect, read, write and pool timeouts at one limit:

- `--timeout SECONDS` on the commands that talk to a Hub, else
- the environment variable `VAEHUB_HUB_TIMEOUT`, else
- huggingface_hub's own `HF_HUB_DOWNLOAD_TIMEOUT`, else 10 seconds.

A request that runs out of time raises `ServerDidNotAnswer`, a `httpx2.ReadTimeout`, so
huggingface_hub still falls back to files already in the cache; its message names the
server and the limit. Once a server has not answered, further requests to it in the next
`QUIET_PERIOD` seconds fail at once (`ServerStillSilent`) instead of waiting out the limit
again in each of huggingface_hub's retries. A client factory set by the user
(`huggingface_hub.set_client_factory`) is left alone.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import httpx2
from huggingface_hub import constants
from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError
from huggingface_hub.utils import _http as hf_http

DEFAULT_TIMEOUT = 10.0
ENVIRONMENT_VARIABLE = "VAEHUB_HUB_TIMEOUT"
QUIET_PERIOD = 60.0  # seconds a silent server is not asked again


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
        self._silent_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        server = request.url.netloc.decode("ascii", "replace")
        with self._lock:
            silent = self._silent_until.get(server, 0.0) > time.monotonic()
        if silent:
            raise ServerStillSilent(ServerDidNotAnswer(server, self.timeout, request))
        asked = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {
            key: self.timeout if asked.get(key) is None else min(asked[key], self.timeout)
            for key in ("connect", "read", "write", "pool")
        }
        try:
            return super().handle_request(request)
        except httpx2.TimeoutException as error:
            with self._lock:
                self._silent_until[server] = time.monotonic() + QUIET_PERIOD
            raise ServerDidNotAnswer(server, self.timeout, request) from error


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
