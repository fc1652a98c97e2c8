"""What a build is made from (SPEC §6): the sources a client names, the limits of a
context, and what a prepared context is. ``contexts.py`` turns a source into a context."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dockyard.domain.images import gitrules


@dataclass(frozen=True)
class ContextLimits:
    max_bytes: int  # unpacked context size (settings.build_context_max_bytes) -> 413
    max_entries: int = 100_000


@dataclass(frozen=True)
class DockerfileSource:
    """Dockerfile text, with optional extra files (a tar, tar.gz or zip archive)."""

    text: str
    extra: Path | None = None


@dataclass(frozen=True)
class ArchiveSource:
    """An uploaded context: tar (plain, gz, bz2, xz) or zip, told apart by content."""

    path: Path


@dataclass(frozen=True)
class TarUrlSource:
    url: str


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str | None = None  # branch, tag or commit; None = the remote's default branch
    subdir: str | None = None  # the context is this folder of the repository


BuildSource = DockerfileSource | ArchiveSource | TarUrlSource | GitSource


@dataclass(frozen=True)
class PreparedContext:
    tar: Path  # a plain tar made by Dockyard, inside workdir
    dockerfile: str  # normalised relative path of the Dockerfile inside the context
    size: int  # unpacked bytes
    entries: int


@dataclass(frozen=True)
class GitCheckout:
    tree: Path  # the work tree (no .git inside it)
    commit: str  # the commit checked out


class GitFetcher(Protocol):
    """Checks out one ref of a repository into the fresh folder ``dest`` (adapters/git.py).

    Refuses (400) URLs and refs outside ``gitrules`` and hosts that resolve to addresses
    a fetch may not reach; fails with GIT_FETCH_FAILED, a deadline error, or 413 when the
    checkout grows past ``max_bytes``; leaves no process behind."""

    async def fetch(
        self, url: str, ref: str | None, dest: Path, *, max_bytes: int
    ) -> GitCheckout: ...


def github_source(username: str, reponame: str, tag: str | None) -> GitSource:
    """Seed 002's ``github_username``/``github_reponame``/``github_tag``."""
    url = gitrules.github_url(username, reponame)
    ref = gitrules.check_ref(tag, "github_tag") if tag else None
    return GitSource(url=url, ref=ref)
