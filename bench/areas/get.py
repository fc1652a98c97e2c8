"""2. ``GET /containers/{cuid}`` vs the Engine API's inspect of the same container."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from harness.base import BenchError, log
from harness.context import Ctx
from harness.serverlog import server_side
from harness.stats import Tags, interleaved, ratio, summary

TARGET_P50_MS = 2.0
REFERENCES = ("livez", "whoami", "store_only")


def bench_get(ctx: Ctx, cuid: str, requests: int, warmup: int) -> dict[str, Any]:
    """The API read and the engine's inspect, round-robin with three reference reads that
    show where the time goes: /livez (HTTP and framework only), /auth/whoami (+ cached
    credentials) and GET /containers?limit=1 (+ one store query, no engine call)."""
    log(f"2. GET /containers/{{cuid}}: {requests} after {warmup} warm-up, vs engine inspect")
    name = f"{cuid}-app-1"
    tag = Tags("2")
    with ctx.client() as client, ctx.engine() as engine:
        calls: dict[str, Callable[[], httpx.Response]] = {
            "api": lambda: client.get(f"/containers/{cuid}", headers=tag("api")),
            "raw": lambda: engine.get(f"/containers/{name}/json"),
            "livez": lambda: client.get("/livez", auth=None, headers=tag("livez")),
            "whoami": lambda: client.get("/auth/whoami", headers=tag("whoami")),
            "store_only": lambda: client.get(
                "/containers", params={"limit": "1"}, headers=tag("store_only")
            ),
        }
        interleaved(calls, warmup)
        tag.phase = "run"
        times = interleaved(calls, requests)
        if client.get(f"/containers/{cuid}").json().get("status") != "running":
            raise BenchError(f"container {cuid} is no longer running")
    api = summary(times["api"])
    raw = summary(times["raw"])
    return {
        "requests": requests,
        "api": api,
        "raw": raw,
        "ratio_p50": ratio(api["p50_ms"], raw["p50_ms"]),
        "ratio_p99": ratio(api["p99_ms"], raw["p99_ms"]),
        "reference": {key: summary(times[key]) for key in REFERENCES},
        "server_side": {
            key: server_side(ctx, tag.rid(key), requests) for key in ("api", *REFERENCES)
        },
        "target": f"p50 <= {TARGET_P50_MS} ms",
        "met": api["p50_ms"] <= TARGET_P50_MS,
    }
