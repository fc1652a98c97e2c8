"""Turn a container spec into the Compose document that runs it (SPEC §1, §4).

The document is the whole truth of what the engine is asked to run, so the
security policy (``policy.py``) checks this output rather than the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.domain.models import ContainerSpec

SERVICE = "app"
APP_MOUNT = "/app"

# `python` where the image has it, `python3` otherwise (SPEC §4, "What runs").
BOOT_SCRIPT = (
    "if command -v python >/dev/null 2>&1; then exec python /app/boot.py; fi; "
    "exec python3 /app/boot.py"
)


@dataclass(frozen=True)
class Placement:
    """Where and as whom a container runs; fixed by configuration, not the client."""

    network: str
    user: str  # "uid:gid"
    stop_timeout: int


def container_name(cuid: str) -> str:
    """The name Compose v2 gives the first replica of the one service."""
    return f"{cuid}-{SERVICE}-1"


def escape(value: str) -> str:
    """Compose interpolates ``$``; a client's ``$`` must reach the container unchanged."""
    return value.replace("$", "$$")


def compose_document(
    cuid: str,
    owner: str,
    spec: ContainerSpec,
    app_dir: Path,
    placement: Placement,
    *,
    boot_py: bool,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    env = {key: escape(val) for key, val in spec.env.items()}
    env.update({key: escape(val) for key, val in (extra_env or {}).items()})
    env["CONTAINER_UID"] = cuid
    env["TAGS"] = escape(",".join(spec.tags))
    labels = {key: escape(val) for key, val in spec.labels.items()}
    labels.update({"dockyard.managed": "true", "dockyard.cuid": cuid, "dockyard.owner": owner})

    service: dict[str, Any] = {
        "image": spec.image,
        "pull_policy": "never",
        "init": True,
        "tty": True,
        "stdin_open": True,
        "user": placement.user,
        "working_dir": APP_MOUNT,
        "environment": env,
        "labels": labels,
        "volumes": [{"type": "bind", "source": str(app_dir), "target": APP_MOUNT}],
        "restart": spec.restart,
        "stop_grace_period": f"{placement.stop_timeout}s",
        "security_opt": ["no-new-privileges:true"],
    }
    if spec.command is not None:
        if isinstance(spec.command, str):
            service["command"] = ["/bin/sh", "-c", escape(spec.command)]
        else:
            service["command"] = [escape(part) for part in spec.command]
    elif boot_py:
        service["entrypoint"] = ["/bin/sh", "-c", BOOT_SCRIPT]
        service["command"] = []
    res = spec.resources
    if res.cpus is not None:
        service["cpus"] = res.cpus
    if res.memory is not None:
        service["mem_limit"] = res.memory
    if res.pids is not None:
        service["pids_limit"] = res.pids
    if spec.ports:
        service["ports"] = [
            {"target": p.container, "protocol": p.protocol}
            | ({"published": str(p.host)} if p.host else {})
            for p in spec.ports
        ]

    document: dict[str, Any] = {"name": cuid, "services": {SERVICE: service}}
    if spec.network == "none":
        service["network_mode"] = "none"
    else:
        service["networks"] = [placement.network]
        document["networks"] = {placement.network: {"external": True, "name": placement.network}}
    return document
