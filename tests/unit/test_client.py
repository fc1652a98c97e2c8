"""The SDK's pure parts: error mapping, retries and backoff, credentials, paging and the
archives it builds (httpx.MockTransport stands in for the network; the real server is in
tests/e2e/test_sdk.py)."""

from __future__ import annotations

import io
import json
import tarfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from dockyard.client import (
    AsyncDockyard,
    BearerToken,
    Dockyard,
    InvalidState,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServerError,
    ServiceKey,
    TransportError,
    Unavailable,
    ValidationFailed,
    archives,
)
from dockyard.client.auth import auth_headers
from dockyard.client.errors import ApiError, error_for
from dockyard.client.retry import may_retry, parse_retry_after


def problem(kind: str, status: int, code: str = "X", **extra: object) -> httpx.Response:
    body = {
        "error": kind,
        "code": code,
        "message": "m",
        "status": status,
        "request_id": "rid-1",
        "timestamp": "t",
        "details": {"a": 1},
        **extra,
    }
    return httpx.Response(status, json=body, headers={"X-Request-ID": "rid-1"})


def test_errors_map_by_kind_then_by_status() -> None:
    err = error_for(
        404,
        {
            "error": "not_found",
            "code": "CONTAINER_NOT_FOUND",
            "message": "no",
            "request_id": "r",
            "details": {"cuid": "c1"},
        },
    )
    assert isinstance(err, NotFound) and err.code == "CONTAINER_NOT_FOUND"
    assert err.request_id == "r" and err.details == {"cuid": "c1"} and err.status == 404
    assert isinstance(error_for(422, {"error": "state_error"}), InvalidState)
    assert isinstance(error_for(502, {"error": "engine_error"}), ServerError)
    # not SPEC §9's body (a proxy's page): by status, the text kept
    proxied = error_for(503, "<html>bad gateway</html>")
    assert isinstance(proxied, Unavailable) and "bad gateway" in proxied.message
    assert type(error_for(418, {"error": "teapot"})) is ApiError


def test_retry_policy_honours_retry_after_and_backs_off() -> None:
    policy = RetryPolicy(attempts=3, base=1.0, cap=8.0, max_retry_after=30)
    assert policy.delay(1, 429, "2") == 2.0
    assert policy.delay(1, 503, "600") == 30  # capped
    assert policy.delay(3, 503, "1") is None  # out of attempts
    assert policy.delay(1, 500, "1") is None  # not a "try again" answer
    first, second = policy.delay(1, 503, None), policy.delay(2, 503, None)
    assert first is not None and second is not None
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0  # exponential, with jitter
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    told = parse_retry_after(when)
    assert told is not None and 15 < told <= 20
    assert parse_retry_after("soon") is None


def test_only_repeatable_calls_are_retried() -> None:
    assert may_retry("GET", {}) and may_retry("DELETE", {}) and may_retry("PUT", {})
    assert not may_retry("POST", {}) and not may_retry("PATCH", {})
    assert may_retry("POST", {"Idempotency-Key": "k"})


def test_credentials_become_headers() -> None:
    assert auth_headers(("u", "p")) == {"Authorization": "Basic dTpw"}
    assert auth_headers("dyk_abc") == {"X-Service-Key": "dyk_abc"}
    assert auth_headers(ServiceKey("k")) == {"X-Service-Key": "k"}
    assert auth_headers("dyt.xyz") == {"Authorization": "Bearer dyt.xyz"}
    assert auth_headers(BearerToken("t")) == {"Authorization": "Bearer t"}
    assert auth_headers(None) == {}


class Recorder:
    """A MockTransport handler answering from a script, recording what was sent."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)


FAST = RetryPolicy(attempts=3, base=0.001, cap=0.001)


def sync_client(handler: Recorder, retry: RetryPolicy = FAST) -> Dockyard:
    return Dockyard(
        "http://dy", auth=("admin", "pw"), retry=retry, transport=httpx.MockTransport(handler)
    )


def test_a_get_is_retried_after_429_then_succeeds() -> None:
    handler = Recorder(
        problem("rate_limited", 429, headers=None)
        if False
        else httpx.Response(
            429,
            json={"error": "rate_limited", "code": "RATE_LIMITED"},
            headers={"Retry-After": "0"},
        ),
        problem("unavailable", 503),
        httpx.Response(200, json={"status": "ok", "engines": []}),
    )
    with sync_client(handler) as dy:
        assert dy.http.request("GET", "/healthz").json()["status"] == "ok"
    assert len(handler.requests) == 3


def test_retries_end_with_the_last_error_and_its_retry_after() -> None:
    limited = httpx.Response(
        429,
        json={"error": "rate_limited", "code": "RATE_LIMITED", "request_id": "r9"},
        headers={"Retry-After": "0"},
    )
    handler = Recorder(limited, limited, limited)
    with sync_client(handler) as dy, pytest.raises(RateLimited) as err:
        dy.containers.delete("c1")
    assert len(handler.requests) == 3 and err.value.retry_after == 0
    assert err.value.request_id == "r9"


def test_a_post_without_idempotency_key_is_not_retried() -> None:
    handler = Recorder(problem("unavailable", 503))
    with sync_client(handler) as dy, pytest.raises(Unavailable):
        dy.containers.start("c1")
    assert len(handler.requests) == 1


def test_a_create_carries_one_idempotency_key_across_retries() -> None:
    created = {"cuid": "c1"}
    handler = Recorder(problem("unavailable", 503), httpx.Response(500, json=created))
    with sync_client(handler) as dy, pytest.raises(ServerError):
        dy.containers.create("busybox")
    keys = [r.headers.get("Idempotency-Key") for r in handler.requests]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert json.loads(handler.requests[0].content) == {"image": "busybox", "start": False}


def test_a_connection_failure_is_a_transport_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with (
        Dockyard(
            "http://dy",
            retry=RetryPolicy(attempts=2, base=0.001),
            transport=httpx.MockTransport(refuse),
        ) as dy,
        pytest.raises(TransportError),
    ):
        dy.http.request("GET", "/livez")


def test_a_bad_request_is_not_retried_and_keeps_the_body() -> None:
    handler = Recorder(problem("validation_error", 400, "MISSING_IMAGE"))
    with sync_client(handler) as dy, pytest.raises(ValidationFailed) as err:
        dy.http.request("GET", "/containers")
    assert err.value.code == "MISSING_IMAGE" and err.value.body["details"] == {"a": 1}


def page(items: list[dict[str, object]], cursor: str | None) -> httpx.Response:
    return httpx.Response(200, json={"events": items, "next_cursor": cursor})


async def test_list_fetches_pages_lazily_through_the_cursor() -> None:
    def event(i: int) -> dict[str, object]:
        return {
            "id": i,
            "time": "t",
            "type": "start",
            "source": "engine",
            "cuid": "c",
            "owner": "admin",
            "actor": None,
            "details": {},
        }

    handler = Recorder(page([event(3), event(2)], "n1"), page([event(1)], None))
    async with AsyncDockyard("http://dy", transport=httpx.MockTransport(handler)) as dy:
        events = dy.events(page_size=2)
        first = await anext(events)
        assert first.id == 3 and len(handler.requests) == 1  # the second page not yet
        rest = [e.id async for e in events]
    assert rest == [2, 1]
    assert handler.requests[1].url.params["cursor"] == "n1"
    assert handler.requests[1].url.params["limit"] == "2"


def test_a_folder_is_zipped_with_its_tree_and_modes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg" / "empty").mkdir(parents=True)
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "pkg" / "data.bin").write_bytes(b"\x00\xff" * 10)
    (src / "link").symlink_to(src / "run.sh")
    archive, size = archives.zip_for_upload(src)
    with archive:
        data = archive.read()
    assert len(data) == size
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["pkg/data.bin", "pkg/empty/", "run.sh"]
        assert zf.getinfo("run.sh").external_attr >> 16 & 0o777 == 0o755
        assert zf.read("pkg/data.bin") == b"\x00\xff" * 10


def test_a_tar_is_repacked_as_zip_and_a_zip_sent_as_it_is(tmp_path: Path) -> None:
    tar_path = tmp_path / "a.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        info = tarfile.TarInfo("./app/x.txt")
        info.size, info.mode = 2, 0o640
        tf.addfile(info, io.BytesIO(b"hi"))
    archive, _ = archives.zip_for_upload(tar_path)
    with archive, zipfile.ZipFile(archive) as zf:
        assert zf.read("app/x.txt") == b"hi"
        assert zf.getinfo("app/x.txt").external_attr >> 16 & 0o777 == 0o640
    zip_path = tmp_path / "b.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("b.txt", "b")
    archive, size = archives.zip_for_upload(zip_path)
    with archive:
        assert archive.read() == zip_path.read_bytes() and size == zip_path.stat().st_size
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(ValueError):
        archives.zip_for_upload(tmp_path / "plain.txt")


def test_retry_after_zero_does_not_wait() -> None:
    start = time.monotonic()
    assert RetryPolicy().delay(1, 429, "0") == 0
    assert time.monotonic() - start < 1
