"""The journaled move-in of an upload into /app, with a disk fault at every step.

``Transaction.apply`` is driven as the upload service drives it (check, apply, rollback
on any error) while the file-system calls it makes fail once, at the 1st, 2nd, ... call,
until a run passes with no fault left to inject. After each run ``app/`` is either exactly
as it was or exactly the uploaded result - never a mix - and nothing of the old content is
left behind in the backup folder (which the service deletes)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dockyard.domain.files import hostfs
from dockyard.domain.files.hostfs import HostTree, Transaction
from tests.unit.conftest import dir_fd

# The calls the transaction makes to change or walk the tree; each one may fail.
FAULTY = ("rename", "mkdir", "rmdir", "fchown", "open", "listdir", "stat")

OLD: dict[str, bytes | str | None] = {
    "a.txt": b"old a",
    "sub": None,
    "sub/b.txt": b"old b",
    "sub/deep": None,
    "sub/deep/c.txt": b"old c",
    "planted": "/",  # a link a container's root planted: moved aside, never followed
    "untouched.txt": b"stays",
}
NEW: dict[str, bytes | str | None] = {
    "a.txt": b"new a",
    "planted": b"a file now",
    "sub": None,
    "sub/b.txt": b"new b",
    "sub/new.txt": b"new file",
    "sub/deep": None,
    "sub/deep/c.txt": b"new c",
    "sub/deep/more": None,
    "sub/deep/more/d.txt": b"new d",
    "fresh": None,
    "fresh/e.txt": b"new e",
}


def build(root: Path, layout: dict[str, bytes | str | None]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in layout.items():
        path = root / name
        if content is None:
            path.mkdir()
        elif isinstance(content, str):
            path.symlink_to(content)
        else:
            path.write_bytes(content)


def snapshot(root: Path) -> dict[str, Any]:
    """Every path below root: its type and content (a link's target), links not followed."""
    found: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(mode):
                found[rel] = ("dir",)
            else:
                found[rel] = ("file", path.read_bytes())
    return found


class Faults:
    """Makes the n-th armed call to any of ``FAULTY`` raise ``OSError(code)``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.fail_at: set[int] = set()
        self.code = errno.EIO
        self.armed = False
        self.fired: list[str] = []
        for name in FAULTY:
            monkeypatch.setattr(hostfs.os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.armed:
                self.calls += 1
                if self.calls in self.fail_at:
                    self.fired.append(name)
                    raise OSError(self.code, f"injected {os.strerror(self.code)} in {name}")
            return real(*args, **kwargs)

        return call

    @contextmanager
    def armed_at(self, *calls: int, code: int = errno.EIO) -> Iterator[None]:
        self.calls, self.fail_at, self.code, self.armed = 0, set(calls), code, True
        try:
            yield
        finally:
            self.armed = False


class Upload:
    """One container's project folder: ``app/`` with the old tree, the staged new one."""

    def __init__(self, project: Path, target: tuple[str, ...] = ()) -> None:
        self.project = project
        self.app = project / "app"
        self.target = target
        build(self.app, OLD)
        build(project / "staging", NEW)
        (project / "backup").mkdir()
        self.before = snapshot(self.app)
        self.staged = snapshot(project / "staging")

    def expected_after(self) -> dict[str, Any]:
        """The old tree with the staged one merged in at ``target``."""
        after = dict(self.before)
        prefix = "/".join(self.target)
        for depth in range(1, len(self.target) + 1):
            after["/".join(self.target[:depth])] = ("dir",)
        for rel, entry in self.staged.items():
            after[f"{prefix}/{rel}" if prefix else rel] = entry
        return after

    def run(self, faults: Faults | None = None, *, apply_at: int = 0, undo_at: int = 0) -> bool:
        """check + apply (+ rollback), as the service does; True if the apply went through."""
        tree = HostTree(str(self.app), os.getuid(), os.getgid())
        with (
            dir_fd(self.project / "staging") as staging_fd,
            dir_fd(self.project / "backup") as backup_fd,
        ):
            txn = Transaction(tree, staging_fd, backup_fd)
            txn.check(self.target)
            try:
                if faults is None:
                    txn.apply(self.target)
                else:
                    with faults.armed_at(apply_at):
                        txn.apply(self.target)
            except Exception:  # an OSError, or the DockyardError hostfs made of it
                if faults is None:
                    raise
                with faults.armed_at(undo_at):
                    txn.rollback()
                return False
            return True

    def assert_whole(self, applied: bool, faults: Faults | None = None) -> None:
        now = snapshot(self.app)
        fired = faults.fired if faults else []
        if applied:
            assert now == self.expected_after(), fired
        else:
            assert now == self.before, fired
            # The backup folder (deleted by the service) holds nothing of the old tree.
            old = {v for v in self.before.values() if v[0] != "dir"}
            kept = snapshot(self.project / "backup")
            assert not [k for k, v in kept.items() if v in old], kept


TARGETS = [(), ("sub",), ("made", "for", "it")]


@pytest.mark.parametrize("target", TARGETS, ids=["app", "existing folder", "new folders"])
def test_clean_apply_gives_exactly_the_new_tree(tmp_path: Path, target: tuple[str, ...]) -> None:
    upload = Upload(tmp_path, target)
    assert upload.run()
    upload.assert_whole(applied=True)
    # What was replaced went aside whole (the service deletes it); the link was not followed.
    aside = sorted(snapshot(upload.project / "backup").values())
    if target == ():
        assert aside == [("file", b"old a"), ("file", b"old b"), ("file", b"old c"), ("link", "/")]
    else:
        assert aside == []


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
@pytest.mark.parametrize("target", TARGETS, ids=["app", "existing folder", "new folders"])
def test_a_fault_at_any_step_leaves_the_old_tree_or_the_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: tuple[str, ...], code: int
) -> None:
    faults = Faults(monkeypatch)
    for n in range(1, 500):
        upload = Upload(tmp_path / str(n), target)
        faults.fired.clear()
        faults.code = code
        applied = upload.run(faults, apply_at=n)
        upload.assert_whole(applied, faults)
        if not faults.fired:
            assert applied  # every step has failed once; this run had nothing left to fail
            break
        assert not applied, f"fault in {faults.fired} at call {n} was not reported"
    else:
        raise AssertionError("the apply never ran out of steps")
    assert n > 10  # the faults really were spread over the whole journal


@pytest.mark.parametrize("target", TARGETS, ids=["app", "existing folder", "new folders"])
def test_a_second_fault_during_rollback_still_restores_the_old_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: tuple[str, ...]
) -> None:
    """A fault in the middle of the apply, then a transient one in the undo."""
    faults = Faults(monkeypatch)
    case = 0
    for apply_at in (3, 8, 14):
        for undo_at in range(1, 60):
            case += 1
            upload = Upload(tmp_path / str(case), target)
            faults.fired.clear()
            assert not upload.run(faults, apply_at=apply_at, undo_at=undo_at)
            upload.assert_whole(False, faults)
            if len(faults.fired) < 2:
                break  # the rollback had fewer steps than undo_at
    assert case > 8  # the second fault really did land all over the undo
