"""The command line's own logic: arguments (cp targets, -e, -p, --filter), the config
file, output formatting, and that client commands never load the server's stack."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.config import Config, ConfigError
from dockyard.cli.output import ago, error_line, size_text, table
from dockyard.cli.parser import build_parser
from dockyard.cli.parsing import (
    CopyEnd,
    UsageError,
    parse_copy,
    parse_copy_end,
    parse_env,
    parse_filters,
    parse_port,
)
from dockyard.client import NotFound


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("c123:/app/x", CopyEnd("/app/x", "c123")),
        ("c123:", CopyEnd("/app", "c123")),
        ("./a:b", CopyEnd("./a:b")),
        ("/tmp/x", CopyEnd("/tmp/x")),
        ("notes.txt", CopyEnd("notes.txt")),
        ("C:\\x", CopyEnd("C:\\x")),
    ],
)
def test_cp_targets(text: str, end: CopyEnd) -> None:
    assert parse_copy_end(text) == end


def test_cp_needs_exactly_one_remote_side() -> None:
    src, dst = parse_copy("./tree", "box1:/app/tree")
    assert (src.remote, dst.cuid) == (False, "box1")
    for pair in (("a", "b"), ("box1:/a", "box2:/b")):
        with pytest.raises(UsageError):
            parse_copy(*pair)


def test_env_pairs() -> None:
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    assert parse_env(["HOME"], {"HOME": "/root"}) == {"HOME": "/root"}
    for bad in (["=1"], ["UNSET"]):
        with pytest.raises(UsageError):
            parse_env(bad, {})


def test_ports() -> None:
    assert parse_port("8080:80") == {"host": 8080, "container": 80, "protocol": "tcp"}
    assert parse_port("80") == {"host": None, "container": 80, "protocol": "tcp"}
    assert parse_port("53:53/udp")["protocol"] == "udp"
    for bad in ("eighty:80", "80/sctp", "0:80", "1:70000"):
        with pytest.raises(UsageError):
            parse_port(bad)


def test_filters() -> None:
    found = parse_filters(["status=running", "status=paused", "tag=web"])
    assert found == {"status": ["running", "paused"], "tag": ["web"]}
    with pytest.raises(UsageError):
        parse_filters(["colour=red"])


def test_run_keeps_the_command_after_the_image() -> None:
    args = build_parser().parse_args(["run", "--rm", "-e", "A=1", "img", "sh", "-c", "exit 3"])
    assert (args.image, args.cmd, args.rm, args.env) == (
        "img",
        ["sh", "-c", "exit 3"],
        True,
        ["A=1"],
    )


def test_tables_align_and_format(capsys: pytest.CaptureFixture[str]) -> None:
    table(["cuid", "status"], [["c1", "running"], ["c-long-id", None]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["CUID        STATUS", "c1          running", "c-long-id"]
    assert size_text(1536) == "1.5KiB" and size_text(12) == "12B"
    assert ago("2026-01-01T00:00:00+00:00", now=_at("2026-01-01T00:02:30+00:00")) == (
        "2 minutes ago"
    )


def _at(stamp: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(stamp)


def test_an_api_error_is_one_line() -> None:
    err = NotFound(
        {
            "error": "not_found",
            "code": "CONTAINER_NOT_FOUND",
            "message": "no container c1",
            "request_id": "req-1",
        },
        status=404,
    )
    assert error_line(err) == "dockyard: no container c1 (CONTAINER_NOT_FOUND, request req-1)"


def test_config_contexts_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "config.json"
    env = {"DOCKYARD_CONFIG": str(path)}
    config = Config.load(env)
    with pytest.raises(ConfigError):
        config.target(None, env)
    config.contexts["a"] = {"url": "http://a:8080", "token": "dyt.a"}
    config.contexts["b"] = {"url": "http://b:8080", "token": "dyt.b"}
    config.current = "a"
    config.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Config.load(env)
    assert again.target(None, env).url == "http://a:8080"
    assert again.target("b", env).token == "dyt.b"
    with pytest.raises(ConfigError):
        again.target("c", env)
    over = {**env, "DOCKYARD_URL": "http://c", "DOCKYARD_TOKEN": "dyt.c"}
    assert again.target(None, over) == again.target(None, over).__class__("http://c", "dyt.c", "a")
    assert json.loads(path.read_text())["current"] == "a"


SERVER_STACK = ("fastapi", "starlette", "sqlalchemy", "alembic", "aiodocker", "uvicorn")


@pytest.mark.parametrize("argv", [["--help"], ["ps"], ["completion", "bash"]])
def test_client_commands_never_load_the_server_stack(argv: list[str], tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from dockyard.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_STACK!r}))\n"
        "print('httpx._main' in sys.modules and sys.modules['httpx._main'] is not None)\n"
    )
    env = {"DOCKYARD_CONFIG": str(tmp_path / "none.json"), "PATH": "/usr/bin:/bin"}
    env["DOCKYARD_URL"] = "http://127.0.0.1:9"  # refused: the client loads, then fails
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    lines = done.stdout.strip().splitlines()
    # no server module; and httpx's own command line (rich, click, pygments) is skipped
    assert lines[-2:] == ["[]", "False"], done.stdout + done.stderr


PS_PAGE = {
    "containers": [
        {
            "cuid": "c1",
            "image": "img",
            "command": "sleep 9",
            "created_at": "2026-01-01T00:00:00+00:00",
            "status": "running",
            "ports": [{"host": 8080, "container": 80, "protocol": "tcp"}],
            "name": None,
        }
    ],
    "next_cursor": None,
}


class PsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        data = json.dumps(PS_PAGE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_ps_loads_neither_models_nor_an_http_stack(tmp_path: Path) -> None:
    """``ps`` over plain http lists raw JSON read with the stdlib (``client/quick.py``):
    pydantic, the models (~300 ms) and httpx (~100 ms) stay unloaded."""
    probe = (
        "import sys\n"
        "from dockyard.cli.session import run\n"
        "from dockyard.cli.parser import build_parser\n"
        "code = run(build_parser().parse_args(['ps', '--format', 'json']))\n"
        "mods = ('pydantic', 'dockyard.client.models', 'httpx')\n"
        "print(code, *(m in sys.modules for m in mods))\n"
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), PsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {"DOCKYARD_CONFIG": str(tmp_path / "none.json")}
    env["DOCKYARD_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        server.shutdown()
        server.server_close()
    out, _, last = done.stdout.strip().rpartition("\n")
    assert last == "0 False False False", done.stdout + done.stderr
    assert json.loads(out)[0]["cuid"] == "c1"


def test_raw_mode_is_undone_on_an_exception() -> None:
    import os
    import termios

    from dockyard.cli.terminal import raw_mode

    leader, follower = os.openpty()
    try:
        before = termios.tcgetattr(follower)
        with pytest.raises(RuntimeError), raw_mode(follower):
            assert termios.tcgetattr(follower)[3] & termios.ECHO == 0  # raw: no echo
            raise RuntimeError("boom")
        assert termios.tcgetattr(follower) == before
    finally:
        os.close(leader)
        os.close(follower)


def test_completion_scripts_name_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.cli import main

    with pytest.raises(SystemExit) as done:
        main(["completion", "bash"])
    script = capsys.readouterr().out
    assert done.value.code == 0 and "complete -o default -F _dockyard dockyard" in script
    for word in ("ps", "run", "exec", "cp", "--password-stdin", "revoke"):
        assert word in script


def test_build_steps_are_read_from_the_log() -> None:
    from dockyard.client.progress import StepTracker, build_step

    assert build_step("Step 2/5 : RUN echo hi") == (2, 5)
    assert build_step(" ---> Running in 1234") is None
    steps = StepTracker()
    lines = [
        steps.line(t) for t in ("Pulling x", "Step 1/2 : FROM x", " ---> 12", "Step 2/2 : RUN y")
    ]
    assert [(ln.step, ln.total_steps, ln.starts_step) for ln in lines] == [
        (None, None, False),
        (1, 2, True),
        (1, 2, False),
        (2, 2, True),
    ]


def test_a_terminal_that_reports_no_size_gets_a_usable_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pseudo-terminal nobody sized reports 0 x 0 (``script``, some CI runners); the
    server refuses 0, so exec and run -it would fail there (found trying the README's
    CLI tour under ``script``)."""
    from dockyard.cli.terminal import window_size

    monkeypatch.setattr(os, "get_terminal_size", lambda *_: os.terminal_size((0, 0)))
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    assert window_size() == (80, 24)
    monkeypatch.setattr(os, "get_terminal_size", lambda *_: os.terminal_size((132, 43)))
    assert window_size() == (132, 43)
