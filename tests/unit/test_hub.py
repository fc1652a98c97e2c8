"""Hub webhook deliveries (issue 11): what a payload names, what counts as the same
delivery, which repository a key accepts; and, over the fake engine, keys that are
owner-scoped and shown once, replays that queue nothing, and unknown keys that look
like unknown paths."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from dockyard.domain.automation.hub import parse_delivery, target_of
from dockyard.domain.automation.hubkeys import WebhookKey
from dockyard.errors import ValidationError
from tests.conftest import FakeWorld, basic

HUB = {
    "push_data": {"pushed_at": 1385141110, "images": ["a", "b"], "pusher": "someone"},
    "repository": {"repo_name": "username/reponame", "name": "reponame", "star_count": 1},
    "callback_url": "https://registry.hub.docker.com/u/username/reponame/hook/x/",
}


def _body(data: Any) -> bytes:
    return json.dumps(data).encode()


def _key(image: str) -> WebhookKey:
    return WebhookKey(id="k1", owner="alice", key_hash="h", image=image, build=None)


def test_docker_hubs_payload_names_the_repository_and_tag() -> None:
    delivery = parse_delivery(_body({**HUB, "push_data": {**HUB["push_data"], "tag": "v2"}}))
    assert (delivery.repository, delivery.tag, delivery.source) == (
        "username/reponame",
        "v2",
        "docker_hub",
    )
    assert parse_delivery(_body(HUB)).tag is None  # the key's tag then


def test_the_same_hub_push_is_the_same_delivery_whatever_else_differs() -> None:
    first = parse_delivery(_body(HUB))
    resent = parse_delivery(_body({**HUB, "callback_url": "elsewhere", "extra": 1}), "d-2")
    later = parse_delivery(_body({**HUB, "push_data": {"pushed_at": 1385141111}}))
    tagged = parse_delivery(_body({**HUB, "push_data": {**HUB["push_data"], "tag": "v2"}}))
    assert first.fingerprint == resent.fingerprint
    assert len({first.fingerprint, later.fingerprint, tagged.fingerprint}) == 3


def test_a_plain_body_is_the_same_delivery_only_with_the_same_bytes_and_header() -> None:
    body = _body({"image": "me/app:v2"})
    plain = parse_delivery(body)
    assert (plain.repository, plain.tag, plain.source) == ("me/app", "v2", "plain")
    assert parse_delivery(body).fingerprint == plain.fingerprint
    assert parse_delivery(body, "push-2").fingerprint != plain.fingerprint
    assert parse_delivery(body, "push-2").fingerprint == parse_delivery(body, "push-2").fingerprint
    assert parse_delivery(_body({"image": "me/app:v2", "n": 1})).fingerprint != plain.fingerprint


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "INVALID_PAYLOAD"),
        (b"[1]", "INVALID_PAYLOAD"),
        (b"", "INVALID_PAYLOAD"),
        (_body({}), "MISSING_IMAGE"),
        (_body({"image": 3}), "MISSING_IMAGE"),
        (_body({"image": "UPPER/case"}), "INVALID_IMAGE_REF"),
        (_body({"image": "me/app@sha256:" + "a" * 64}), "INVALID_IMAGE_REF"),
        (_body({"repository": {}}), "INVALID_PAYLOAD"),
        (
            _body({"repository": {"repo_name": "me/app"}, "push_data": {"tag": 5}}),
            "INVALID_PAYLOAD",
        ),
        (_body({"repository": {"repo_name": "me/app:1"}}), "INVALID_PAYLOAD"),
    ],
)
def test_a_bad_payload_is_a_400(body: bytes, code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_delivery(body)
    assert caught.value.code == code


def test_the_repository_must_be_the_keys() -> None:
    key = _key("127.0.0.1:5000/me/app:live")
    named = parse_delivery(_body({"image": "127.0.0.1:5000/me/app"}))
    assert target_of(key, named) == "127.0.0.1:5000/me/app:live"
    tagged = parse_delivery(_body({"image": "127.0.0.1:5000/me/app:v2"}))
    assert target_of(key, tagged) == "127.0.0.1:5000/me/app:v2"
    # Docker Hub's payload names no registry: the key's repository path matches.
    bare = parse_delivery(_body({**HUB, "repository": {"repo_name": "me/app"}}))
    assert target_of(key, bare) == "127.0.0.1:5000/me/app:live"
    assert target_of(_key("busybox"), parse_delivery(_body({"image": "library/busybox"}))) == (
        "busybox:latest"
    )
    for other in ("127.0.0.1:5000/me/other", "registry.example.com/me/app", "you/app"):
        with pytest.raises(ValidationError) as caught:
            target_of(key, parse_delivery(_body({"image": other})))
        assert caught.value.code == "REPOSITORY_MISMATCH"


# -- over the fake engine ----------------------------------------------------------------


async def _user(client: httpx.AsyncClient, name: str) -> httpx.AsyncClient:
    password = f"{name}-password"
    resp = await client.post(
        "/accounts", json={"username": name, "password": password, "role": "user"}
    )
    assert resp.status_code == 201, resp.text
    return httpx.AsyncClient(
        transport=client._transport, base_url="http://test", headers=basic(name, password)
    )


async def test_keys_are_shown_once_hashed_and_owner_scoped(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    alice = await _user(fake_client, "alice")
    bob = await _user(fake_client, "bob")
    resp = await alice.post("/webhookkeys", json={"image": "me/app"})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["image"] == "me/app:latest" and created["key"].startswith("dyh_")
    assert (
        created["url"]
        == f"http://127.0.0.1:{fake_world.settings.port}/hub/webhook/{created['key']}"
    )
    listed = (await alice.get("/webhookkeys")).json()["webhookkeys"]
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    assert (await bob.get("/webhookkeys")).json()["webhookkeys"] == []
    assert (await bob.get("/webhookkeys", params={"owner": "alice"})).json()["webhookkeys"] == []
    everyone = (await fake_client.get("/webhookkeys", params={"owner": "alice"})).json()
    assert [k["id"] for k in everyone["webhookkeys"]] == [created["id"]]
    assert (await bob.delete(f"/webhookkeys/{created['id']}")).status_code == 404
    bad = await alice.post("/webhookkeys", json={"image": "me/app@sha256:" + "a" * 64})
    assert bad.status_code == 400
    no_source = await alice.post("/webhookkeys", json={"image": "me/app", "build": {}})
    assert no_source.json()["code"] == "ONE_SOURCE_REQUIRED"
    with_secret = await alice.post(
        "/webhookkeys",
        json={"image": "me/app", "build": {"dockerfile": "FROM x", "auth": {"a": "b"}}},
    )
    assert with_secret.status_code == 400
    assert (await alice.delete(f"/webhookkeys/{created['id']}")).status_code == 204
    assert (await alice.get("/webhookkeys")).json()["webhookkeys"] == []
    await alice.aclose()
    await bob.aclose()


async def test_replays_queue_one_job_and_unknown_keys_look_like_unknown_paths(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = (
        await fake_client.post("/containers", json={"image": "busybox:test", "start": True})
    ).json()["cuid"]
    key = (await fake_client.post("/webhookkeys", json={"image": "busybox:test"})).json()
    anon = httpx.AsyncClient(transport=fake_client._transport, base_url="http://test")
    url = f"/hub/webhook/{key['key']}"
    answers = await asyncio.gather(*(anon.post(url, json={"image": "busybox"}) for _ in range(5)))
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["job_id"] for r in answers}) == 1
    assert sorted(r.json()["replay"] for r in answers) == [False, True, True, True, True]
    job_id = answers[0].json()["job_id"]
    await fake_world.app.state.services.jobs.wait(job_id)
    job = (await fake_client.get(f"/builds/{job_id}")).json()
    assert job["status"] == "succeeded", job
    assert [c["cuid"] for c in job["result"]["containers"]] == [cuid]
    assert [call for call in fake_world.compose.calls if call[1] == "recreate"] == [
        (cuid, "recreate")
    ]
    redeploys = (await fake_client.get("/builds", params={"kind": "redeploy"})).json()["builds"]
    assert [j["job_id"] for j in redeploys] == [job_id]

    nowhere = await anon.post("/hub/nowhere", json={"image": "busybox"})
    unknown = await anon.post(f"/hub/webhook/dyh_{'x' * 43}", json={"image": "busybox"})
    odd = await anon.post("/hub/webhook/short", content=b"garbage")
    for resp in (unknown, odd):
        assert resp.status_code == nowhere.status_code == 404
        got, want = resp.json(), nowhere.json()
        assert {k: v for k, v in got.items() if k not in ("request_id", "timestamp")} == {
            k: v for k, v in want.items() if k not in ("request_id", "timestamp")
        }
    await anon.aclose()


async def test_unknown_keys_are_rate_limited_per_address(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    anon = httpx.AsyncClient(transport=fake_client._transport, base_url="http://test")
    limit = fake_world.settings.login_failures_per_minute
    for _ in range(limit):
        assert (await anon.post("/hub/webhook/dyh_nothing", json={})).status_code == 404
    refused = await anon.post("/hub/webhook/dyh_nothing", json={})
    assert refused.status_code == 429 and "retry-after" in refused.headers
    await anon.aclose()
