"""Issue 12's "done means", end to end: one Dockyard drives the local engine, two remote
engines and a single-node Swarm at once, and a container on each of them does what a
local one does - logs, upload, listing, download, terminal, metrics, stop, delete - while
the cluster's page counts all four engines."""

from __future__ import annotations

import io
import zipfile

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, wait_for
from tests.e2e.test_remote_engine import terminal
from tests.engines import ExtraEngines, SwarmEngine
from tests.server import ServeFactory

ENGINES = ("local", "r1", "r2", "sw")


def one_file_zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_one_dockyard_drives_local_two_remote_engines_and_a_swarm(
    serve: ServeFactory, extra_engines: ExtraEngines, swarm_engine: SwarmEngine
) -> None:
    server = serve(engine_poll_interval=0.3, engine_poll_timeout=2)
    http = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    added = [
        http.post("/engines", json={"id": "r1", "addr": extra_engines.addr(1)}),
        http.post("/engines", json={"id": "r2", "addr": extra_engines.addr(2)}),
        http.post("/engines", json={"id": "sw", "addr": swarm_engine.addr, "kind": "swarm"}),
    ]
    assert [resp.status_code for resp in added] == [201, 201, 201], [r.text for r in added]
    cuids: dict[str, str] = {}
    try:
        for engine in ENGINES:
            resp = http.post(
                "/containers",
                json={"image": BUSYBOX, "engine": engine, "start": True,
                      "command": f"echo booted-on-{engine}; sleep 600"},
            )  # fmt: skip
            assert resp.status_code == 201, resp.text
            assert resp.json()["engine"] == engine
            cuids[engine] = resp.json()["cuid"]
        info = http.get("/cluster/info").json()
        assert {e["id"] for e in info["engines"]} >= set(ENGINES)

        for engine, cuid in cuids.items():
            wait_for(
                lambda cuid=cuid, engine=engine: (
                    f"booted-on-{engine}" in http.get(f"/containers/{cuid}/logs").text
                ),
                what=f"the logs of the container on {engine}",
            )
            data = f"made for {engine}\n".encode()
            up = http.post(
                f"/containers/{cuid}/upload-zip",
                params={"path": "/app/in"},
                content=one_file_zip("note.txt", data),
                headers={"Content-Type": "application/zip"},
            )
            assert up.status_code == 200, (engine, up.text)
            listing = http.get(f"/containers/{cuid}/files", params={"path": "/app/in"})
            assert [e["name"] for e in listing.json()["entries"]] == ["note.txt"], engine
            got = http.get(f"/containers/{cuid}/download", params={"path": "/app/in/note.txt"})
            assert got.status_code == 200 and got.content == data, (engine, got.text)
            assert terminal(server, cuid, "cat /app/in/note.txt") == data.decode(), engine
            assert http.get(f"/containers/{cuid}/metrics").status_code == 200, engine

        for engine, cuid in cuids.items():
            stopped = http.post(f"/containers/{cuid}/stop")
            assert stopped.status_code == 200, (engine, stopped.text)
            assert stopped.json()["status"] in ("exited", "created"), (engine, stopped.text)
        for engine, cuid in list(cuids.items()):
            assert http.delete(f"/containers/{cuid}").status_code == 204, engine
            assert http.get(f"/containers/{cuid}").status_code == 404, engine
            del cuids[engine]
    finally:
        for cuid in cuids.values():
            http.delete(f"/containers/{cuid}")
        http.close()
