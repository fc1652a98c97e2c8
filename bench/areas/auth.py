"""4. An authenticated request (``/auth/whoami``, Basic) vs an open one (``/livez``)."""

from __future__ import annotations

from typing import Any

from harness.base import log
from harness.context import Ctx
from harness.serverlog import server_side
from harness.stats import Tags, interleaved, ratio, summary

TARGET_ADDED_MS = 1.0


def bench_auth(ctx: Ctx, requests: int, warmup: int) -> dict[str, Any]:
    log(f"4. /auth/whoami (Basic) vs /livez: {requests} each after {warmup} warm-up, interleaved")
    tag = Tags("4")
    with ctx.client() as client:
        calls = {
            "whoami": lambda: client.get("/auth/whoami", headers=tag("whoami")),
            "livez": lambda: client.get("/livez", auth=None, headers=tag("livez")),
        }
        interleaved(calls, warmup)
        tag.phase = "run"
        times = interleaved(calls, requests, rotate=True)
    auth = summary(times["whoami"])
    opened = summary(times["livez"])
    added = round(auth["p50_ms"] - opened["p50_ms"], 3)
    srv_auth = server_side(ctx, tag.rid("whoami"), requests)
    srv_open = server_side(ctx, tag.rid("livez"), requests)
    return {
        "requests": requests,
        "authenticated": auth,
        "open": opened,
        "server_side": {"authenticated": srv_auth, "open": srv_open},
        "server_added_p50_ms": round(srv_auth["p50_ms"] - srv_open["p50_ms"], 3)
        if srv_auth and srv_open
        else None,
        "added_p50_ms": added,
        "ratio_p50": ratio(auth["p50_ms"], opened["p50_ms"]),
        "target": f"added p50 <= {TARGET_ADDED_MS} ms",
        "met": added <= TARGET_ADDED_MS,
    }
