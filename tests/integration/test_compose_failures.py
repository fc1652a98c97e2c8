"""A request the engine refuses for its content answers 4xx and leaves nothing behind
(SPEC §9), against the real engine and the real Compose binary."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from datetime import datetime

from tests.docker_helpers import docker
from tests.integration.conftest import Live

ENVELOPE_KEYS = {"error", "code", "message", "status", "request_id", "timestamp", "details"}


def import_image_without_command() -> str:
    """An image with no CMD and no ENTRYPOINT: an empty filesystem, imported locally."""
    ref = f"dockyard-test/nocmd-{uuid.uuid4().hex[:12]}:latest"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    subprocess.run(
        ["docker", "import", "--change", "LABEL dockyard.test=true", "-", ref],
        input=buffer.getvalue(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    return ref


async def test_image_without_command_is_a_4xx_and_leaves_nothing(live: Live) -> None:
    image = import_image_without_command()
    try:
        assert docker("image", "inspect", image, "--format", "{{.Config.Cmd}}").strip() in (
            "[]",
            "<nil>",
        )
        for start in (True, False):
            resp = await live.client.post("/containers", json={"image": image, "start": start})
            assert resp.status_code == 400, resp.text
            body = resp.json()
            assert set(body) == ENVELOPE_KEYS
            assert (body["error"], body["code"], body["status"]) == (
                "validation_error",
                "NO_COMMAND",
                400,
            )
            assert body["details"]["field"] == "command" and '"command"' in body["message"]
            assert body["request_id"] == resp.headers["x-request-id"]
            assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
        # Nothing half-made: no record, no project folder, no container on the engine.
        listed = (await live.client.get("/containers")).json()["containers"]
        assert [c for c in listed if c["image"] == image] == []
        containers_dir = live.settings.containers_dir
        assert not containers_dir.exists() or list(containers_dir.iterdir()) == []
        assert docker("ps", "-aq", "--filter", f"ancestor={image}").split() == []
        # The same image with a command is fine.
        made = await live.create(image=image, command=["/nothing-here"])
        assert made["status"] == "created"
        assert (await live.client.delete(f"/containers/{made['cuid']}")).status_code == 204
    finally:
        for cid in docker("ps", "-aq", "--filter", f"ancestor={image}").split():
            docker("rm", "-f", cid, check=False)
        docker("rmi", "-f", image, check=False)
