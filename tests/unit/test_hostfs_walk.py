"""The walk behind download-zip: lazy, flat in memory, bounded in depth, never a link."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.domain.files.hostfs import HostTree
from dockyard.domain.files.walk import MAX_DEPTH
from dockyard.errors import ValidationError

MANY = 20_000
# The list-based walk this replaced held ~150 bytes a file (name, mode, tuple) for the
# whole walk, about 3 MiB here, and its size pass more; the lazy one holds a few entries.
FLAT_BYTES = 512 * 1024


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = tmp_path_factory.mktemp("many") / "app"
    (app / "sub").mkdir(parents=True)
    for n in range(MANY):
        where = app / "sub" if n % 2 else app
        os.close(os.open(where / f"file-{n:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    return app


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def drain(files: Iterator[tuple[tuple[str, ...], os.stat_result, int]]) -> int:
    count = 0
    for _rel, _st, fd in files:
        os.close(fd)
        count += 1
    return count


def test_walking_many_files_takes_flat_memory_and_no_descriptor(many_files: Path) -> None:
    tree = HostTree(str(many_files), os.getuid(), os.getgid())
    before = open_fds()
    counted: list[int] = []
    walk_peak = peak_bytes(lambda: counted.append(drain(tree.walk_files(()))))
    size_peak = peak_bytes(lambda: counted.append(tree.size(())))
    assert counted == [MANY, 0]  # the files are empty
    assert walk_peak < FLAT_BYTES, walk_peak
    assert size_peak < FLAT_BYTES, size_peak
    assert open_fds() == before


def test_an_abandoned_walk_closes_its_descriptors(many_files: Path) -> None:
    tree = HostTree(str(many_files), os.getuid(), os.getgid())
    before = open_fds()
    files = tree.walk_files(())
    for _ in range(3):
        os.close(next(files)[2])
    files.close()
    assert open_fds() == before


def test_the_walk_finds_nested_files_and_never_follows_a_link(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "a" / "b").mkdir(parents=True)
    (app / "a" / "b" / "deep.txt").write_bytes(b"deep")
    (app / "top.txt").write_bytes(b"top!!")
    (app / "esc").symlink_to("/")
    (app / "a" / "etc").symlink_to("/etc")
    (app / "a" / "fifo").mkdir()
    os.mkfifo(app / "a" / "fifo" / "pipe")
    tree = HostTree(str(app), os.getuid(), os.getgid())
    found = {}
    for rel, st, fd in tree.walk_files(()):
        found["/".join(rel)] = (st.st_size, os.read(fd, 10))
        os.close(fd)
    assert found == {"a/b/deep.txt": (4, b"deep"), "top.txt": (5, b"top!!")}
    assert tree.size(()) == 9
    assert tree.size(("a",)) == 4


def test_a_folder_nested_too_deep_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    app = tmp_path / "app"
    deep = app.joinpath(*["d"] * (MAX_DEPTH + 2))
    deep.mkdir(parents=True)
    (deep / "f").write_bytes(b"x")
    tree = HostTree(str(app), os.getuid(), os.getgid())
    before = open_fds()
    with pytest.raises(ValidationError) as caught:
        tree.size(())
    assert caught.value.code == "FOLDER_TOO_DEEP"
    assert open_fds() == before
    # Just within the limit, the walk reaches the bottom.
    assert tree.size(("d", "d")) == 1
