"""Deny-by-default check of the final Compose document (SPEC §4).

Whatever produced the document, the container must not get the host: no
privileged mode, no host namespaces, no host paths but its own ``app/`` folder,
no added capabilities or devices. Keys that are not known to be safe are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.domain.containers.compose_doc import (
    APP_VOLUME_KEY,
    app_volume,
    host_binds,
    host_fields,
)
from dockyard.domain.models import HostAccess
from dockyard.errors import ValidationError

_SAFE_KEYS = frozenset(
    {
        "image",
        "pull_policy",
        "init",
        "tty",
        "stdin_open",
        "user",
        "working_dir",
        "environment",
        "labels",
        "volumes",
        "restart",
        "stop_grace_period",
        "security_opt",
        "command",
        "entrypoint",
        "cpus",
        "mem_limit",
        "pids_limit",
        "ports",
        "networks",
        "network_mode",
        "container_name",  # replicas 2..N (compose_doc.py)
    }
)
_SAFE_SECURITY_OPTS = frozenset({"no-new-privileges:true"})

# Request fields that ask for the host, refused with a code of their own.
HOST_ACCESS_FIELDS = frozenset(
    {
        "privileged",
        "cap_add",
        "devices",
        "volumes",
        "network_mode",
        "pid",
        "ipc",
        "userns_mode",
        "security_opt",
        "binds",
        "mounts",
        "host_config",
        "uts",
        "cgroup",
        "cgroup_parent",
        "sysctls",
        "device_cgroup_rules",
        "runtime",
    }
)


def host_access_denied(field: str) -> ValidationError:
    return ValidationError(
        f"'{field}' would give the container access to the host and is not allowed",
        code="HOST_ACCESS_DENIED",
        details={"field": field},
    )


def check_document(
    document: dict[str, Any],
    app_dir: Path,
    network: str,
    *,
    volume: bool = False,
    host: HostAccess | None = None,
) -> None:
    """``volume``: ``/app`` is the container's own named volume (a remote engine), the
    one volume allowed then; else it is the bind mount of ``app_dir``, the only one.
    ``host``: the host access granted (an admin's container on an engine that allows
    it); exactly its fields and binds are allowed besides, nothing else."""
    services = document.get("services") or {}
    allowed = {"name", "services", "networks"} | ({"volumes"} if volume else set())
    if set(document) - allowed:
        raise host_access_denied(sorted(set(document) - allowed)[0])
    if volume and document.get("volumes") != app_volume(str(document.get("name"))):
        raise host_access_denied("volumes")
    for networks in (document.get("networks") or {}).values():
        if networks != {"external": True, "name": network}:
            raise host_access_denied("networks")
    mount = (
        {"type": "volume", "source": APP_VOLUME_KEY, "target": "/app"}
        if volume
        else {"type": "bind", "source": str(app_dir), "target": "/app"}
    )
    for service in services.values():
        _check_service(service, mount, network, host)


def _check_service(
    service: dict[str, Any], mount: dict[str, str], network: str, host: HostAccess | None
) -> None:
    granted = host_fields(host) if host is not None else {}
    for key in service:
        if key in granted:
            if service[key] != granted[key]:
                raise host_access_denied(key)
        elif key not in _SAFE_KEYS:
            raise host_access_denied(key)
    binds = host_binds(host) if host is not None else []
    if service.get("network_mode") not in (None, "none"):
        raise host_access_denied("network_mode")
    for net in service.get("networks") or []:
        if net != network:
            raise host_access_denied("networks")
    for opt in service.get("security_opt") or []:
        if opt not in _SAFE_SECURITY_OPTS:
            raise host_access_denied("security_opt")
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict) and _same_mount(volume, mount):
            continue
        if volume in binds:  # exactly a granted host path, as rendered
            continue
        raise host_access_denied("volumes")
    if service.get("pull_policy") != "never":
        raise host_access_denied("pull_policy")


def _same_mount(volume: dict[str, Any], mount: dict[str, str]) -> bool:
    if set(volume) != set(mount) or volume.get("type") != mount["type"]:
        return False
    if volume.get("target") != mount["target"]:
        return False
    if mount["type"] == "bind":  # the path as a path: "/a/./b" is "/a/b"
        return Path(str(volume.get("source"))) == Path(mount["source"])
    return volume.get("source") == mount["source"]
