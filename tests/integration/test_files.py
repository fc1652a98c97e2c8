"""Files in and out of real containers, and every rule about links planted inside."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import httpx

from dockyard.domain.containers.compose_doc import container_name
from tests.docker_helpers import BUSYBOX, PYTHON, docker, wait_for
from tests.integration.conftest import Live, zip_of


def snapshot(root: Path) -> dict[str, Any]:
    """Every path below root with its type, content and owner, links not followed."""
    found: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            st = full.lstat()
            if full.is_symlink():
                found[str(full.relative_to(root))] = ("link", os.readlink(full))
            elif full.is_dir():
                found[str(full.relative_to(root))] = ("dir", st.st_uid)
            else:
                found[str(full.relative_to(root))] = ("file", full.read_bytes(), st.st_uid)
    return found


async def upload(live: Live, cuid: str, data: bytes, **params: str) -> httpx.Response:
    return await live.client.post(
        f"/containers/{cuid}/upload-zip",
        content=data,
        params=params,
        headers={"Content-Type": "application/zip"},
    )


async def test_seed_upload_example_then_boot_py_runs(live: Live) -> None:
    c = await live.create(image=PYTHON, env={"APP_ENV": "production"}, tags=["automated"])
    files = {
        "boot.py": b"import os\n"
        b"print(f\"Hello from container {os.environ.get('CONTAINER_UID')}\")\n"
        b"print(open('/app/data/config.json').read())\n",
        "requirements.txt": b"requests==2.31.0\nnumpy==1.24.0\n",
        "data/config.json": b'{"setting": "value"}',
    }
    resp = await upload(live, c["cuid"], zip_of(files))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"files": 3, "bytes": sum(len(v) for v in files.values())}
    app = live.settings.containers_dir / c["cuid"] / "app"
    assert (app / "data" / "config.json").read_bytes() == b'{"setting": "value"}'
    assert (app / "boot.py").stat().st_uid == 1000 and (app / "data").stat().st_uid == 1000
    assert (await live.client.post(f"/containers/{c['cuid']}/start")).status_code == 200
    logs = wait_for(
        lambda: (out := docker("logs", container_name(c["cuid"]))) and "setting" in out and out,
        what="boot.py output",
    )
    assert f"Hello from container {c['cuid']}" in logs


async def test_multipart_subfolder_listing_and_downloads(live: Live) -> None:
    c = await live.create(image=BUSYBOX, command="sleep 600", start=True)
    cuid = c["cuid"]
    body = zip_of({"a.txt": b"alpha", "sub/b.bin": bytes(range(256)) * 10})
    resp = await live.client.post(
        f"/containers/{cuid}/upload-zip",
        params={"path": "/app/in"},
        files={"file": ("x.zip", body, "application/zip")},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["files"] == 2
    # The container sees them at once, as its own user's files.
    assert docker("exec", container_name(cuid), "cat", "/app/in/a.txt") == "alpha"
    listing = (
        await live.client.get(f"/containers/{cuid}/files", params={"path": "/app/in"})
    ).json()
    assert [(e["name"], e["type"]) for e in listing["entries"]] == [
        ("a.txt", "file"),
        ("sub", "dir"),
    ]
    assert listing["entries"][0]["size"] == 5
    one = await live.client.get(
        f"/containers/{cuid}/download", params={"path": "/app/in/sub/b.bin"}
    )
    assert one.status_code == 200 and one.content == bytes(range(256)) * 10
    assert one.headers["content-type"] == "application/octet-stream"
    assert 'filename="b.bin"' in one.headers["content-disposition"]
    folder = await live.client.get(f"/containers/{cuid}/download-zip", params={"path": "/app/in"})
    assert folder.status_code == 200 and folder.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(folder.content)) as zf:
        assert sorted(zf.namelist()) == ["a.txt", "sub/b.bin"]
        assert zf.read("a.txt") == b"alpha"


async def test_paths_outside_app_come_from_the_engine_even_when_stopped(live: Live) -> None:
    c = await live.create(
        image=BUSYBOX, command="sh -c 'echo made > /tmp/out.txt; sleep 600'", start=True
    )
    cuid = c["cuid"]
    wait_for(
        lambda: "made" in docker("exec", container_name(cuid), "cat", "/tmp/out.txt"),
        what="file written",
    )
    await live.client.post(f"/containers/{cuid}/stop")
    resp = await live.client.get(f"/containers/{cuid}/download", params={"path": "/tmp/out.txt"})
    assert resp.status_code == 200 and resp.content == b"made\n"
    passwd = await live.client.get(f"/containers/{cuid}/download", params={"path": "/etc/passwd"})
    assert b"app:x:1000" in passwd.content
    etc = (await live.client.get(f"/containers/{cuid}/files", params={"path": "/etc"})).json()
    assert "passwd" in [e["name"] for e in etc["entries"]]
    missing = await live.client.get(f"/containers/{cuid}/download", params={"path": "/nope"})
    assert missing.status_code == 404
    changes = (await live.client.get(f"/containers/{cuid}/changes")).json()["changes"]
    assert {"path": "/tmp/out.txt", "kind": "added"} in changes
    archive = await live.client.get(f"/containers/{cuid}/changes/archive")
    assert archive.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        member = next(m for m in tar if m.name.endswith("out.txt"))
        assert tar.extractfile(member).read() == b"made\n"  # type: ignore[union-attr]
    zipped = await live.client.get(f"/containers/{cuid}/download-zip", params={"path": "/tmp"})
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        assert zf.read("out.txt") == b"made\n"


async def test_failed_upload_leaves_app_exactly_as_before(live: Live) -> None:
    c = await live.create(image=BUSYBOX)
    cuid = c["cuid"]
    assert (await upload(live, cuid, zip_of({"keep.txt": b"v1", "d/x": b"1"}))).status_code == 200
    app = live.settings.containers_dir / cuid / "app"
    before = snapshot(app)
    # Valid entries first, a bad one last: nothing of it may land.
    bad = zip_of({"keep.txt": b"v2", "new.txt": b"n", "../escape.txt": b"x"})
    resp = await upload(live, cuid, bad)
    assert resp.status_code == 400 and resp.json()["details"]["entry"] == "../escape.txt"
    assert snapshot(app) == before
    assert not (live.settings.containers_dir / cuid / "escape.txt").exists()
    # A conflict found only when moving in (a folder where a file should go): rolled back.
    conflict = zip_of({"keep.txt": b"v3", "d": b"file over folder"})
    resp = await upload(live, cuid, conflict)
    assert resp.status_code == 409
    assert snapshot(app) == before
    # Not a zip at all.
    resp = await upload(live, cuid, b"this is not a zip")
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_ZIP"
    assert snapshot(app) == before
    # No staging or spool files are left behind.
    leftovers = [
        p.name
        for p in (live.settings.containers_dir / cuid).iterdir()
        if p.name not in ("app", "compose.yaml")
    ]
    assert leftovers == []
    assert os.listdir(live.settings.data_dir / "tmp") == []


async def test_links_planted_in_the_container_are_never_followed(live: Live) -> None:
    c = await live.create(image=BUSYBOX, command="sleep 600", start=True)
    cuid = c["cuid"]
    name = container_name(cuid)
    docker(
        "exec",
        name,
        "sh",
        "-c",
        "ln -s / /app/esc && ln -s /etc/shadow /app/l && mkdir /app/real && echo ok > /app/real/f",
    )
    marker = Path("/tmp") / f"dockyard-escape-{cuid}"
    base = f"/containers/{cuid}"
    for path in ("/app/l", "/app/esc/etc/passwd", "/app/esc/etc/shadow"):
        resp = await live.client.get(f"{base}/download", params={"path": path})
        assert resp.status_code in (400, 404), (path, resp.text)
        assert b"root:" not in resp.content
    resp = await live.client.get(f"{base}/files", params={"path": "/app/esc"})
    assert resp.status_code == 400 and resp.json()["code"] == "UNSAFE_PATH"
    resp = await live.client.get(f"{base}/download-zip", params={"path": "/app/esc/etc"})
    assert resp.status_code == 400
    # The folder zip holds real files only: links are skipped, never followed.
    whole = await live.client.get(f"{base}/download-zip", params={"path": "/app"})
    with zipfile.ZipFile(io.BytesIO(whole.content)) as zf:
        assert zf.namelist() == ["real/f"]
    listing = (await live.client.get(f"{base}/files")).json()["entries"]
    assert {e["name"]: e["type"] for e in listing} == {
        "esc": "symlink",
        "l": "symlink",
        "real": "dir",
    }
    # Writes through a link: refused, nothing written outside.
    resp = await upload(live, cuid, zip_of({marker.name: b"x"}), path="/app/esc/tmp")
    assert resp.status_code == 409 and resp.json()["code"] == "PATH_CONFLICT"
    resp = await upload(live, cuid, zip_of({f"esc/tmp/{marker.name}": b"x"}))
    assert resp.status_code == 409
    assert not marker.exists()
    # Replacing the link itself is fine: the link goes, its target is untouched.
    shadow = Path("/etc/shadow").read_bytes()
    resp = await upload(live, cuid, zip_of({"l": b"replaced"}))
    assert resp.status_code == 200
    assert Path("/etc/shadow").read_bytes() == shadow
    assert (live.settings.containers_dir / cuid / "app" / "l").read_bytes() == b"replaced"


async def test_encoded_traversal_never_reads(live: Live) -> None:
    c = await live.create(image=BUSYBOX)
    base = f"/containers/{c['cuid']}"
    for raw in (
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%252e%252e%252fetc%252fpasswd",
        "/app/%00/x",
        "/app/..%2f..%2fcompose.yaml",
    ):
        for endpoint in ("download", "files", "download-zip"):
            resp = await live.client.get(f"{base}/{endpoint}?path={raw}")
            assert resp.status_code in (400, 404), (endpoint, raw, resp.status_code)
            assert b"root:" not in resp.content and b"services" not in resp.content


async def test_upload_limits(live: Live, tmp_path: Path) -> None:
    c = await live.create(image=BUSYBOX)
    limits = live.services.files.limits
    live.services.files.limits = type(limits)(
        max_upload_bytes=10_000, max_download_zip_bytes=5_000, archive=limits.archive
    )
    try:
        resp = await upload(live, c["cuid"], zip_of({"big": os.urandom(20_000)}))
        assert resp.status_code == 413 and resp.json()["code"] == "UPLOAD_TOO_LARGE"
        assert (
            await upload(live, c["cuid"], zip_of({"f": os.urandom(4000), "g": os.urandom(4000)}))
        ).status_code == 200
        resp = await live.client.get(f"/containers/{c['cuid']}/download-zip")
        assert resp.status_code == 413 and resp.json()["code"] == "DOWNLOAD_TOO_LARGE"
    finally:
        live.services.files.limits = limits
    bomb = zip_of({"zeros": b"\0" * (50 * 1024 * 1024)})
    resp = await upload(live, c["cuid"], bomb)
    assert resp.status_code == 413 and resp.json()["code"] == "COMPRESSION_RATIO"


async def test_strangers_and_viewers(live: Live) -> None:
    c = await live.create(image=BUSYBOX)
    bob = await live.user_client("bob2")
    resp = await bob.post(
        f"/containers/{c['cuid']}/upload-zip",
        content=zip_of({"x": b"1"}),
        headers={"Content-Type": "application/zip"},
    )
    assert resp.status_code == 404
    assert (await bob.get(f"/containers/{c['cuid']}/files")).status_code == 404
    viewer = await live.user_client("val", "viewer")
    mine = (await bob.post("/containers", json={"image": BUSYBOX})).json()
    assert (await viewer.get(f"/containers/{mine['cuid']}/files")).status_code == 404
    await bob.aclose()
    await viewer.aclose()


SWAP_D = (
    "while :; do rm -rf /app/d; mkdir /app/d; echo x > /app/d/keep; "
    "rm -rf /app/d; ln -s / /app/d; done"
)
ERROR_KEYS = {"error", "code", "message", "status", "request_id", "timestamp", "details"}


async def test_uploads_racing_a_container_that_swaps_the_target_for_a_link(live: Live) -> None:
    """Every answer is 200 or a 409 in SPEC §9's shape; nothing lands outside /app, and
    no backup folder is kept (what the undo could not reach, the container removed)."""
    c = await live.create(image=BUSYBOX, command=["sh", "-c", SWAP_D], start=True)
    cuid = c["cuid"]
    app = live.settings.containers_dir / cuid / "app"
    wait_for(lambda: os.path.lexists(app / "d") or None, what="the swapping loop")
    canary = f"dockyard-canary-{cuid}"
    archive = zip_of({canary: b"x", "sub/f": b"y", "f": b"z"})
    seen: dict[int, int] = {}
    codes = set()
    for _ in range(150):
        resp = await upload(live, cuid, archive, path="/app/d")
        seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
        assert resp.status_code in (200, 409), resp.text
        if resp.status_code == 409:
            body = resp.json()
            assert set(body) == ERROR_KEYS and body["error"] == "conflict", body
            codes.add(body["code"])
    assert seen.get(409), seen  # the race really was run into
    assert codes <= {"PATH_CHANGED", "PATH_CONFLICT"}, codes
    for outside in (Path("/") / canary, Path("/sub/f"), app.parent / canary):
        assert not outside.exists(), outside
    leftovers = [p.name for p in app.parent.iterdir() if p.name not in ("app", "compose.yaml")]
    assert leftovers == []
