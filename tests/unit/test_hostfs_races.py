"""An upload's move-in when the container changes the target meanwhile, and when the
undo itself fails: a conflict (409 PATH_CHANGED), never an I/O error; nothing written
outside ``app/``; and never the only copy of the old files deleted."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.domain.files import hostfs
from dockyard.domain.files.backends import HostApp, Staged
from dockyard.domain.files.hostfs import HostTree, Transaction
from dockyard.errors import ConflictError, StorageIOError
from tests.unit.conftest import dir_fd


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Project:
    """``app/`` (with ``d/`` and a file), a staged upload for ``/app/d``, and a canary
    folder outside ``app/`` that a followed link would write into."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.app = root / "app"
        (self.app / "d").mkdir(parents=True)
        (self.app / "a.txt").write_bytes(b"old a")
        self.outside = root / "outside"
        self.outside.mkdir()
        self.tree = HostTree(str(self.app), os.getuid(), os.getgid())

    def stage(self, staging_fd: int) -> Staged:
        for name in ("x.txt", "y.txt"):
            fd = os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=staging_fd)
            os.write(fd, b"new")
            os.close(fd)
        os.mkdir("sub", dir_fd=staging_fd)
        return Staged(2, 6)

    def move_in(self, target: tuple[str, ...], between: Callable[[], Any]) -> None:
        """check, then ``between`` (the container's change), then apply (+ rollback)."""
        with dir_fd(self.root / "staging") as staging, dir_fd(self.root / "backup") as backup:
            self.stage(staging)
            txn = Transaction(self.tree, staging, backup)
            txn.check(target)
            between()
            try:
                txn.apply(target)
            except BaseException:
                txn.rollback()
                raise


def swap_for_link(project: Project) -> None:
    shutil.rmtree(project.app / "d")
    (project.app / "d").symlink_to(project.outside)


def swap_for_file(project: Project) -> None:
    shutil.rmtree(project.app / "d")
    (project.app / "d").write_bytes(b"a file now")


def swap_parent_for_link(project: Project) -> None:
    shutil.rmtree(project.app / "d")
    (project.app / "d").symlink_to(project.outside)
    (project.outside / "e").mkdir()


CHANGES = {
    "d is a link": (("d",), swap_for_link),
    "d is a file": (("d",), swap_for_file),
    "a link above the target": (("d", "e"), swap_parent_for_link),
}


@pytest.mark.parametrize("case", CHANGES, ids=list(CHANGES))
def test_a_target_changed_between_check_and_apply_is_a_conflict(tmp_path: Path, case: str) -> None:
    project = Project(tmp_path)
    target, change = CHANGES[case]
    if len(target) == 2:
        (project.app / "d" / "e").mkdir()
    with pytest.raises(ConflictError) as caught:
        project.move_in(target, lambda: change(project))
    assert caught.value.code == "PATH_CHANGED"
    assert caught.value.details == {"path": "/app/" + "/".join(target)}
    assert sorted(p.name for p in project.outside.rglob("*")) == (["e"] if len(target) == 2 else [])


def test_a_folder_made_meanwhile_is_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container makes the missing target just before our mkdir (EEXIST)."""
    project = Project(tmp_path)
    real_mkdir = os.mkdir

    def racing_mkdir(name: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if name == "new":
            (project.app / "new").symlink_to(project.outside)
        real_mkdir(name, mode, dir_fd=dir_fd)

    monkeypatch.setattr(hostfs.os, "mkdir", racing_mkdir)
    with pytest.raises(ConflictError) as caught:
        project.move_in(("new",), lambda: None)
    assert caught.value.code == "PATH_CHANGED"
    assert list(project.outside.iterdir()) == []


def test_a_folder_removed_under_the_move_is_a_conflict(tmp_path: Path) -> None:
    """The target is deleted while we hold its descriptor: renames into it fail ENOENT."""
    project = Project(tmp_path)
    real_merge = Transaction._merge

    def merge_after_rmdir(txn: Transaction, src: int, dst: int, at: Any, *, apply: bool) -> None:
        if apply and at == ("d",):
            os.rmdir(project.app / "d")
        real_merge(txn, src, dst, at, apply=apply)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Transaction, "_merge", merge_after_rmdir)
        with pytest.raises(ConflictError) as caught:
            project.move_in(("d",), lambda: None)
    assert caught.value.code == "PATH_CHANGED"


def test_a_real_io_error_stays_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project(tmp_path)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(hostfs.os, "rename", broken)
    with pytest.raises(OSError) as caught:
        project.move_in(("d",), lambda: None)
    assert caught.value.errno == errno.EIO


def host_app() -> HostApp:
    # _apply (the staged move into the host folder) touches neither the containers nor
    # the downloads.
    return HostApp(None, None, 0, 0)  # type: ignore[arg-type]


def test_an_incomplete_rollback_keeps_the_backup_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old a.txt is set aside, placing the new one fails, and so does (twice) putting
    the old one back: the backup folder holds its only copy and must survive."""
    project = Project(tmp_path)
    calls: list[str] = []
    real_rename = os.rename

    def rename(*args: Any, **kwargs: Any) -> None:
        calls.append(args[0])
        if len(calls) >= 2:  # the 1st sets a.txt aside; every later one fails
            raise OSError(errno.EIO, "injected")
        real_rename(*args, **kwargs)

    def stage(staging_fd: int) -> Staged:
        fd = os.open("a.txt", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=staging_fd)
        os.write(fd, b"new a")
        os.close(fd)
        return Staged(1, 5)

    monkeypatch.setattr(hostfs.os, "rename", rename)
    with pytest.raises(StorageIOError):
        host_app()._apply(tmp_path, project.tree, (), stage)
    assert len(calls) == 4  # aside, place, and the undo's two tries
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".backup-")
    assert [p.read_bytes() for p in (tmp_path / leftovers[0]).iterdir()] == [b"old a"]


def test_a_complete_rollback_removes_the_backup_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project(tmp_path)
    before = sorted(str(p.relative_to(project.app)) for p in project.app.rglob("*"))
    real_rename = os.rename
    calls: list[str] = []

    def rename(*args: Any, **kwargs: Any) -> None:
        calls.append(args[0])
        if len(calls) == 2:
            raise OSError(errno.EIO, "injected")
        real_rename(*args, **kwargs)

    monkeypatch.setattr(hostfs.os, "rename", rename)
    with pytest.raises(StorageIOError):
        host_app()._apply(tmp_path, project.tree, ("d",), project.stage)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert sorted(str(p.relative_to(project.app)) for p in project.app.rglob("*")) == before


def test_a_failed_chown_of_a_new_folder_leaks_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project(tmp_path)

    def fchown(*args: Any) -> None:
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(hostfs.os, "fchown", fchown)
    before = open_fds()
    for n in range(3):
        with pytest.raises(StorageIOError), project.tree.directory((f"n{n}",), create=True):
            pass
    assert open_fds() == before
