"""The typed API contract: OpenAPI declares every answer's schema, and the JSON a client
receives keeps the shape seed 001's clients were written against."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import FakeWorld

# The routes that answer something other than JSON: (method, path) -> its media types.
NOT_JSON = {
    ("get", "/metrics"): {"text/plain; version=1.0.0; charset=utf-8"},
    ("get", "/containers/{cuid}/logs"): {"text/plain"},
    ("get", "/containers/{cuid}/download"): {"application/octet-stream"},
    ("get", "/containers/{cuid}/download-zip"): {"application/zip"},
    ("get", "/containers/{cuid}/changes/archive"): {"application/gzip"},
    ("get", "/builds/{job_id}/logs"): {"text/plain"},
}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = doc["components"]["schemas"][name]
    return schema


async def test_every_route_declares_what_it_answers(fake_client: httpx.AsyncClient) -> None:
    doc = (await fake_client.get("/openapi.json")).json()
    checked = 0
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            ok = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            assert len(ok) == 1, where
            ((code, response),) = ok.items()
            content = response.get("content", {})
            if code == "204":
                assert content == {}, f"{where}: a 204 has no body"
                continue
            media = set(content)
            if (method, path) in NOT_JSON:
                assert NOT_JSON[method, path] <= media, where
                media -= NOT_JSON[method, path]
            else:
                assert "application/json" in media, where
            for media_type in media:
                schema = _resolve(doc, content[media_type].get("schema") or {})
                assert schema not in ({}, None), f"{where}: {media_type} has no schema"
                if media_type == "application/json":
                    assert schema.get("properties") or schema.get("anyOf"), where
            checked += 1
    assert checked >= 35  # every JSON route, not a handful


async def test_list_routes_share_the_paging_parameters(fake_client: httpx.AsyncClient) -> None:
    doc = (await fake_client.get("/openapi.json")).json()
    for path, default, maximum in (
        ("/containers", 50, 500),
        ("/audit", 50, 500),
        ("/events", 100, 1000),
    ):
        params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
        limit = params["limit"]["schema"]
        assert (limit["default"], limit["minimum"], limit["maximum"]) == (default, 1, maximum)
        assert "cursor" in params
        # The domain checks the limit, so a bad one answers as it always has.
        for bad in (0, maximum + 1):
            resp = await fake_client.get(path, params={"limit": bad})
            assert resp.status_code == 400 and resp.json()["code"] == "INVALID_LIMIT", path
            assert resp.json()["details"] == {"field": "limit", "provided": bad}


ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00"


async def test_the_container_object_keeps_its_keys_order_and_nulls(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    resp = await fake_client.post(
        "/containers",
        json={"image": "busybox:test", "env": {"K": "v"}, "resources": {"memory": "64M"}},
    )
    assert resp.status_code == 201, resp.text
    cuid = resp.json()["cuid"]
    text = (await fake_client.get(f"/containers/{cuid}")).text
    expected = (
        f'{{"cuid":"{cuid}","name":null,"image":"busybox:test","status":"created",'
        '"env":{"K":"v"},"tags":[],"labels":{},"command":null,'
        '"resources":{"cpus":1.0,"memory":"64m","pids":256},'
        '"ports":[],"publish_all":false,"auto_remove":false,"restart":"no","restart_count":0,"network":"default",'
        '"owner":"admin","engine":"local","constraints":{},"engine_last_seen":null,"host":null,'
        f'"created_at":"{ISO}","started_at":null,"finished_at":null,"exit_code":null,'
        '"error":null,"last_activity_at":null,"idle_timeout":null,"expires_at":null,'
        '"replicas":[{"index":1,"status":"created","ports":[]}]}'
    )
    assert re.fullmatch(re.escape(expected).replace(re.escape(ISO), ISO), text), text
    page = (await fake_client.get("/containers")).text
    assert page.startswith('{"containers":[{"cuid":') and page.endswith('}],"next_cursor":null}')


async def test_accounts_keep_optional_keys_where_they_were(
    fake_client: httpx.AsyncClient,
) -> None:
    listed = (await fake_client.get("/accounts")).json()["accounts"][0]
    assert list(listed) == ["username", "role", "created_at", "quota"]
    assert listed["quota"] == {
        "max_containers": None,
        "max_cpus": None,
        "max_memory": None,
        "max_upload_bytes": None,
    }
    one = (await fake_client.get("/accounts/admin")).json()
    assert list(one) == ["username", "role", "created_at", "quota", "usage"]
    me = (await fake_client.get("/accounts/me")).json()
    assert list(me) == ["username", "role", "created_at", "quota", "usage", "permissions"]
    roles = (await fake_client.get("/roles")).json()["roles"]
    assert list(roles[0]) == ["name", "permissions", "builtin"]  # no description on built-ins
