"""Start-up failures are one clear line and a non-zero exit, before anything binds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.server import DOCKYARD, serve_env


def run_serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``dockyard serve`` with no APP_USER/APP_PASS unless ``env`` gives them."""
    full = serve_env(tmp_path, **env)
    return subprocess.run(
        [DOCKYARD, "serve"],
        cwd=tmp_path,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "APP_USER and APP_PASS are required"),
        ({"APP_USER": "a", "APP_PASS": "x" * 10, "PORT": "eighty"}, "PORT"),
        ({"APP_USER": "a", "APP_PASS": "x" * 10, "DEFAULT_USER_UID": "root"}, "DEFAULT_USER_UID"),
        ({"APP_USER": "a", "APP_PASS": "short"}, "APP_PASS must have at least 8"),
        (
            {"APP_USER": "a", "APP_PASS": "x" * 10, "DOCKER_HOST": "unix:///nonexistent.sock"},
            "Docker engine cannot be reached",
        ),
    ],
)
def test_bad_start_is_one_line(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    out = run_serve(tmp_path, **env)
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("dockyard:")]
    assert len(errors) == 1 and needle in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    assert "x" * 10 not in out.stderr + out.stdout


def test_env_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("APP_USER=boss\nAPP_PASS=short\n")
    out = run_serve(tmp_path)
    assert out.returncode == 2 and "APP_PASS must have at least 8" in out.stderr
