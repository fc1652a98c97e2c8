"""Checking out one ref of a client-named git repository, and nothing else.

The URL and ref pass ``domain/images/gitrules.py`` first (https, or http to a host an
admin allows; no option-like ref). The host is resolved once and every address must
pass the fetch rule (public, or inside ``FETCH_ALLOW_NETS``); git is then told to use
exactly those addresses (``http.curloptResolve``), so a second DNS answer cannot send
it elsewhere, and it follows no redirect. git runs with no system or global config, a
private ``HOME``, no prompts, every transport but https/http refused
(``protocol.allow=never``), hooks off, no submodules; argv lists only, never a shell.
Steps: ``init``, a shallow ``fetch`` of the one ref (``HEAD`` for the default branch),
``checkout --detach FETCH_HEAD`` into a work tree kept apart from the git folder. One
deadline covers them all, and a watcher stops git when the folder outgrows the limit;
either way the whole process group is killed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from urllib.parse import SplitResult, urlunsplit

import structlog

from dockyard.adapters import processes
from dockyard.adapters.fetch import IPNetwork, Resolver, refusal_allowing, system_resolve
from dockyard.domain.containers.provision import public_url
from dockyard.domain.images import gitrules
from dockyard.domain.images.sources import GitCheckout
from dockyard.domain.images.trees import too_large
from dockyard.errors import DeadlineError, ValidationError

log = structlog.get_logger("dockyard.git")

_PATH = "/usr/local/bin:/usr/bin:/bin"
_STDERR_TAIL = 2000
_WATCH_INTERVAL = 0.2  # seconds between two looks at the checkout's size
_NO_LIMIT = (
    24 * 3600.0
)  # processes.run needs one; the fetch's own deadline (GIT_TIMEOUT) ends it first
_SLACK = 16 * 1024**2  # the git folder's own files, beyond the packed objects


class GitFetchFailedError(ValidationError):
    """git ran and failed (no such repository or ref, refused, broken transfer)."""


class CliGitFetcher:
    """``GitFetcher`` over the git CLI, with the rules of this module."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_http_hosts: Collection[str] = (),
        allow_nets: Sequence[IPNetwork] = (),
        resolver: Resolver | None = None,
        binary: str = "/usr/bin/git",
    ) -> None:
        self._timeout = timeout
        self._http_hosts = frozenset(h.strip().lower() for h in allow_http_hosts if h.strip())
        self._allow = tuple(allow_nets)
        self._resolve = resolver or system_resolve
        self._binary = binary

    async def fetch(self, url: str, ref: str | None, dest: Path, *, max_bytes: int) -> GitCheckout:
        parts = gitrules.check_url(url, self._http_hosts)
        if ref is not None:
            gitrules.check_ref(ref)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                pins = await self._pins(parts, url)
                checkout = await self._checkout(parts, ref, pins, dest, max_bytes)
        except TimeoutError:
            log.warning("git.fetch.timeout", url=public_url(url), limit=self._timeout)
            raise DeadlineError(
                f"git.url: fetching the repository took longer than {self._timeout:g} s",
                code="GIT_TIMEOUT",
                details={"field": "git.url", "url": public_url(url), "limit": self._timeout},
            ) from None
        log.info(
            "git.fetch.finished",
            url=public_url(url),
            ref=ref,
            commit=checkout.commit,
            duration=round(time.monotonic() - started, 3),
        )
        return checkout

    async def _pins(self, parts: SplitResult, url: str) -> str:
        """``host:port:addr,…`` for curl: every address the host resolves to, checked."""
        host = parts.hostname or ""
        if not host.isascii():
            raise _url_refused("write the host in its ASCII (punycode) form", url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            found = await self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise GitFetchFailedError(
                f"git.url: cannot resolve the host ({exc.__class__.__name__})",
                code="GIT_FETCH_FAILED",
                details={"field": "git.url", "url": public_url(url)},
            ) from None
        addresses = list(dict.fromkeys(a.split("%", 1)[0] for a in found))
        if not addresses:
            raise _url_refused("the host has no address", url)
        for text in addresses:
            reason = refusal_allowing(ipaddress.ip_address(text), self._allow)
            if reason is not None:
                log.warning("git.fetch.refused", url=public_url(url), address=text)
                raise _url_refused(f"the host resolves to a {reason}", url)
        shown = [f"[{a}]" if ":" in a else a for a in addresses]
        return f"{host}:{port}:{','.join(shown)}"

    async def _checkout(
        self, parts: SplitResult, ref: str | None, pins: str, dest: Path, max_bytes: int
    ) -> GitCheckout:
        tree, home = dest / "tree", dest / "home"
        for folder in (dest, tree, home):
            await asyncio.to_thread(folder.mkdir, 0o700, True, True)
        env = self._env(dest / "repo.git", tree, home, parts.scheme.lower())
        config = self._config(parts.scheme.lower(), pins)
        # The URL git sees has the host as it was checked (lower case), so that the pin
        # applies to exactly the name curl looks up.
        plain = urlunsplit((parts.scheme.lower(), _netloc(parts), parts.path, "", ""))
        run = _Runner(self._binary, config, env, dest, max_bytes, plain)
        await run("init", "-q")
        await run(
            "fetch", "-q", "--depth", "1", "--no-tags", "--end-of-options", plain, ref or "HEAD"
        )
        await run("checkout", "-q", "--detach", "FETCH_HEAD")
        commit = (await run("rev-parse", "--verify", "HEAD^{commit}")).strip()
        return GitCheckout(tree=tree, commit=commit)

    def _env(self, git_dir: Path, tree: Path, home: Path, scheme: str) -> dict[str, str]:
        return {
            "PATH": _PATH,
            "HOME": str(home),
            "LC_ALL": "C",
            "GIT_DIR": str(git_dir),
            "GIT_WORK_TREE": str(tree),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/true",
            "GIT_ALLOW_PROTOCOL": scheme,
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_LFS_SKIP_SMUDGE": "1",
        }

    def _config(self, scheme: str, pins: str) -> list[str]:
        pairs = [
            ("protocol.allow", "never"),
            (f"protocol.{scheme}.allow", "always"),
            ("http.curloptResolve", pins),
            ("http.followRedirects", "false"),
            ("credential.helper", ""),
            ("core.hooksPath", "/dev/null"),
            ("core.symlinks", "true"),
            ("core.fsmonitor", "false"),
            ("core.autocrlf", "false"),
            ("submodule.recurse", "false"),
            ("fetch.recurseSubmodules", "false"),
            ("fetch.fsckObjects", "true"),
            ("gc.auto", "0"),
            ("maintenance.auto", "false"),
            ("advice.detachedHead", "false"),
            ("init.defaultBranch", "main"),
        ]
        argv: list[str] = []
        for key, value in pairs:
            argv += ["-c", f"{key}={value}"]
        return argv


class _Runner:
    """Runs one git step at a time: argv list, own process group, size watch."""

    def __init__(
        self,
        binary: str,
        config: list[str],
        env: dict[str, str],
        dest: Path,
        max_bytes: int,
        url: str,
    ) -> None:
        self._head = [binary, *config]
        self._env, self._dest, self._url = env, dest, url
        self._max_bytes = max_bytes

    async def __call__(self, *args: str) -> str:
        # Spawned from a thread (adapters/processes.py), not by uvloop on the event loop;
        # the caller's deadline cancels it, and cancelling kills git's whole group.
        talk = asyncio.create_task(
            processes.run([*self._head, *args], env=self._env, limit=_NO_LIMIT, cwd=str(self._dest))
        )
        watcher = asyncio.create_task(_watch(self._dest, self._max_bytes))
        try:
            done, _ = await asyncio.wait({watcher, talk}, return_when=asyncio.FIRST_COMPLETED)
            if watcher in done:
                watcher.result()  # raises 413 when the folder grew past the limit
            finished = talk.result()
        finally:
            watcher.cancel()
            if not talk.done():
                talk.cancel()
                await asyncio.wait({talk})  # the group is killed and reaped
        if finished.returncode != 0:
            stderr = finished.stderr.decode(errors="replace")[-_STDERR_TAIL:]
            raise _failed(args[0], stderr, self._url)
        return finished.stdout.decode(errors="replace")


async def _watch(folder: Path, max_bytes: int) -> None:
    """Returns never; raises 413 once ``folder`` holds more than the packed objects and
    the checkout of a context of ``max_bytes`` can (twice it, and some)."""
    limit = 2 * max_bytes + _SLACK
    while True:
        await asyncio.sleep(_WATCH_INTERVAL)
        if await asyncio.to_thread(_folder_bytes, folder, limit) > limit:
            raise too_large("git", max_bytes)


def _folder_bytes(folder: Path, stop_at: int) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue  # git renames its temporary files as it goes
            if total > stop_at:
                return total
    return total


def _netloc(parts: SplitResult) -> str:
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port is not None else host


def _url_refused(reason: str, url: str) -> ValidationError:
    return ValidationError(
        f"git.url: {reason}",
        code="GIT_URL_NOT_ALLOWED",
        details={"field": "git.url", "url": public_url(url)},
    )


def _failed(step: str, stderr: str, url: str) -> GitFetchFailedError:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    if "couldn't find remote ref" in stderr or "not our ref" in stderr:
        code, field = "GIT_REF_NOT_FOUND", "git.ref"
    else:
        code, field = "GIT_FETCH_FAILED", "git.url"
    return GitFetchFailedError(
        f"git {step} failed: {last[:300]}",
        code=code,
        details={"field": field, "url": public_url(url), "step": step, "stderr": stderr[-500:]},
    )
