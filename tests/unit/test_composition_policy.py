"""The generated Compose document and the deny-by-default check of it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from dockyard.domain.containers.compose_doc import Placement, compose_document, container_name
from dockyard.domain.containers.policy import check_document
from dockyard.domain.models import ContainerSpec
from dockyard.errors import ValidationError

APP = Path("/srv/dy/containers/c1/app")
PLACE = Placement(network="dockyard", user="1000:1000", stop_timeout=10)
CUID = "c123e4567-e89b-42d3-a456-426614174000"


def doc(boot_py: bool = False, **spec: Any) -> dict[str, Any]:
    return compose_document(
        CUID, "alice", ContainerSpec(image="busybox:test", **spec), APP, PLACE, boot_py=boot_py
    )


def test_document_carries_the_rules_of_spec_section_1_and_4() -> None:
    d = doc(
        env={"A": "1"},
        tags=["web", "x"],
        resources={"cpus": 1.5, "memory": "64m", "pids": 100},
        ports=[{"host": 8080, "container": 80}],
        restart="always",
    )
    svc = d["services"]["app"]
    assert d["name"] == CUID
    assert svc["init"] is True and svc["tty"] is True and svc["stdin_open"] is True
    assert svc["user"] == "1000:1000"
    assert svc["pull_policy"] == "never"
    assert svc["environment"] == {"A": "1", "CONTAINER_UID": CUID, "TAGS": "web,x"}
    assert svc["labels"]["dockyard.managed"] == "true"
    assert svc["labels"]["dockyard.cuid"] == CUID
    assert svc["labels"]["dockyard.owner"] == "alice"
    assert svc["volumes"] == [{"type": "bind", "source": str(APP), "target": "/app"}]
    assert (svc["cpus"], svc["mem_limit"], svc["pids_limit"]) == (1.5, "64m", 100)
    assert svc["ports"] == [{"target": 80, "protocol": "tcp", "published": "8080"}]
    assert svc["restart"] == "always"
    assert svc["networks"] == ["dockyard"]
    assert d["networks"] == {"dockyard": {"external": True, "name": "dockyard"}}
    assert container_name(CUID) == f"{CUID}-app-1"
    check_document(d, APP, "dockyard")


def test_boot_rule() -> None:
    assert "entrypoint" not in doc()["services"]["app"]
    boot = doc(boot_py=True)["services"]["app"]
    assert boot["entrypoint"][:2] == ["/bin/sh", "-c"]
    assert "python /app/boot.py" in boot["entrypoint"][2]
    assert "python3 /app/boot.py" in boot["entrypoint"][2]
    # An explicit command wins over boot.py.
    explicit = doc(boot_py=True, command=["echo", "hi"])["services"]["app"]
    assert explicit["command"] == ["echo", "hi"] and "entrypoint" not in explicit


def test_dollar_signs_reach_the_container_unchanged() -> None:
    svc = doc(env={"P": "a$b${c}"}, command="echo $HOME")["services"]["app"]
    assert svc["environment"]["P"] == "a$$b$${c}"
    assert svc["command"] == ["/bin/sh", "-c", "echo $$HOME"]


def test_network_none() -> None:
    d = doc(network="none")
    assert d["services"]["app"]["network_mode"] == "none"
    assert "networks" not in d
    check_document(d, APP, "dockyard")


HOSTILE: list[tuple[str, Any]] = [
    ("privileged", True),
    ("cap_add", ["SYS_ADMIN"]),
    ("devices", ["/dev/sda:/dev/sda"]),
    ("pid", "host"),
    ("ipc", "host"),
    ("userns_mode", "host"),
    ("network_mode", "host"),
    ("network_mode", "container:other"),
    ("volumes", [{"type": "bind", "source": "/", "target": "/host"}]),
    ("volumes", ["/var/run/docker.sock:/var/run/docker.sock"]),
    (
        "volumes",
        [{"type": "bind", "source": str(APP), "target": "/app", "bind": {"propagation": "shared"}}],
    ),
    ("security_opt", ["seccomp=unconfined"]),
    ("networks", ["host"]),
    ("pull_policy", "always"),
    ("sysctls", {"net.ipv4.ip_forward": "1"}),
]


@pytest.mark.parametrize(("key", "value"), HOSTILE)
def test_policy_refuses_what_gives_the_host(key: str, value: Any) -> None:
    d = copy.deepcopy(doc())
    d["services"]["app"][key] = value
    with pytest.raises(ValidationError) as err:
        check_document(d, APP, "dockyard")
    assert err.value.code == "HOST_ACCESS_DENIED"


def test_policy_refuses_extra_top_level_and_foreign_networks() -> None:
    d = doc()
    d["volumes"] = {"x": {}}
    with pytest.raises(ValidationError):
        check_document(d, APP, "dockyard")
    d = doc()
    d["networks"]["dockyard"] = {"external": True, "name": "bridge"}
    with pytest.raises(ValidationError):
        check_document(d, APP, "dockyard")


@pytest.mark.parametrize(
    "bad",
    [
        {"image": ""},
        {"image": "bad image"},
        {"image": "x", "env": {"1A": "x"}},
        {"image": "x", "env": {"CONTAINER_UID": "x"}},
        {"image": "x", "tags": ["a,b"]},
        {"image": "x", "resources": {"memory": "lots"}},
        {"image": "x", "resources": {"cpus": 0}},
        {"image": "x", "ports": [{"host": 70000, "container": 80}]},
        {"image": "x", "labels": {"dockyard.owner": "mallory"}},
        {"image": "x", "command": []},
        {"image": "x", "restart": "sometimes"},
        {"image": "x", "name": "../x"},
    ],
)
def test_spec_validation(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ContainerSpec.model_validate(bad)
