"""Push and pull: a model folder to a Hub repository with its card, and back, every download
checked (hashes, weights that open and are finite, a model that loads) before it replaces
anything local."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from typing import Any

import httpx2
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import RevisionNotFoundError

from vaehub.hub.cards import CARD_METRICS, render_model_card
from vaehub.models.auto import load_model
from vaehub.models.modeling_utils import register_folder_pusher
from vaehub.utils import network, safe_io


class HubError(RuntimeError):
    """A push or pull that did not go through; the message says what failed."""


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | bool | None = None,
    card: bool = True,
    create_pr: bool = False,
    source: str | None = None,
) -> str:
    """Upload a saved model folder, with its rendered model card as README.md.

    The folder itself is only read: the card is written into a staging copy, so a push
    that fails leaves the local model complete and untouched.

    Args:
        source: how an error names what was pushed (default: the folder).

    Returns:
        the URL of the commit.
    Raises:
        HubError: the server could not be reached, refused the token, timed out or failed.
        MissingResultsError: `card=True` and the folder lacks evaluation results.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"{folder} is not a folder: give the folder a vaehub model was saved to.")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ValueError(f"{folder} holds no config.json: save a model there first.")
    # Before anything is read: copying would follow a link and upload what it points to.
    safe_io.check_no_links_out(folder, "the folder to push")
    api = HfApi()
    with tempfile.TemporaryDirectory(prefix="vaehub-push-") as staging:
        upload_path = os.path.join(staging, "upload")
        shutil.copytree(folder, upload_path, ignore=shutil.ignore_patterns("checkpoint-*", ".*"))
        if card:
            render_model_card(folder, repo_id=repo_id).save(os.path.join(upload_path, "README.md"))

        def upload() -> Any:
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=upload_path,
                revision=revision,
                token=token,
                commit_message=commit_message or "Upload vaehub model",
                create_pr=create_pr,
            )

        try:
            repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
            # Reading the repository back checks the server and the token before the upload
            # (its main branch always exists).
            api.model_info(repo_id, revision="main", token=token)
            try:
                info = upload()
            except RevisionNotFoundError:
                # A new branch: create it from main, then commit to it.
                api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
                info = upload()
        except (httpx2.HTTPError, OSError, ValueError) as error:
            unchanged = (
                f"The local folder {folder} is unchanged." if source is None
                else "Nothing local was changed."
            )  # fmt: skip
            raise HubError(
                f"pushing {source or folder} to {repo_id}"
                f"{f' (revision {revision})' if revision else ''} failed: "
                f"{_describe(error, repo_id)}. {unchanged}"
            ) from error
    return info.commit_url


def pull(
    repo_id: str,
    revision: str | None = None,
    local_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    force: bool = False,
) -> str:
    """Download a vaehub model repository; returns the local folder.

    With `local_dir`, the files go into a new folder beside it, are checked, and only then
    take its place, so a folder never mixes two models' files and a failed pull leaves it
    as it was. A `local_dir` that already holds files is refused unless `force=True`,
    which replaces it as a whole.

    Raises:
        HubError: `local_dir` is not empty (without `force`), the repository or revision
            does not exist or cannot be reached, or it holds no vaehub model (the message
            names the repository and what was expected).
    """
    where = f"{repo_id}{f' at revision {revision}' if revision else ''}"
    if local_dir is None:
        return _checked(_download(repo_id, revision, None, token, where), repo_id)
    target = os.path.abspath(local_dir)
    if os.path.exists(target) and not os.path.isdir(target):
        raise HubError(f"{local_dir} is a file, not a folder: give a folder to pull into.")
    try:
        # Even with force: the folder is replaced as a whole, and these hold far more.
        safe_io.check_replaceable_folder(target, "--output-dir")
    except ValueError as error:
        raise HubError(str(error)) from error
    present = sorted(os.listdir(target)) if os.path.isdir(target) else []
    if present and not force:
        more = len(present) - 4
        shown = ", ".join(present[:4]) + (f" and {more} more" if more > 0 else "")
        raise HubError(
            f"{local_dir} is not empty (it holds {shown}): pulling {repo_id} into it would mix "
            "two models' files. Give a new or empty folder, or pass --force (force=True) to "
            "replace the folder as a whole."
        )
    name = os.path.basename(target)
    # Everything is checked in a staging folder: the old one goes only for a model that is
    # whole, is what the server listed, and loads.
    with safe_io.staged_folder(target, prefix=f".{name}.pull-") as staging:
        try:
            with network.interruptible():
                _checked(_download(repo_id, revision, staging, token, where), repo_id)
            check_download(staging, where)
        except BaseException as error:
            if not isinstance(error, Exception):
                # Interrupted (Ctrl-C, SIGTERM): a download thread may still write into the
                # staging folder after it is removed; remove it again once they are joined.
                network.cancel_transfers()
                atexit.register(shutil.rmtree, staging, ignore_errors=True)
            raise
    return target


def _download(
    repo_id: str, revision: str | None, local_dir: str | None, token: str | bool | None, where: str
) -> str:
    try:
        return snapshot_download(repo_id, revision=revision, local_dir=local_dir, token=token)
    except (httpx2.HTTPError, OSError, ValueError) as error:
        raise HubError(
            f"pulling {where} failed: {_describe(error, repo_id)}. Nothing local was changed."
        ) from error


def _checked(path: str, repo_id: str) -> str:
    config_path = os.path.join(path, "config.json")
    model_type = None
    if os.path.isfile(config_path):
        try:
            with open(config_path, encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HubError(
                f"{repo_id} is not a vaehub model: its config.json is not readable JSON "
                f"({error}). Nothing local was changed."
            ) from error
        if isinstance(config, dict):
            model_type = config.get("model_type")
        else:
            model_type = f"a JSON {type(config).__name__} instead of an object"
    if model_type not in CARD_METRICS:
        raise HubError(
            f"{repo_id} is not a vaehub model: expected a config.json with "
            f"model_type {' or '.join(map(repr, CARD_METRICS))}, found "
            f"{model_type if model_type else 'none'}. Nothing local was changed."
        )
    return path


def check_download(folder: str, where: str) -> None:
    """Check a downloaded model folder: each file's hash is the one the server listed for it
    (its ETag: the git blob id, or the sha256 of a large file), and the model loads — its
    weights open, match the sizes in its config and are finite, its tokenizer reads.

    Raises:
        HubError: naming the file and what was wrong; nothing local was changed.
    """
    for name in sorted(_downloaded_files(folder)):
        listed = _listed_hash(folder, name)
        if listed is None:
            continue
        found = _file_hash(os.path.join(folder, name), len(listed))
        if found != listed:
            raise HubError(
                f"pulling {where} failed: {name} does not match the hash the server listed for "
                f"it ({listed}; the file received hashes to {found}): the download was "
                "altered or cut on the way. Nothing local was changed; pull again, and if it "
                "persists, the server is not serving that repository faithfully."
            )
    try:
        load_model(folder)
    except (OSError, ValueError) as error:
        message = str(error).replace(folder, "the download")
        raise HubError(
            f"pulling {where} failed: it does not hold a loadable model: {message} "
            "Nothing local was changed."
        ) from error


# Where huggingface_hub records, per file downloaded into a folder, the commit and ETag.
_DOWNLOAD_RECORDS = os.path.join(".cache", "huggingface", "download")


def _downloaded_files(folder: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".cache"]
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files]
    return found


def _listed_hash(folder: str, name: str) -> str | None:
    """The ETag the server sent for `name` when it is a content hash (40 hex digits: the
    git blob id; 64: the sha256 of an LFS file), else `None`."""
    path = os.path.join(folder, _DOWNLOAD_RECORDS, f"{name}.metadata")
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    etag = lines[1].strip().strip('"').lower() if len(lines) > 1 else ""
    hex_digits = all(c in "0123456789abcdef" for c in etag)
    return etag if hex_digits and len(etag) in (40, 64) else None


def _file_hash(path: str, length: int) -> str:
    """The git blob id (`length` 40) or sha256 (64) of a file."""
    import hashlib

    digest = hashlib.sha256() if length == 64 else hashlib.sha1()
    if length == 40:
        digest.update(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(error: BaseException, repo_id: str | None = None) -> str:
    """What went wrong, in one line: the silent server or the missing repository when it is
    one of those, else the error's type (or HTTP status) and first line."""
    known = network.explain(error, repo_id)
    if known:
        return known
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"HTTP {status}: {first_line}" if status else f"{type(error).__name__}: {first_line}"


register_folder_pusher(push_folder)
