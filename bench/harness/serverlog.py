"""What the server's own logs say: its Compose calls (the structured events on its output)
and the time each request spent inside the app (LOG_DIR/actions.jsonl)."""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from harness.base import log
from harness.context import Ctx
from harness.stats import summary


def _ts(text: str) -> float:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def server_events(ctx: Ctx) -> list[dict[str, Any]]:
    if ctx.server_log is None or not ctx.server_log.exists():
        return []
    events = []
    for line in ctx.server_log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


def _compose_finished(ctx: Ctx, verb: str, cuids: set[str]) -> list[dict[str, Any]]:
    return [
        e
        for e in server_events(ctx)
        if e.get("event") == f"compose.{verb}.finished" and e.get("project") in cuids
    ]


def compose_calls(ctx: Ctx, verb: str, cuids: set[str]) -> list[tuple[float, float]]:
    """(start, end) of the server's own `compose <verb>` calls for these projects."""
    return [
        (_ts(e["timestamp"]) - float(e["duration_ms"]) / 1000, _ts(e["timestamp"]))
        for e in _compose_finished(ctx, verb, cuids)
    ]


def compose_durations(ctx: Ctx, verb: str, cuids: set[str]) -> list[float]:
    """duration_ms of the server's own `compose <verb>` calls for these projects."""
    return [float(e["duration_ms"]) for e in _compose_finished(ctx, verb, cuids)]


def compose_overlap(ctx: Ctx, verb: str, cuids: set[str]) -> int:
    """The most `compose <verb>` calls of these projects that ran at the same time."""
    edges: list[tuple[float, int]] = []
    for start, end in compose_calls(ctx, verb, cuids):
        edges += [(start, 1), (end, -1)]
    most = running = 0
    for _, step in sorted(edges):
        running += step
        most = max(most, running)
    return most


def _actions(ctx: Ctx, request_id: str) -> Iterator[dict[str, Any]]:
    """The action-log entries of the requests sent with this X-Request-ID."""
    with contextlib.suppress(OSError):
        for line in (ctx.log_dir / "actions.jsonl").read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("request_id") == request_id:
                    yield entry


def server_side(ctx: Ctx, request_id: str, expect: int) -> dict[str, float] | None:
    """The server's own duration_ms (LOG_DIR/actions.jsonl) of the requests sent with this
    X-Request-ID: their time once inside the app. The line is written just after the
    response is sent, so the last one may lag a little: wait (bounded) for ``expect``."""
    found: list[float] = []
    for _ in range(50):
        found = []
        for entry in _actions(ctx, request_id):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                found.append(float(entry["duration_ms"]) / 1000)
        if len(found) >= expect:
            break
        time.sleep(0.1)
    if len(found) != expect:
        log(f"   action log: {len(found)} of {expect} entries for {request_id}")
    return summary(found) if found else None


def request_phases(ctx: Ctx, request_id: str, verb: str, cuids: set[str]) -> dict[str, float]:
    """Mean ms of a request's time in the app before and after its `compose <verb>` call,
    lining up the action log (end time, duration) with the server's compose events."""
    calls = compose_calls(ctx, verb, cuids)
    before: list[float] = []
    after: list[float] = []
    for entry in _actions(ctx, request_id):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            end = _ts(entry["timestamp"])
            start = end - float(entry["duration_ms"]) / 1000
            for c_start, c_end in calls:
                if start - 0.002 <= c_start and c_end <= end + 0.002:
                    before.append(c_start - start)
                    after.append(end - c_end)
                    break
    if not before:
        return {}
    return {
        "n": len(before),
        "before_compose_ms": round(statistics.fmean(before) * 1000, 1),
        "after_compose_ms": round(statistics.fmean(after) * 1000, 1),
    }
