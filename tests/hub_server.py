"""A real Hub-API server on loopback for the tests: olah, serving git repositories.

olah (a Hub mirror) answers the Hub's download and metadata API offline from git
repositories under `<mirrors>/models/<org>/<name>/` (branch `main`). It takes no uploads,
so the two writing calls of `HfApi` are carried out here as git commits into those
repositories; everything a pull does still goes through the server over HTTP.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

GIT = [
    "git",
    "-c",
    "user.name=vaehub tests",
    "-c",
    "user.email=tests@vaehub.invalid",
    "-c",
    "commit.gpgsign=false",
]


class HubServer:
    """`olah-cli` on 127.0.0.1:`port`, its repositories under `root`/mirrors."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = Path(root), port
        self.url = f"http://127.0.0.1:{port}"
        self.mirrors = self.root / "mirrors"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        (self.mirrors / "models").mkdir(parents=True, exist_ok=True)
        (self.root / "repos").mkdir(parents=True, exist_ok=True)
        config = self.root / "olah.toml"
        config.write_text(
            "[basic]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.port}\n"
            f'repos-path = "{self.root / "repos"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            'mirror-scheme = "http"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\n'
            f'mirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            # Pushes change a branch between requests: never serve stale metadata.
            "metadata-cache-ttl = 0\n"
            "\n[accessibility]\noffline = true\n",
            encoding="utf-8",
        )
        olah = Path(sys.executable).with_name("olah-cli")
        log = open(self.root / "olah.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(olah), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        self._log = log
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"olah exited with {self.process.returncode}; see {self.root / 'olah.log'}"
                )
            try:
                urllib.request.urlopen(f"{self.url}/api/whoami-v2", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # any answer at all: the server is up
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"olah did not answer on {self.url} within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process is not None:
            self._log.close()
        self.process = None

    # --- the two writing calls of HfApi, as git operations -----------------------------------

    def repo_path(self, repo_id: str) -> Path:
        return self.mirrors / "models" / repo_id

    def create_repo(self, repo_id: str, *, exist_ok: bool = False, **_: Any):
        from huggingface_hub import RepoUrl

        path = self.repo_path(repo_id)
        if path.exists():
            if not exist_ok:
                raise FileExistsError(f"{repo_id} exists")
        else:
            path.mkdir(parents=True)
            subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
            # olah answers a missing file like a missing repository, where the Hub says
            # "entry not found": every repo starts with a README so that looking for a
            # card finds one.
            (path / "README.md").write_text(f"# {repo_id}\n", encoding="utf-8")
            subprocess.run(GIT + ["add", "-A"], cwd=path, check=True)
            subprocess.run(GIT + ["commit", "-q", "-m", "initial commit"], cwd=path, check=True)
        return RepoUrl(f"{self.url}/{repo_id}", endpoint=self.url)

    def create_commit(
        self,
        repo_id: str,
        operations,
        *,
        commit_message: str,
        revision: str | None = None,
        **_: Any,
    ):
        from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete
        from huggingface_hub.errors import RepositoryNotFoundError

        path = self.repo_path(repo_id)
        if not (path / ".git").is_dir():
            raise RepositoryNotFoundError(f"{repo_id} does not exist on the test server")
        branch = revision or "main"
        branches = subprocess.run(
            ["git", "branch", "--list", branch],
            cwd=path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        subprocess.run(
            [
                "git",
                "checkout",
                "-q",
                *([] if branches.strip() else ["-b"]),
                branch,
                *([] if branches.strip() else ["main"]),
            ],
            cwd=path,
            check=True,
        )
        try:
            for operation in operations:
                target = path / operation.path_in_repo
                if isinstance(operation, CommitOperationAdd):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = operation.path_or_fileobj
                    if isinstance(source, (str, os.PathLike)):
                        shutil.copyfile(source, target)
                    elif isinstance(source, bytes):
                        target.write_bytes(source)
                    elif isinstance(source, io.IOBase):
                        target.write_bytes(source.read())
                elif isinstance(operation, CommitOperationDelete):
                    if target.is_dir():
                        shutil.rmtree(target)
                    else:
                        target.unlink(missing_ok=True)
            subprocess.run(GIT + ["add", "-A"], cwd=path, check=True)
            subprocess.run(
                GIT + ["commit", "-q", "--allow-empty", "-m", commit_message], cwd=path, check=True
            )
            oid = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True
            ).stdout.strip()
        finally:
            subprocess.run(["git", "checkout", "-q", "main"], cwd=path, check=True)
        return CommitInfo(
            commit_url=f"{self.url}/{repo_id}/commit/{oid}",
            commit_message=commit_message,
            commit_description="",
            oid=oid,
        )

    def add_repository(self, repo_id: str, files: dict[str, str]) -> None:
        """A repository written straight into the served folder (one not made by vaehub)."""
        self.create_repo(repo_id, exist_ok=True)
        path = self.repo_path(repo_id)
        for name, text in files.items():
            (path / name).write_text(text, encoding="utf-8")
        subprocess.run(GIT + ["add", "-A"], cwd=path, check=True)
        subprocess.run(GIT + ["commit", "-q", "-m", "add files"], cwd=path, check=True)
