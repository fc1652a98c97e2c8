"""The Compose v2 CLI as an async subprocess: argv as data, a deadline on every call.

The process is spawned from a thread (``adapters/processes.py``: uvloop's own spawn forks
the whole service on the event loop, ~8 - 24 ms a call) in its own session, so that on a
timeout the whole group (Compose and anything it spawned) is killed, not just the parent.
It runs at a lower CPU priority (``nice``, ``COMPOSE_NICE``): when writers keep Compose
busy on every core, the service's own event loop, which answers the reads, still gets the
CPU first.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog
import yaml

from dockyard.adapters import processes
from dockyard.adapters.compose.failures import classify
from dockyard.errors import ComposeError, EngineUnavailableError

log = structlog.get_logger("dockyard.compose")

COMPOSE_FILE = "compose.yaml"
_STDERR_TAIL = 2000


class CliComposeRunner:
    """``ComposeRunner`` over the Compose v2 binary."""

    def __init__(
        self,
        binary: Path,
        *,
        docker_host: str | None,
        timeout: float,
        stop_timeout: int,
        nice: int = 0,
        env: dict[str, str] | None = None,
        remove_volumes: bool = False,
    ) -> None:
        """``env`` is added to the CLI's environment (another engine's ``DOCKER_HOST``,
        ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``); ``remove_volumes``: ``down`` removes
        the project's named volumes too (``/app`` is one on a remote engine)."""
        self._binary = str(binary)
        self._timeout = timeout
        nice_bin = shutil.which("nice") if nice else None
        self._prefix = [nice_bin, "-n", str(nice)] if nice_bin else []
        self._stop_timeout = stop_timeout
        self._env = dict(os.environ)
        if docker_host:
            self._env["DOCKER_HOST"] = docker_host
        self._env.update(env or {})
        self._remove_volumes = remove_volumes

    # -- argv builders (pure; tested without Docker) -----------------------------

    def base_argv(self, project: str, project_dir: Path) -> list[str]:
        argv = [self._binary, "--project-name", project, "--project-directory", str(project_dir)]
        compose_file = project_dir / COMPOSE_FILE
        if compose_file.exists():
            argv += ["--file", str(compose_file)]
        return argv

    def verb_argv(self, verb: str) -> list[str]:
        timeout = str(self._stop_timeout)
        return {
            # --remove-orphans: a stopped container scaled down loses its extra replicas.
            "create": ["create", "--no-build", "--pull", "never", "--remove-orphans"],
            "up": ["up", "--detach", "--no-build", "--pull", "never", "--remove-orphans"],
            # a hub redeploy (domain/containers/recreate.py): the same document, made again
            "recreate": [
                *("up", "--detach", "--no-build", "--pull", "never", "--remove-orphans"),
                "--force-recreate",
            ],
            "recreate-stopped": ["create", "--no-build", "--pull", "never", "--force-recreate"],
            "start": ["start"],
            "stop": ["stop", "--timeout", timeout],
            "restart": ["restart", "--timeout", timeout],
            "pause": ["pause"],
            "unpause": ["unpause"],
            "kill": ["kill"],
            "down": [
                *("down", "--remove-orphans", "--timeout", timeout),
                *(["--volumes"] if self._remove_volumes else []),
            ],
        }[verb]

    # -- ComposeRunner -----------------------------------------------------------

    async def write(self, project_dir: Path, document: dict[str, Any]) -> None:
        await asyncio.to_thread(_write_document, project_dir / COMPOSE_FILE, document)

    async def create(self, project: str, project_dir: Path) -> None:
        await self._run(project, project_dir, "create")

    async def up(self, project: str, project_dir: Path) -> None:
        await self._run(project, project_dir, "up")

    async def action(self, project: str, project_dir: Path, verb: str) -> None:
        await self._run(project, project_dir, verb)

    async def down(self, project: str, project_dir: Path) -> None:
        await self._run(project, project_dir, "down")

    async def version(self) -> str:
        out = await self.run_argv([self._binary, "version", "--short"], verb="version")
        return out.strip().lstrip("v")

    async def _run(self, project: str, project_dir: Path, verb: str) -> str:
        argv = self.base_argv(project, project_dir) + self.verb_argv(verb)
        return await self.run_argv(argv, verb=verb, project=project)

    async def run_argv(self, argv: list[str], *, verb: str, project: str | None = None) -> str:
        started = time.perf_counter()
        try:
            done = await processes.run([*self._prefix, *argv], env=self._env, limit=self._timeout)
        except TimeoutError:
            log.warning(f"compose.{verb}.killed", project=project, timeout_s=self._timeout)
            # Compose stuck is almost always the engine stuck under it: 503 with
            # Retry-After, like an engine timeout (issue 9 #4), never "the client was slow".
            raise EngineUnavailableError(
                f"docker compose {verb} did not finish within {self._timeout:.0f}s"
                " (its processes were killed); retry later",
                code="COMPOSE_TIMEOUT",
                details={"verb": verb},
            ) from None
        stdout, stderr = done.stdout, done.stderr
        duration = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            f"compose.{verb}.finished",
            project=project,
            returncode=done.returncode,
            duration_ms=duration,
        )
        if done.returncode != 0:
            err = stderr.decode(errors="replace")[-_STDERR_TAIL:]
            failed = ComposeError(
                f"docker compose {verb} failed: {_last_line(err)}",
                argv=argv,
                returncode=done.returncode,
                stderr=err,
                details={"verb": verb, "returncode": done.returncode, "stderr": err},
            )
            meaning = classify(failed)
            if meaning is failed:
                raise failed
            log.info(f"compose.{verb}.refused", project=project, code=meaning.code)
            raise meaning from failed
        return stdout.decode(errors="replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


# libyaml's emitter when PyYAML has it (its wheels do): several times faster.
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _write_document(path: Path, document: dict[str, Any]) -> None:
    text = "# Generated by Dockyard; edits are overwritten on the next change.\n"
    text += yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    _atomic_write(path, text)


def _atomic_write(path: Path, text: str) -> None:
    """Write-then-rename, mode 0600: the file holds env values.

    No fsync: the file is derived from the database and rewritten before every
    create, start and recreate, so a torn write after a power loss heals itself."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".compose-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
