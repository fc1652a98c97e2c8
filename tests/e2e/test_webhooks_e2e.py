"""Outgoing webhooks through the real server to a local receiver that verifies every
signature and misbehaves: at least once, across a restart, per owner, never to a
private address unless allowed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX
from tests.receiver import Chaos, Receiver
from tests.server import ServeFactory, Server

FAST = {  # short attempts and backoff, so a test takes seconds
    "fetch_allow_nets": "127.0.0.1/32",
    "webhook_timeout": 0.5,
    "webhook_backoff_base": 0.05,
    "webhook_backoff_max": 0.4,
}


def bearer(server: Server, who: tuple[str, str]) -> dict[str, str]:
    """A token: Basic hashes the password on every request (argon2: slow on purpose)."""
    made = httpx.post(
        f"{server.url}/auth/token", json={"expires_in": 600}, headers=basic(*who), timeout=30
    )
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


def client(server: Server, who: tuple[str, str] = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=bearer(server, who), timeout=30)


def add_hook(api: httpx.Client, receiver: Receiver, path: str, **body: Any) -> str:
    made = api.post("/webhooks", json={"url": receiver.url(path), **body})
    assert made.status_code == 201, made.text
    receiver.secrets[path] = made.json()["secret"].encode()
    return str(made.json()["id"])


async def _tests(server: Server, hook_id: str, count: int) -> list[str]:
    headers = bearer(server, ADMIN)
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
        ids: list[str] = []
        for start in range(0, count, 25):
            answers = await asyncio.gather(
                *(api.post(f"/webhooks/{hook_id}/test") for _ in range(min(25, count - start)))
            )
            for answer in answers:
                assert answer.status_code == 202, answer.text
                ids.append(answer.json()["id"])
        return ids


def test_a_thousand_events_arrive_signed_through_a_flaky_receiver(serve: ServeFactory) -> None:
    chaos = Chaos(fail=0.1, drop=0.1, slow=0.03, sleep_for=0.8)
    with Receiver(chaos) as receiver:
        server = serve(**FAST)
        with client(server) as api:
            # Only its test events (engine events of other tests' containers stay out).
            hook_id = add_hook(api, receiver, "/hook", events=["webhook.test"])
            sent = asyncio.run(_tests(server, hook_id, 1000))
            assert len(set(sent)) == 1000
            receiver.wait_for(lambda: len(receiver.delivered()) >= 1000, timeout=90)
            delivered = receiver.delivered()
            assert set(delivered) == set(sent)  # none missing, none made up
            assert all(r.valid for r in receiver.all())
            assert all(r.headers["x-dockyard-event"] == "webhook.test" for r in receiver.all())
            assert all(r.event["details"]["webhook_id"] == hook_id for r in delivered.values())
            failed = [r for r in receiver.all() if r.answered != 200]
            assert len(failed) > 100  # the receiver did misbehave

            # The deliveries list: newest first, in pages, with attempts and status.
            rows: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                params = {"limit": 400, **({"cursor": cursor} if cursor else {})}
                page = api.get(f"/webhooks/{hook_id}/deliveries", params=params).json()
                rows += page["deliveries"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert {r["id"] for r in rows} == set(sent)
            receiver.wait_for(
                lambda: all(
                    r["status"] == "delivered"
                    for r in api.get(
                        f"/webhooks/{hook_id}/deliveries", params={"limit": 500}
                    ).json()["deliveries"]
                )
            )
            retried = [r for r in rows if r["attempts"] > 1 or r["last_error"]]
            assert retried and "body" not in rows[0]

            # Redeliver: one more request under the same delivery id.
            one = sent[0]
            seen_before = len(receiver.all())
            again = api.post(f"/webhooks/{hook_id}/deliveries/{one}/redeliver")
            assert again.status_code == 202 and again.json()["id"] == one
            receiver.wait_for(
                lambda: any(
                    r.headers["x-dockyard-delivery"] == one and r.answered == 200
                    for r in receiver.all()[seen_before:]
                )
            )
            missing = api.post(f"/webhooks/{hook_id}/deliveries/wdnope/redeliver")
            assert missing.status_code == 404


def test_pending_deliveries_survive_a_restart(serve: ServeFactory) -> None:
    with Receiver(Chaos(status=503)) as receiver:
        server = serve(**FAST)
        with client(server) as api:
            hook_id = add_hook(api, receiver, "/hook", events=["webhook.test"])
            sent = asyncio.run(_tests(server, hook_id, 30))
            receiver.wait_for(lambda: len(receiver.all()) >= 30)
        server.kill()  # nothing drained: the queue is in the database
        receiver.chaos = Chaos()
        server.start()
        receiver.wait_for(lambda: set(receiver.delivered()) == set(sent))
        with client(server) as api:
            rows = api.get(f"/webhooks/{hook_id}/deliveries", params={"limit": 100}).json()
            assert {r["id"] for r in rows["deliveries"]} == set(sent)


def test_a_user_hook_sees_only_its_own_containers(serve: ServeFactory) -> None:
    with Receiver() as receiver:
        server = serve(**FAST)
        with client(server) as admin:
            for name in ("amy", "ben"):
                made = admin.post(
                    "/accounts",
                    json={"username": name, "password": f"{name}-pw-1234", "role": "user"},
                )
                assert made.status_code == 201, made.text
            add_hook(admin, receiver, "/admin", events=["container.*"])
            made: dict[str, str] = {}
            for name in ("amy", "ben"):
                with client(server, (name, f"{name}-pw-1234")) as api:
                    add_hook(api, receiver, f"/{name}", events=["container.created"])
                    created = api.post("/containers", json={"image": BUSYBOX})
                    assert created.status_code == 201, created.text
                    made[name] = created.json()["cuid"]

            def cuids(path: str) -> set[str]:
                return {r.event["cuid"] for r in receiver.delivered(path).values()}

            receiver.wait_for(lambda: cuids("/admin") >= set(made.values()))
            receiver.wait_for(lambda: made["ben"] in cuids("/ben"))
            receiver.wait_for(lambda: made["amy"] in cuids("/amy"))
            assert cuids("/amy") == {made["amy"]} and cuids("/ben") == {made["ben"]}
            assert all(r.valid for r in receiver.received)
            for cuid in made.values():
                admin.delete(f"/containers/{cuid}")


def test_private_addresses_and_redirects_are_refused(serve: ServeFactory) -> None:
    with Receiver(Chaos(status=302)) as receiver:
        strict = serve()
        with client(strict) as api:
            for url in (receiver.url(), "http://169.254.169.254/latest", "ftp://example.com/"):
                refused = api.post("/webhooks", json={"url": url})
                assert refused.status_code == 400, refused.text
                assert refused.json()["code"] == "URL_NOT_ALLOWED"
        strict.stop()
        receiver.chaos.headers = {"Location": receiver.url("/landed")}
        server = serve(**FAST)
        with client(server) as api:
            hook_id = add_hook(api, receiver, "/hook", events=["webhook.test"])
            sent = asyncio.run(_tests(server, hook_id, 1))
            receiver.wait_for(lambda: len(receiver.all()) >= 3)
            row = api.get(f"/webhooks/{hook_id}/deliveries").json()["deliveries"][0]
            assert row["id"] == sent[0]
            assert row["last_status_code"] == 302 and row["last_error"] == "redirect"
            assert receiver.all("/landed") == []  # never followed
            moved = api.patch(f"/webhooks/{hook_id}", json={"url": "http://169.254.169.254/"})
            assert moved.status_code == 400
            assert api.delete(f"/webhooks/{hook_id}").status_code == 204
            assert api.get(f"/webhooks/{hook_id}/deliveries").status_code == 404
