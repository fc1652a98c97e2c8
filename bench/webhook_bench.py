"""Outgoing webhooks (issue 11): event-to-delivery latency and the API's p99 while
deliveries run. Not part of CI.

1. Event to delivery: ``PATCH /webhooks/{a}`` makes a ``webhook.updated`` event that a
   second webhook wants; the time from sending the PATCH to the receiver reading the
   delivery, p50 and p95 over ``--events`` sequential PATCHes (target p50 ≤ 50 ms; the
   events journal alone may hold an event 30 ms to batch it).
2. API p99: ``GET /webhooks`` by ``--clients`` concurrent clients, once with nothing to
   deliver and once while ``--backlog`` deliveries drain to a receiver that answers
   each after 20 ms (target: unchanged).

Run from the repository: ``.venv/bin/python bench/webhook_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import ADMIN
from tests.e2e.test_webhooks_e2e import FAST, add_hook, bearer
from tests.receiver import Chaos, Receiver
from tests.server import Server, serve_env


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def event_to_delivery(server: Server, receiver: Receiver, count: int) -> list[float]:
    with httpx.Client(base_url=server.url, headers=bearer(server, ADMIN), timeout=30) as api:
        source = add_hook(api, receiver, "/source", events=["build.failed"], active=False)
        add_hook(api, receiver, "/sink", events=["webhook.updated"])
        latencies: list[float] = []
        for _ in range(count):
            seen = len(receiver.all("/sink"))
            started = time.perf_counter()
            api.patch(f"/webhooks/{source}", json={"active": False})
            receiver.wait_for(lambda s=seen: len(receiver.all("/sink")) > s, timeout=10)
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies


async def api_latencies(server: Server, clients: int, requests: int) -> list[float]:
    headers = bearer(server, ADMIN)
    out: list[float] = []
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:

        async def one_client() -> None:
            for _ in range(requests // clients):
                started = time.perf_counter()
                answer = await api.get("/webhooks")
                out.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return out


async def backlog(server: Server, hook_id: str, count: int) -> None:
    headers = bearer(server, ADMIN)
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
        for start in range(0, count, 50):
            await asyncio.gather(
                *(api.post(f"/webhooks/{hook_id}/test") for _ in range(min(50, count - start)))
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=2000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    env = serve_env(workdir, app_user=ADMIN[0], app_pass=ADMIN[1], **FAST)
    server = Server(workdir, env)
    server.start()
    try:
        with Receiver() as receiver:
            lat = event_to_delivery(server, receiver, args.events)
            print(
                f"event->delivery  p50 {statistics.median(lat):6.1f} ms"
                f"  p95 {percentile(lat, 0.95):6.1f} ms  (n={len(lat)}, target p50 <= 50)"
            )
            idle = asyncio.run(api_latencies(server, args.clients, args.requests))
            receiver.chaos = Chaos(slow=1.0, sleep_for=0.02)
            with httpx.Client(
                base_url=server.url, headers=bearer(server, ADMIN), timeout=30
            ) as api:
                hook_id = add_hook(api, receiver, "/busy", events=["webhook.test"])
            asyncio.run(backlog(server, hook_id, args.backlog))
            before = len(receiver.all("/busy"))
            busy = asyncio.run(api_latencies(server, args.clients, args.requests))
            during = len(receiver.all("/busy")) - before
            for name, values in (("idle", idle), ("delivering", busy)):
                print(
                    f"GET /webhooks {name:>10}  p50 {statistics.median(values):6.1f} ms"
                    f"  p99 {percentile(values, 0.99):6.1f} ms"
                )
            print(f"deliveries made while measuring: {during}")
            print(
                f"p99 ratio delivering/idle: {percentile(busy, 0.99) / percentile(idle, 0.99):.2f}"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
