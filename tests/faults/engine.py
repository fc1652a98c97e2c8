"""A private second dockerd for the fault tests, so that killing or freezing an engine
never touches the one every other test (and every other engineer) uses.

Everything of it lives under ``/tmp/dy-faults-<n>/``: its socket, data root, exec root,
pid file and config. ``--bridge none --iptables=false`` keep it off the host's docker0
and firewall, and it runs in a network namespace of its own (``unshare --net``): with
``--bridge none`` dockerd deletes any interface named docker0 as it starts, which in
the host's namespace is the main engine's. A distinct ``deprecated-key-path`` gives it
its own engine ID; its default address pool (10.213.0.0/16) keeps its networks apart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.docker_helpers import BUSYBOX

ADDRESS_POOL = "base=10.213.0.0/16,size=24"
START_TIMEOUT = 60.0


def _exists(pid: int) -> bool:
    """True while ``pid`` is in the process table, a zombie too: a new dockerd reads the
    old containerd's pid file and waits for it as long as ``kill(pid, 0)`` succeeds."""
    return os.path.exists(f"/proc/{pid}")


def _wait_until(probe: object, timeout: float, what: str) -> None:
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class PrivateEngine:
    """One dockerd (and the containerd it starts) under a directory of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.pidfile = root / "docker.pid"
        self.log = root / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._containerd: list[int] = []

    # -- the CLI against this engine ----------------------------------------

    def docker(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        out = subprocess.run(
            ["docker", "-H", self.host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def managed(self) -> dict[str, str]:
        """cuid -> container state of every container Dockyard labelled here."""
        out = self.docker(
            "ps",
            "-a",
            "--filter",
            "label=dockyard.managed=true",
            "--format",
            '{{.Label "dockyard.cuid"}} {{.State}}',
        )
        pairs = (line.split(" ", 1) for line in out.splitlines() if line.strip())
        return {cuid: state for cuid, state in pairs}

    def container_dirs(self) -> list[str]:
        """The engine's own folders of its containers: one appears the moment a container
        is made, quicker to see than through the API."""
        try:
            return os.listdir(self.root / "data" / "containers")
        except FileNotFoundError:
            return []

    def remove_all(self) -> None:
        ids = self.docker("ps", "-aq").split()
        if ids:
            self.docker("rm", "-f", *ids, check=False, timeout=60)

    def reachable(self) -> bool:
        try:
            out = subprocess.run(
                ["docker", "-H", self.host, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return out.returncode == 0 and out.stdout.strip() != ""

    # -- life ----------------------------------------------------------------

    def start(self) -> None:
        for sub in ("data", "exec"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        config = self.root / "daemon.json"
        config.write_text(json.dumps({"deprecated-key-path": str(self.root / "key.json")}))
        argv = [
            # A network namespace of its own: whatever it does to bridges (with
            # --bridge none, dockerd deletes any interface named docker0 when it
            # starts) stays in there, away from the main engine's docker0.
            "unshare", "--net", "--",
            "dockerd",
            "--host", self.host,
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.pidfile),
            "--default-address-pool", ADDRESS_POOL,
            "--bridge", "none",
            "--iptables=false",
            "--config-file", str(config),
        ]  # fmt: skip
        host_links = set(os.listdir("/sys/class/net"))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = self.proc
        deadline = time.monotonic() + START_TIMEOUT
        while not self.reachable():
            if proc.poll() is not None:
                raise AssertionError(f"dockerd exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("private dockerd did not come up")
            time.sleep(0.1)
        self._containerd = self._children(proc.pid)
        lost = host_links - set(os.listdir("/sys/class/net"))
        assert "docker0" not in lost, "the private dockerd removed the host's docker0"

    def load_image(self, image: str = BUSYBOX) -> None:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        assert save.stdout is not None
        loaded = subprocess.run(
            ["docker", "-H", self.host, "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            check=False,
            timeout=120,
        )
        save.stdout.close()
        assert loaded.returncode == 0, loaded.stderr.decode(errors="replace")
        assert save.wait(timeout=60) == 0

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL dockerd, then wait until its containerd is gone too (it lingers ~2 s,
        and a new dockerd cannot start its own while the old one holds the socket)."""
        if self.proc is None:
            return
        with_children = self._containerd or self._children(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen one dies as well
            self.proc.kill()
        self.proc.wait(timeout=30)
        _wait_until(lambda: not any(_exists(pid) for pid in with_children), 30, "old containerd")
        self._containerd = []

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        if self.running():
            self.kill()
        self.start()

    def ensure_running(self) -> None:
        """Between tests: thawed, up, and empty of containers."""
        if self.running():
            self.thaw()
            if self.reachable():
                self.remove_all()
                return
        self.restart()
        self.remove_all()

    def destroy(self) -> None:
        """Remove its containers (their processes with them), kill it, and remove what
        it left: shims, mounts under its root, then the files."""
        if self.running():
            self.thaw()
            if self.reachable():
                self.remove_all()
        self.kill()
        for container_pid in self._shims():
            os.kill(container_pid, signal.SIGKILL)
        for mount in sorted(self._mounts(), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- /proc ---------------------------------------------------------------

    @staticmethod
    def _children(pid: int) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry))
        return found

    def _shims(self) -> list[int]:
        """Container shims of this engine (they outlive a SIGKILLed dockerd)."""
        found = []
        marker = str(self.root).encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and marker in cmdline:
                found.append(int(entry))
        return found

    def _mounts(self) -> list[str]:
        prefix = str(self.root) + "/"
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            points = [line.split()[4] for line in handle]
        return [p for p in points if p.startswith(prefix)]
