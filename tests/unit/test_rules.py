"""Pure rules: lifecycle transitions, cursors, settings, Compose argv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.adapters.compose.runner import CliComposeRunner
from dockyard.domain.containers.lifecycle import Action, Plan, plan
from dockyard.domain.models import Status
from dockyard.domain.paging import decode_cursor, encode_cursor
from dockyard.errors import StateError, ValidationError
from dockyard.settings import Settings, describe_error


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [
        (Action.START, Status.CREATED, Plan.RUN),
        (Action.START, Status.RUNNING, Plan.NOOP),
        (Action.STOP, Status.EXITED, Plan.NOOP),
        (Action.STOP, Status.PAUSED, Plan.RUN),
        (Action.PAUSE, Status.RUNNING, Plan.RUN),
        (Action.UNPAUSE, Status.PAUSED, Plan.RUN),
        (Action.RESTART, Status.EXITED, Plan.RUN),
        (Action.KILL, Status.RUNNING, Plan.RUN),
    ],
)
def test_possible_transitions(action: Action, status: Status, expected: Plan) -> None:
    assert plan(action, status) is expected


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (Action.PAUSE, Status.EXITED),
        (Action.PAUSE, Status.CREATED),
        (Action.UNPAUSE, Status.EXITED),
        (Action.KILL, Status.EXITED),
        (Action.START, Status.PAUSED),
        (Action.RESTART, Status.PAUSED),
        (Action.START, Status.MISSING),
    ],
)
def test_impossible_transitions(action: Action, status: Status) -> None:
    with pytest.raises(StateError) as err:
        plan(action, status)
    assert err.value.details == {"action": action.value, "status": status.value}


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    for junk in ("", "abc", "czo=x", encode_cursor(1)[:-1] + "!"):
        with pytest.raises(ValidationError):
            decode_cursor(junk)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"DEFAULT_USER_UID": "root"}, "DEFAULT_USER_UID"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DEV_MODE": "perhaps"}, "DEV_MODE"),
    ],
)
def test_bad_setting_names_itself_in_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(Exception) as err:
        Settings(_env_file=None)  # type: ignore[call-arg]
    line = describe_error(err.value)
    assert name in line and "\n" not in line


def test_settings_from_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("APP_USER=boss\nAPP_PASS=s3cret-pass\nPORT=9999\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.app_user == "boss" and settings.port == 9999
    assert settings.app_pass is not None and "s3cret" not in repr(settings)
    assert settings.async_database_url.startswith("sqlite+aiosqlite:///")
    pg = Settings(_env_file=None, database_url="postgresql://u@h/db")  # type: ignore[call-arg]
    assert pg.async_database_url == "postgresql+asyncpg://u@h/db"


def test_compose_argv_is_data(tmp_path: Path) -> None:
    runner = CliComposeRunner(Path("/bin/compose"), docker_host=None, timeout=5, stop_timeout=7)
    (tmp_path / "compose.yaml").write_text("name: x\n")
    argv = runner.base_argv("cabc", tmp_path) + runner.verb_argv("stop")
    assert argv == [
        "/bin/compose",
        "--project-name",
        "cabc",
        "--project-directory",
        str(tmp_path),
        "--file",
        str(tmp_path / "compose.yaml"),
        "stop",
        "--timeout",
        "7",
    ]
    assert runner.verb_argv("up")[:2] == ["up", "--detach"]
    assert "--pull" in runner.verb_argv("create")


async def test_compose_runs_at_a_lower_cpu_priority(tmp_path: Path) -> None:
    """COMPOSE_NICE: under writer load the service's own loop gets the CPU first."""
    script = tmp_path / "compose"
    script.write_text("#!/bin/sh\nnice\n")  # `nice` alone prints the niceness it runs at
    script.chmod(0o755)
    ours = os.nice(0)
    niced = CliComposeRunner(script, docker_host=None, timeout=5, stop_timeout=1, nice=10)
    plain = CliComposeRunner(script, docker_host=None, timeout=5, stop_timeout=1)
    assert int(await niced.run_argv([str(script)], verb="version")) == min(ours + 10, 19)
    assert int(await plain.run_argv([str(script)], verb="version")) == ours
