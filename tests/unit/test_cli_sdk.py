"""The SDK additions the CLI needed: ``issue_token``/``revoke_token`` and
``containers.list_data`` (raw JSON pages), against an httpx mock transport."""

from __future__ import annotations

import json

import httpx

from dockyard.client import Dockyard


def test_list_data_follows_cursors_and_builds_no_model() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.params))
        if "cursor" not in request.url.params:
            return httpx.Response(200, json={"containers": [{"cuid": "c1"}], "next_cursor": "n"})
        return httpx.Response(200, json={"containers": [{"cuid": "c2"}], "next_cursor": None})

    with Dockyard("http://x", transport=httpx.MockTransport(answer)) as dy:
        found = list(dy.containers.list_data(status=["running"], tag="web"))
    assert found == [{"cuid": "c1"}, {"cuid": "c2"}]
    assert "status=running" in seen[0] and "tag=web" in seen[0] and "cursor=n" in seen[1]


def test_issue_and_revoke_a_token() -> None:
    calls: list[httpx.Request] = []
    token = {
        "token": "dyt.abc",
        "token_type": "bearer",
        "id": "t1",
        "expires_at": "2026-01-01T01:00:00+00:00",
        "expires_in": 3600,
    }

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.method == "POST":
            return httpx.Response(201, json=token)
        return httpx.Response(204)

    with Dockyard("http://x", auth=("ada", "pw"), transport=httpx.MockTransport(answer)) as dy:
        issued = dy.issue_token(expires_in=600)
        dy.revoke_token(issued.id)
    post, delete = calls
    assert (post.url.path, json.loads(post.content)) == ("/auth/token", {"expires_in": 600})
    assert post.headers["Idempotency-Key"] and post.headers["Authorization"].startswith("Basic")
    assert (issued.token, delete.method, delete.url.path) == (
        "dyt.abc",
        "DELETE",
        "/auth/tokens/t1",
    )
