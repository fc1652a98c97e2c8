"""DATA_DIR on a small tmpfs, filled up (issue 9 #5): upload-zip, PATCH and create answer
507 with nothing half-written, and the service recovers by itself once space is freed."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.engine import PrivateEngine
from tests.faults.faults import FaultServer
from tests.faults.invariants import check_invariants

TMPFS_SIZE = "16m"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _fill(filler: Path) -> None:
    """Write until the filesystem says ENOSPC, big chunks then small ones."""
    with filler.open("wb", buffering=0) as handle:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise


def _leftovers(data_dir: Path) -> list[str]:
    """Spools, staging and backup folders, temporary compose files: all half-writes."""
    found = [str(p) for p in (data_dir / "tmp").glob("*")] if (data_dir / "tmp").is_dir() else []
    for pattern in (".staging-*", ".backup-*", ".compose-*.tmp", ".spool*"):
        found += [str(p) for p in (data_dir / "containers").glob(f"*/{pattern}")]
    return found


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, capture_output=True)


def test_full_disk_is_507_and_heals(
    engine: PrivateEngine, tmp_path: Path, small_disk: Path
) -> None:
    server = FaultServer(tmp_path, engine, DATA_DIR=str(small_disk / "data"))
    server.data_dir = small_disk / "data"
    server.start()
    filler = small_disk / "filler"
    try:
        with server.client() as client:
            created = server.create(client, env={"A": "1"})
            assert created.status_code == 201, created.text
            cuid = created.json()["cuid"]
            old = server.data_dir / "containers" / cuid / "app"
            first = client.post(
                f"/containers/{cuid}/upload-zip",
                content=_zip({"old.txt": b"old"}),
                headers={"Content-Type": "application/zip"},
            )
            server.note(first, "upload_zip", cuid)
            assert first.status_code == 200, first.text
            _fill(filler)

            refused = [
                client.post(
                    f"/containers/{cuid}/upload-zip",
                    content=_zip({"new.txt": os.urandom(256 * 1024)}),
                    headers={"Content-Type": "application/zip"},
                ),
                client.patch(f"/containers/{cuid}", json={"env": {"A": "2"}}),
                client.post(
                    "/containers", json={"image": "dockyard-test/busybox:latest", "start": True}
                ),
            ]
            for answer in refused:
                assert answer.status_code == 507, answer.text
                body = answer.json()
                assert body["error"] == "insufficient_storage", body
                assert body["request_id"] and body["timestamp"]
            assert _leftovers(server.data_dir) == []
            assert {p.name for p in old.iterdir()} == {"old.txt"}
            assert client.get(f"/containers/{cuid}").json()["env"] == {"A": "1"}

            filler.unlink()  # space is back: the same requests now succeed
            healed = client.patch(f"/containers/{cuid}", json={"env": {"A": "2"}})
            server.note(healed, "update_container", cuid)
            assert healed.status_code == 200, healed.text
            upload = client.post(
                f"/containers/{cuid}/upload-zip",
                content=_zip({"new.txt": b"new"}),
                headers={"Content-Type": "application/zip"},
            )
            server.note(upload, "upload_zip", cuid)
            assert upload.status_code == 200, upload.text
            again = server.create(client)
            assert again.status_code == 201, again.text
        check_invariants(server, app={cuid: [{"old.txt", "new.txt"}]})
    finally:
        server.stop()
        filler.unlink(missing_ok=True)
