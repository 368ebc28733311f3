"""Writing files so that nothing is lost: names that stay inside their folder, JSON written
whole or not at all, folders that are replaced only when it is safe.

Every results, card, state and JSON file vaehub writes goes through `write_atomically`
(or `write_json`, `write_text` on top of it): the bytes go to a temporary file in the same
folder, are flushed to disk (`fsync`) and only then renamed over the old file, so a full
disk, a crash or a kill leaves either the old file or the new one, never half of either.
"""

from __future__ import annotations

import os


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
