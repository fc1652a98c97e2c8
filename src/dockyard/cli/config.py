"""The per-user configuration: named contexts (a server URL and its token), one current.

    {"current": "prod", "contexts": {"prod": {"url": "https://…", "token": "dyt.…",
                                              "token_id": "…", "username": "ada"}}}

It lives at ``$DOCKYARD_CONFIG`` or ``~/.config/dockyard/config.json`` (mode 0600, its
folder 0700). ``DOCKYARD_URL`` and ``DOCKYARD_TOKEN`` override the chosen context."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple


class ConfigError(Exception):
    """The configuration cannot say where to go (not logged in, unknown context)."""


class Target(NamedTuple):
    """The server a client command talks to, and with what credential."""

    url: str
    token: str | None
    context: str | None = None


class Config:
    """The configuration file: the contexts (servers and their tokens) and the current
    one. A plain class, not a dataclass: ``dataclasses`` imports ``inspect`` (~15 ms of
    every command's start)."""

    def __init__(
        self,
        path: Path,
        current: str | None = None,
        contexts: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.path = path
        self.current = current
        self.contexts: dict[str, dict[str, Any]] = contexts if contexts is not None else {}

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> Config:
        path = config_path(os.environ if env is None else env)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        contexts = raw.get("contexts") if isinstance(raw, dict) else None
        if not isinstance(contexts, dict):
            raise ConfigError(f"{path} is not a dockyard configuration")
        return cls(path, raw.get("current"), contexts)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = json.dumps({"current": self.current, "contexts": self.contexts}, indent=2)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(body + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def target(self, context: str | None, env: dict[str, str] | None = None) -> Target:
        """Where to go: ``context`` (or the current one), with the environment's
        ``DOCKYARD_URL``/``DOCKYARD_TOKEN`` taking precedence."""
        env = dict(os.environ) if env is None else env
        name = context or self.current
        entry: dict[str, Any] = {}
        if context is not None and context not in self.contexts:
            raise ConfigError(f"no context named {context!r} (see `dockyard context ls`)")
        if name is not None:
            entry = self.contexts.get(name, {})
        url = env.get("DOCKYARD_URL") or entry.get("url")
        token = env.get("DOCKYARD_TOKEN") or entry.get("token")
        if not url:
            raise ConfigError("not logged in: run `dockyard login URL` (or set DOCKYARD_URL)")
        return Target(str(url).rstrip("/"), token, name)


def config_path(env: Any) -> Path:
    explicit = env.get("DOCKYARD_CONFIG")
    if explicit:
        return Path(explicit)
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dockyard" / "config.json"


def context_name(url: str) -> str:
    """A default context name for ``url``: its host (and port)."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0] or "default"
