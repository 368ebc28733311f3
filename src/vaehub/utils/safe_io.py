"""Writing files so that nothing is lost: names that stay inside their folder, JSON written
whole or not at all, folders that are replaced only when it is safe.

Every results, card, state and JSON file vaehub writes goes through `write_atomically`
(or `write_json`, `write_text` on top of it): the bytes go to a temporary file in the same
folder, are flushed to disk (`fsync`) and only then renamed over the old file, so a full
disk, a crash or a kill leaves either the old file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

# Errors that mean the disk (or the user's quota) is full.
_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A write ran out of space; the message names the file and says what was kept."""


class FolderInUseError(OSError):
    """Another process holds the lock on a folder; the message names it."""


LOCK_FILE = ".vaehub.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, command: str) -> Iterator[dict[str, Any] | None]:
    """Hold `folder/.vaehub.lock` while the block runs: a second process asking for it is
    refused at once, with the first one's pid, host, start time and command.

    The lock is the kernel's (`flock`), so it dies with its process: a lock file left by a
    run that was killed is stale, is taken over (with a warning naming the dead pid), and
    never blocks a folder forever. Yields the stale owner's record, or `None`.

    Raises:
        FolderInUseError: a live process holds the lock.
    """
    import fcntl

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_FILE)
    while True:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _lock_owner(handle)
            handle.close()
            who = (
                f"pid {owner.get('pid')} on {owner.get('host')}, started "
                f"{owner.get('started')}: {owner.get('command')}"
                if owner
                else "a process that is starting"
            )
            raise FolderInUseError(
                f"{folder} is in use by another run ({who}); two runs writing one folder "
                f"would mix their checkpoints. Wait for it to finish, or give another folder. "
                f"(Lock file: {path}.)"
            ) from None
        except OSError as error:
            # A file system without locks (some network mounts): run, but say so.
            handle.close()
            logger.warning(
                f"cannot lock {path} ({error}); another run into {folder} would not be noticed."
            )
            yield None
            return
        # The file may have been removed by its owner between open and flock: lock the one
        # that is there now.
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    stale = _lock_owner(handle)
    if stale:
        logger.warning(
            f"{path} was left by pid {stale.get('pid')} ({stale.get('command')}), which no "
            "longer holds it (it was stopped or killed): taking it over."
        )
    handle.seek(0)
    handle.truncate()
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": command}  # fmt: skip
    handle.write(json.dumps(record))
    handle.flush()
    try:
        yield stale
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
        handle.close()


def _lock_owner(handle: Any) -> dict[str, Any] | None:
    try:
        handle.seek(0)
        owner = json.loads(handle.read() or "null")
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def check_folder_name(name: str, parent: str | os.PathLike, what: str = "--name") -> str:
    """The path of `parent/name`, after checking that `name` is one plain folder name.

    A name that is `.`, `..`, absolute, holds a separator or resolves outside `parent`
    (a link) would make the folder that is replaced some other folder: `release --name .`
    once deleted every checkpoint beside it.

    Raises:
        ValueError: naming the name and what a name may be.
    """
    text = os.fspath(name)
    separators = [os.sep] + ([os.altsep] if os.altsep else [])
    problem = None
    if not text or not text.strip():
        problem = "is empty"
    elif text in (".", ".."):
        problem = "is not a folder name (it names the folder itself or its parent)"
    elif os.path.isabs(text) or any(sep in text for sep in separators):
        problem = "is a path, not a single folder name"
    elif "\0" in text:
        problem = "holds a NUL character"
    if problem is None:
        root = os.path.realpath(parent)
        resolved = os.path.realpath(os.path.join(parent, text))
        if os.path.dirname(resolved) != root:
            problem = f"resolves to {resolved}, outside {root}"
    if problem is not None:
        raise ValueError(
            f"{what} {text!r} {problem}: give a single folder name such as "
            "'synthetic-vae-elbo' (letters, digits, '-', '_' and '.')."
        )
    return os.path.join(os.fspath(parent), text)


def check_no_links_out(folder: str | os.PathLike, what: str) -> None:
    """Refuse a folder holding a symbolic link that leads out of it (or nowhere): copying
    or uploading the folder would follow it and carry the target's contents (a
    `notes.txt -> ../secret.txt`) along.

    Raises:
        ValueError: naming every such link and where it points.
    """
    root = os.path.realpath(folder)
    found = []
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                continue
            target = os.path.realpath(path)
            if not (target.startswith(root + os.sep) and os.path.exists(target)):
                found.append(f"{os.path.relpath(path, root)} -> {os.readlink(path)}")
    if found:
        raise ValueError(
            f"{what} {os.fspath(folder)} holds links that lead out of it: "
            f"{', '.join(found[:8])}{' ...' if len(found) > 8 else ''}. They would carry "
            "files from elsewhere along; replace each by the file it should be (or remove it)."
        )


def check_replaceable_folder(path: str | os.PathLike, what: str) -> None:
    """Refuse to replace, as a whole, a folder that holds far more than a model: `/`, the
    home folder, the current folder or any folder above it — unless it is empty.

    Raises:
        ValueError: naming the folder and what to give instead.
    """
    target = os.path.realpath(path)
    if not os.path.isdir(target) or not os.listdir(target):
        return
    cwd = os.path.realpath(os.getcwd())
    home = os.path.realpath(os.path.expanduser("~"))
    reason = None
    if os.path.dirname(target) == target:
        reason = "is the root of the file system"
    elif target == home:
        reason = "is your home folder"
    elif cwd == target:
        reason = "is the current folder"
    elif cwd.startswith(target.rstrip(os.sep) + os.sep):
        reason = f"holds the current folder ({cwd})"
    if reason is not None:
        raise ValueError(
            f"{what} {os.fspath(path)} {reason}, and it is not empty: it would be replaced as "
            "a whole, deleting everything in it. Give a new or empty folder for the model."
        )


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike, prefix: str) -> Iterator[str]:
    """A new, empty folder beside `target` to write a whole folder into: when the block ends
    without error it takes `target`'s place (`replace_folder`); when it raises, or is
    interrupted, it is removed and any earlier `target` stays as it was.

    Args:
        prefix: the staging folder's name starts with it (a dot keeps it hidden).
    """
    parent = os.path.dirname(os.path.abspath(os.fspath(target)))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(target, staging)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """While the block runs, SIGTERM (`kill`, a scheduler stopping a job) ends the process as
    Ctrl-C would, by raising `SystemExit(143)`: Python's default would end it at once, and
    leave `staged_folder`'s half-written folders and lock files behind. Outside the main
    thread, where no handler can be set, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def replace_folder(target: str | os.PathLike, staging: str | os.PathLike) -> None:
    """Put the folder `staging` in place of `target` (which may not exist) as a whole: the
    old folder is moved aside, not deleted, until the new one is in place."""
    target, staging = os.fspath(target), os.fspath(staging)
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    old = f"{staging}.old"
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --- finite numbers ----------------------------------------------------------------------------


def non_finite(value: Any, key: str = "") -> Iterator[str]:
    """`key = value` for every NaN or infinite number in `value`, nested dicts and lists
    included, named as `metrics.kl_per_dim[3]`."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        yield f"{key or 'the value'} = {value}"
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from non_finite(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from non_finite(item, f"{key}[{index}]")


def check_finite(value: Any, what: str) -> None:
    """Refuse `value` if it holds a NaN or an infinity anywhere, naming each key.

    Raises:
        ValueError: nothing has been written.
    """
    bad = list(non_finite(value))
    if bad:
        shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
        raise ValueError(
            f"{what} hold non-finite values ({shown}): the model or the run that "
            "measured them diverged. Nothing was written; check the weights and measure again."
        )


# --- atomic writes -----------------------------------------------------------------------------


def write_atomically(path: str | os.PathLike, write: Callable[[str], Any]) -> str:
    """Call `write(temporary_path)`, flush the file to disk, then rename it over `path`.

    The temporary file lies in `path`'s folder (a rename across file systems is a copy),
    so a crash, a kill or a full disk leaves `path` as it was or as it is meant to be.

    Raises:
        DiskFullError: the disk filled up; the message names `path` and says that the
            previous file (if any) is intact. The temporary file is removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=folder
    )
    os.close(descriptor)
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; a results file should read like any other.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException as error:
        # Asked before the partial file is removed: a library's own error (torch's
        # "unexpected pos 3520 vs 3412") does not say that the disk filled up.
        full = isinstance(error, Exception) and (_disk_full(error) or _no_space_left(folder))
        _remove(temporary)
        if full:
            kept = (
                f"the previous {os.path.basename(path)} is intact"
                if os.path.exists(path)
                else "nothing was written there"
            )
            raise DiskFullError(
                errno.ENOSPC,
                f"the disk is full: writing {path} failed and {kept}. Free some space "
                f"on {folder}'s disk (or write elsewhere) and run again",
            ) from error
        raise
    _sync_folder(folder)
    return path


def write_text(path: str | os.PathLike, text: str) -> str:
    """`text` into `path` (UTF-8, newlines as given), atomically."""

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    return write_atomically(path, write)


def write_json(
    path: str | os.PathLike, value: Any, what: str | None = None, *, indent: int | None = 2,
    default: Callable[[Any], Any] | None = None, allow_nan: bool = False,
) -> str:  # fmt: skip
    """`value` as JSON into `path`, atomically, after checking that every number in it is
    finite (JSON has no NaN: a file holding one is read back by no strict parser).

    Args:
        what: how an error names the value (default: the file).
        default: as `json.dumps`'s, for values JSON cannot hold.
        allow_nan: write NaN and ±Infinity as Python's `json` does (for state only Python
            reads back, such as the aggressive loop's best MI of -inf before any check).
    Raises:
        ValueError: a NaN or infinity, named by its key; nothing is written.
    """
    if not allow_nan:
        check_finite(value, what or os.fspath(path))
    text = json.dumps(value, indent=indent, allow_nan=allow_nan, default=default)
    return write_text(path, text)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def is_disk_full(error: BaseException, folder: str | os.PathLike) -> bool:
    """Whether `error` (of any library) came from a full disk under `folder`."""
    return _disk_full(error) or _no_space_left(os.fspath(folder))


def _disk_full(error: BaseException) -> bool:
    """Whether an error raised by a library (torch's "unexpected pos") came from a full disk."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _FULL:
            return True
        if "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _no_space_left(folder: str) -> bool:
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (its folder's entry), where the system allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
