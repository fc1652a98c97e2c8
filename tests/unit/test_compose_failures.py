"""The table of known Compose failures, on stderr recorded from the real Compose v2
binary (tests/unit/data/compose/, recorded with Compose 2.40 against Docker 28)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from dockyard.adapters.compose.failures import classify
from dockyard.adapters.compose.runner import CliComposeRunner
from dockyard.errors import (
    ComposeError,
    ConflictError,
    DockyardError,
    EngineUnavailableError,
    ValidationError,
)

RECORDED = Path(__file__).parent / "data" / "compose"


def recorded(name: str) -> str:
    return (RECORDED / f"{name}.txt").read_text()


def failed(stderr: str, verb: str = "up") -> ComposeError:
    return ComposeError(f"docker compose {verb} failed", returncode=1, stderr=stderr)


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("no_command", "validation_error", "NO_COMMAND"),
        ("no_command_create", "validation_error", "NO_COMMAND"),
        ("invalid_reference", "validation_error", "INVALID_IMAGE"),
        ("digest_invalid", "validation_error", "INVALID_IMAGE"),
        ("image_missing", "validation_error", "IMAGE_NOT_FOUND"),
        ("digest_missing", "validation_error", "IMAGE_NOT_FOUND"),
        ("port_allocated", "conflict", "PORT_IN_USE"),
        ("port_allocated_start", "conflict", "PORT_IN_USE"),
        ("port_host_in_use", "conflict", "PORT_IN_USE"),
        ("engine_no_socket", "unavailable", "ENGINE_UNAVAILABLE"),
        ("engine_refused", "unavailable", "ENGINE_UNAVAILABLE"),
        ("engine_refused_socket", "unavailable", "ENGINE_UNAVAILABLE"),
        ("engine_eof", "unavailable", "ENGINE_UNAVAILABLE"),
        ("engine_reset", "unavailable", "ENGINE_UNAVAILABLE"),
    ],
)
def test_recorded_failures_are_classified(name: str, kind: str, code: str) -> None:
    error = classify(failed(recorded(name)))
    assert (error.kind, error.code) == (kind, code)
    assert error.message and "docker compose" not in error.message


def test_every_recording_is_in_the_table() -> None:
    names = {p.stem for p in RECORDED.glob("*.txt")}
    unknown = [n for n in sorted(names) if isinstance(classify(failed(recorded(n))), ComposeError)]
    assert unknown == []


def test_messages_say_what_to_do() -> None:
    no_command = classify(failed(recorded("no_command")))
    assert isinstance(no_command, ValidationError)
    assert '"command"' in no_command.message and "CMD" in no_command.message
    assert no_command.details["field"] == "command"

    bad_ref = classify(failed(recorded("invalid_reference")))
    assert bad_ref.details == {"field": "image", "provided": "Bad Ref!!"}
    assert "repository name must be lowercase" in bad_ref.message

    missing = classify(failed(recorded("image_missing")))
    assert missing.details["provided"] == "dockyard-test/does-not-exist:nope"
    assert "build or pull it first" in missing.message

    port = classify(failed(recorded("port_allocated")))
    assert isinstance(port, ConflictError)
    assert port.details == {"address": "127.0.0.1", "port": 18977}
    in_use = classify(failed(recorded("port_host_in_use")))
    assert in_use.details == {"address": "127.0.0.1", "port": 18978}

    down = classify(failed(recorded("engine_no_socket")))
    assert isinstance(down, EngineUnavailableError) and down.retry_after
    # The engine being gone wins over the image it could not get.
    assert "unable to get image" in recorded("engine_no_socket")


@pytest.mark.parametrize(
    "stderr",
    [
        "Error response from daemon: boom",
        "",
        "service app: invalid restart policy",
        "Error response from daemon: failed to create task: OCI runtime create failed",
    ],
)
def test_anything_else_stays_a_compose_error(stderr: str) -> None:
    original = failed(stderr)
    assert classify(original) is original
    assert (original.kind, original.code) == ("compose_error", "COMPOSE_FAILED")


def test_address_already_in_use_without_an_address_is_still_a_conflict() -> None:
    error = classify(failed("Error: listen: address already in use"))
    assert isinstance(error, ConflictError) and error.details == {}


async def test_the_runner_raises_the_classified_error(tmp_path: Path) -> None:
    """The real subprocess path: a command that fails as Compose does."""
    runner = CliComposeRunner(Path("/bin/sh"), docker_host=None, timeout=30, stop_timeout=1)
    stderr_file = RECORDED / "no_command.txt"
    argv = ["/bin/sh", "-c", f"cat {shlex.quote(str(stderr_file))} >&2; exit 1"]
    with pytest.raises(DockyardError) as caught:
        await runner.run_argv(argv, verb="up", project="p")
    assert (caught.value.kind, caught.value.code) == ("validation_error", "NO_COMMAND")
    cause = caught.value.__cause__
    assert isinstance(cause, ComposeError) and cause.returncode == 1
    assert "No command specified" in cause.stderr and cause.argv == argv

    argv = ["/bin/sh", "-c", "echo 'Error response from daemon: boom' >&2; exit 3"]
    with pytest.raises(ComposeError) as unknown:
        await runner.run_argv(argv, verb="up", project="p")
    assert unknown.value.returncode == 3 and unknown.value.details["verb"] == "up"
