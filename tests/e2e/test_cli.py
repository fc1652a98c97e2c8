"""The ``dockyard`` command line against the real server and engine, run as a user runs
it: a subprocess with its own config file (``DOCKYARD_CONFIG`` in tmp), and ``exec -it``
through a pseudo-terminal."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import ADMIN
from tests.docker_helpers import BUSYBOX, wait_for
from tests.server import Server

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
STTY = r"([0-9a-f]+(?::[0-9a-f]+){20,})\r\n"  # stty -g
Cli = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_CONFIG"] = str(tmp_path / "cli" / "config.json")
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    """``cli(*args, input=None)``: the command, logged in as the admin."""
    env = cli_env(tmp_path)

    def run(*args: str, input: str | None = None, check: bool = False) -> Any:
        return subprocess.run(
            [DOCKYARD, *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    done = run("login", server.url, "-u", ADMIN[0], "--password-stdin", input=ADMIN[1] + "\n")
    assert done.returncode == 0, done.stderr
    return run


def test_login_stores_a_private_token_and_a_wrong_password_is_one_line(
    server: Server, tmp_path: Path, cli: Cli
) -> None:
    config = tmp_path / "cli" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = json.loads(config.read_text())
    context = saved["contexts"][saved["current"]]
    assert context["url"] == server.url and context["token"].startswith("dyt.")
    assert ADMIN[1] not in config.read_text()

    wrong = cli("login", server.url, "-u", ADMIN[0], "--password-stdin", input="nope\n")
    assert wrong.returncode == 1 and wrong.stdout == ""
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockyard: ")
    assert "request " in lines[0] and "(" in lines[0]

    ls = cli("context", "ls", "--format", "json")
    assert [c["url"] for c in json.loads(ls.stdout)] == [server.url]


def test_run_ps_logs_cp_rm(cli: Cli, tmp_path: Path) -> None:
    started = cli(
        "run",
        "-d",
        "--tag",
        "clitest",
        "-e",
        "GREETING=hi",
        BUSYBOX,
        "sh",
        "-c",
        "echo $GREETING from the cli; sleep 600",
    )
    assert started.returncode == 0, started.stderr
    cuid = started.stdout.strip()

    listed = cli("ps", "--format", "json", "--filter", "tag=clitest")
    boxes = json.loads(listed.stdout)
    assert [b["cuid"] for b in boxes] == [cuid] and boxes[0]["status"] == "running"
    assert cli("ps", "-q").stdout.split() == [cuid]
    table = cli("ps").stdout.splitlines()
    assert table[0].split()[:2] == ["CUID", "IMAGE"] and cuid in table[1]

    logs = cli("logs", "--tail", "5", cuid)
    assert logs.returncode == 0 and "hi from the cli" in logs.stdout

    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (tree / "bin" / "tool.sh").chmod(0o755)
    (tree / "notes.txt").write_text("plain notes\n")
    (tree / "notes.txt").chmod(0o644)
    up = cli("cp", str(tree), f"{cuid}:/app/tree")
    assert up.returncode == 0, up.stderr
    ran = cli("exec", cuid, "/app/tree/bin/tool.sh")
    assert (ran.returncode, ran.stdout) == (0, "tool\n")

    back = tmp_path / "back"
    down = cli("cp", f"{cuid}:/app/tree", str(back))
    assert down.returncode == 0, down.stderr
    assert (back / "notes.txt").read_text() == "plain notes\n"
    assert (back / "bin" / "tool.sh").read_text() == "#!/bin/sh\necho tool\n"
    assert stat.S_IMODE((back / "bin" / "tool.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((back / "notes.txt").stat().st_mode) == 0o644
    one = cli("cp", f"{cuid}:/app/tree/notes.txt", str(tmp_path / "one.txt"))
    assert one.returncode == 0 and (tmp_path / "one.txt").read_text() == "plain notes\n"

    refused = cli("rm", cuid)
    assert refused.returncode == 1 and "running" in refused.stderr
    assert cli("rm", "-f", cuid).returncode == 0
    gone = cli("inspect", cuid)
    assert gone.returncode == 1 and "CONTAINER_NOT_FOUND" in gone.stderr


def test_run_returns_the_exit_code_and_usage_errors_are_2(cli: Cli) -> None:
    done = cli("run", "--rm", BUSYBOX, "sh", "-c", "echo out; exit 3")
    assert done.returncode == 3 and done.stdout == "out\n"
    # --rm: the server removes it (auto_remove); the CLI did not wait for that
    wait_for(lambda: cli("ps", "-a", "-q").stdout.strip() == "", what="the removal")
    assert cli("run", "-p", "eighty:80", BUSYBOX).returncode == 2
    assert cli("nonsense").returncode == 2


def test_exec_it_through_a_pseudo_terminal(cli: Cli, tmp_path: Path) -> None:
    cuid = cli("run", "-d", BUSYBOX, "sleep", "600").stdout.strip()
    # a local shell shows its terminal's settings (stty -g) before and after the CLI
    script = f'stty -g; "{DOCKYARD}" exec -it {cuid} sh; code=$?; stty -g; exit $code'
    child = pexpect.spawn(
        "/bin/sh", ["-c", script], env=cli_env(tmp_path), timeout=30, dimensions=(24, 80)
    )
    try:
        child.expect(STTY)
        before = child.match.group(1)
        child.expect(r"[$#] ")
        child.sendline("echo typed-$((40 + 2))")
        child.expect("typed-42")
        child.expect(r"[$#] ")
        child.setwinsize(33, 111)
        child.sendline("stty size")
        child.expect("33 111")
        # Ctrl-C only once sleep surely runs: its output made the round trip first
        child.sendline("sh -c 'echo sleep-$((1 + 1)); exec sleep 30' && echo not-interrupted")
        child.expect("sleep-2")
        child.sendcontrol("c")
        child.expect(r"[$#] ")
        child.sendline("echo after-ctrl-c")
        child.expect("after-ctrl-c")
        assert b"not-interrupted\r\n" not in child.before
        child.sendline("exit 5")
        child.expect(STTY)
        after = child.match.group(1)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5
    assert after == before, (before, after)  # raw mode undone
    assert cli("rm", "-f", cuid).returncode == 0


def test_exec_i_gives_the_process_its_input_and_its_end(cli: Cli, tmp_path: Path) -> None:
    cuid = cli("run", "-d", BUSYBOX, "sleep", "600").stdout.strip()
    try:
        # a pipe: cat reads "hi", then EOF, and ends; its status is the command's
        piped = subprocess.run(
            ["bash", "-c", f'echo hi | "{DOCKYARD}" exec -i {cuid} cat'],
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (piped.returncode, piped.stdout, piped.stderr) == (0, "hi\n", "")
        # a regular file (epoll refuses it: read in a thread), and the process's own code
        source = tmp_path / "lines.txt"
        source.write_text("one\ntwo\nthree\n")
        with source.open() as stdin:
            counted = subprocess.run(
                [DOCKYARD, "exec", "-i", cuid, "sh", "-c", "wc -l; exit 4"],
                env=cli_env(tmp_path),
                stdin=stdin,
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert (counted.returncode, counted.stdout.strip()) == (4, "3")
        # without -i, like docker's exec: the process's stdin is empty at once
        quiet = cli("exec", cuid, "cat")
        assert (quiet.returncode, quiet.stdout) == (0, "")
    finally:
        assert cli("rm", "-f", cuid).returncode == 0


def test_the_readme_cli_tour_runs(server: Server, tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    block = text.split("<!-- cli-tour:start -->")[1].split("<!-- cli-tour:end -->")[0]
    script = block.split("```bash\n")[1].split("```")[0]
    env = {
        **cli_env(tmp_path),
        "BASE": server.url,
        "PASSWORD": ADMIN[1],
        "DOCKYARD": DOCKYARD,
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("; echo", " || echo")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout  # text mode: the TTY's \r\n reads as \n
    assert "hello from /app\n" in out and "demo\n24 80\n" in out and "exit code 3" in out
    assert "-rwxr-xr-x" in out and "started" in out


def test_run_it_attaches_to_the_main_process(cli: Cli, tmp_path: Path) -> None:
    child = pexpect.spawn(
        DOCKYARD, ["run", "-it", "--rm", BUSYBOX, "sh"], env=cli_env(tmp_path), timeout=60
    )
    try:
        child.expect(r"[$#] ")
        child.sendline("echo main-$((6 * 7))")
        child.expect("main-42")
        child.sendline("exit 7")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 7
    assert cli("ps", "-a", "-q").stdout.strip() == ""  # --rm


def test_sigterm_restores_the_terminal(cli: Cli, tmp_path: Path) -> None:
    cuid = cli("run", "-d", BUSYBOX, "sleep", "600").stdout.strip()
    script = f'stty -g; "{DOCKYARD}" exec -it {cuid} sh; code=$?; stty -g; exit $code'
    child = pexpect.spawn("/bin/sh", ["-c", script], env=cli_env(tmp_path), timeout=30)
    try:
        child.expect(STTY)
        before = child.match.group(1)
        child.expect(r"[$#] ")  # the CLI is in raw mode now
        kids = Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split()
        assert len(kids) == 1
        os.kill(int(kids[0]), signal.SIGTERM)
        child.expect(STTY)
        after = child.match.group(1)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert (child.exitstatus, after) == (128 + signal.SIGTERM, before)
    assert cli("rm", "-f", cuid).returncode == 0


def test_build_follows_the_log_and_images_lists_it(cli: Cli, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo built > /built.txt\n")
    done = cli("build", "-t", "clitest/built:1", str(context))
    assert done.returncode == 0, done.stderr
    assert "Step 1/2" in done.stdout and done.stdout.splitlines()[-1].startswith("sha256:")
    images = json.loads(cli("images", "--format", "json").stdout)
    assert any("clitest/built:1" in image["tags"] for image in images)
    subprocess.run(["docker", "rmi", "-f", "clitest/built:1"], capture_output=True, check=False)


def test_cp_of_single_files(cli: Cli, tmp_path: Path) -> None:
    cuid = cli("run", "-d", BUSYBOX, "sleep", "600").stdout.strip()
    note = tmp_path / "note.txt"
    note.write_text("a note\n")
    assert cli("cp", str(note), f"{cuid}:/app/").returncode == 0
    assert cli("cp", str(note), f"{cuid}:/app/sub/renamed.txt").returncode == 0
    listed = cli("exec", cuid, "sh", "-c", "cat /app/note.txt /app/sub/renamed.txt")
    assert listed.stdout == "a note\na note\n"
    into = tmp_path / "into"
    into.mkdir()
    assert cli("cp", f"{cuid}:/app/sub/renamed.txt", str(into)).returncode == 0
    assert (into / "renamed.txt").read_text() == "a note\n"
    missing = cli("cp", f"{cuid}:/app/nothing.txt", str(into))
    assert missing.returncode == 1 and missing.stderr.startswith("dockyard: ")
    assert cli("rm", "-f", cuid).returncode == 0


def test_accounts_and_keys(server: Server, cli: Cli, tmp_path: Path) -> None:
    made = cli("accounts", "create", "clibob", "--password-stdin", input="bob-secret-pass-1\n")
    assert made.returncode == 0, made.stderr
    names = [a["username"] for a in json.loads(cli("accounts", "ls", "--format", "json").stdout)]
    assert "clibob" in names
    key = json.loads(cli("keys", "create", "--description", "ci", "--format", "json").stdout)
    assert key["key"].startswith("dyk_")
    # a script: no config at all, the server and a service key from the environment
    env = {**cli_env(tmp_path), "DOCKYARD_CONFIG": str(tmp_path / "absent.json")}
    env.update(DOCKYARD_URL=server.url, DOCKYARD_TOKEN=key["key"])
    ps = subprocess.run([DOCKYARD, "ps", "-q"], env=env, capture_output=True, text=True)
    assert ps.returncode == 0, ps.stderr
    assert key["id"] in cli("keys", "ls").stdout
    assert cli("keys", "revoke", key["id"]).returncode == 0
    refused = subprocess.run([DOCKYARD, "ps"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert cli("accounts", "rm", "clibob").returncode == 0
    assert cli("logout").returncode == 0
    assert cli("ps").returncode == 1  # not logged in any more
