"""A remote container's Compose document: ``/app`` is its own named volume there, and
the policy allows exactly that one volume (issue 12, compose_doc.py, policy.py)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from dockyard.adapters.compose import CliComposeRunner
from dockyard.adapters.engine.remote import VolumeCompose, compose_env, owner_tar
from dockyard.domain.containers.compose_doc import Placement, app_volume_name, compose_document
from dockyard.domain.containers.policy import check_document
from dockyard.domain.models import ContainerSpec
from dockyard.errors import EngineError, ValidationError

APP = Path("/data/containers/c1/app")
PLACEMENT = Placement(network="dockyard", user="1000:1000", stop_timeout=5)


def document(*, volume: bool) -> dict[str, Any]:
    spec = ContainerSpec(image="busybox")
    return compose_document("c1", "alice", spec, APP, PLACEMENT, boot_py=False, volume=volume)


def test_app_is_a_labelled_named_volume_on_a_remote_engine() -> None:
    doc = document(volume=True)
    assert doc["services"]["app"]["volumes"] == [
        {"type": "volume", "source": "app", "target": "/app"}
    ]
    assert doc["volumes"] == {
        "app": {
            "name": app_volume_name("c1"),
            "labels": {"dockyard.managed": "true", "dockyard.cuid": "c1"},
        }
    }
    check_document(doc, APP, "dockyard", volume=True)
    assert "volumes" not in document(volume=False)  # the local engine: the bind mount
    check_document(document(volume=False), APP, "dockyard")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["volumes"]["app"].update(name="someone-elses-data"),
        lambda d: d["volumes"].update(more={"name": "x"}),
        lambda d: d["services"]["app"]["volumes"].append(
            {"type": "volume", "source": "other", "target": "/x"}
        ),
        lambda d: d["services"]["app"]["volumes"][0].update(type="bind", source="/"),
    ],
)
def test_the_policy_allows_that_one_volume_only(change: Any) -> None:
    doc = document(volume=True)
    change(doc)
    with pytest.raises(ValidationError) as caught:
        check_document(doc, APP, "dockyard", volume=True)
    assert caught.value.code == "HOST_ACCESS_DENIED"
    with pytest.raises(ValidationError):  # and a volume is no bind mount's stand-in
        check_document(document(volume=True), APP, "dockyard")


def test_a_remote_engines_compose_runs_there_and_removes_its_volumes() -> None:
    env = compose_env("unix:///run/eng.sock", None)
    runner = CliComposeRunner(
        Path("/usr/bin/docker-compose"),
        docker_host=None,
        timeout=10,
        stop_timeout=5,
        env=env,
        remove_volumes=True,
    )
    assert "--volumes" in runner.verb_argv("down")
    assert env["DOCKER_HOST"] == "unix:///run/eng.sock" and env["DOCKER_TLS_VERIFY"] == ""
    local = CliComposeRunner(
        Path("/usr/bin/docker-compose"), docker_host=None, timeout=10, stop_timeout=5
    )
    assert "--volumes" not in local.verb_argv("down")
    with_tls = compose_env("tcp://10.0.0.5:2376", Path("/tmp/certs"))
    assert (with_tls["DOCKER_TLS_VERIFY"], with_tls["DOCKER_CERT_PATH"]) == ("1", "/tmp/certs")


def test_the_owner_tar_is_one_folder_of_the_containers_user() -> None:
    with tarfile.open(fileobj=io.BytesIO(owner_tar(1000, 1001))) as tar:
        (only,) = tar.getmembers()
    assert (only.name, only.isdir(), only.uid, only.gid, only.mode) == (
        "app",
        True,
        1000,
        1001,
        0o755,
    )


class FakeRunner:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def create(self, project: str, project_dir: Path) -> None:
        self.calls.append("create")

    async def up(self, project: str, project_dir: Path) -> None:
        self.calls.append("up")

    async def action(self, project: str, project_dir: Path, verb: str) -> None:
        self.calls.append(verb)

    async def down(self, project: str, project_dir: Path) -> None:
        self.calls.append("down")


class Archives:
    """The engine's archive PUT (failing once when asked)."""

    def __init__(self, runner: FakeRunner, fail_first: bool = False) -> None:
        self.runner = runner
        self.fail_first = fail_first

    async def put_archive(self, cuid: str, path: str, tar: bytes) -> None:
        if self.fail_first:
            self.fail_first = False
            raise EngineError("the engine broke")
        self.runner.calls.append(f"owner {path}")


async def test_a_new_projects_volume_is_owned_before_its_workload_starts() -> None:
    runner = FakeRunner()
    compose = VolumeCompose(runner, Archives(runner), owner_tar(1000, 1000))  # type: ignore[arg-type]
    await compose.up("c1", Path("/x"))
    assert runner.calls == ["create", "owner /", "start"]
    await compose.action("c1", Path("/x"), "stop")
    await compose.up("c1", Path("/x"))  # owned already: one Compose call, no second PUT
    assert runner.calls == ["create", "owner /", "start", "stop", "up"]


async def test_a_failed_ownership_step_starts_nothing_and_is_tried_again() -> None:
    runner = FakeRunner()
    compose = VolumeCompose(runner, Archives(runner, fail_first=True), owner_tar(1000, 1000))  # type: ignore[arg-type]
    with pytest.raises(EngineError):
        await compose.up("c1", Path("/x"))
    assert runner.calls == ["create"]  # created, never started with a root-owned /app
    await compose.up("c1", Path("/x"))
    assert runner.calls == ["create", "create", "owner /", "start"]


async def test_down_forgets_the_ownership_of_a_project() -> None:
    runner = FakeRunner()
    compose = VolumeCompose(runner, Archives(runner), owner_tar(1000, 1000))  # type: ignore[arg-type]
    await compose.create("c1", Path("/x"))
    await compose.down("c1", Path("/x"))
    await compose.up("c1", Path("/x"))  # a new project of that name is owned again
    assert runner.calls == ["create", "owner /", "down", "create", "owner /", "start"]
