"""Percentiles and summaries, and the timed request loops they are computed from."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import httpx

from harness.base import BenchError


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(values_s: list[float]) -> dict[str, float]:
    """Seconds in, milliseconds out."""
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(pct(ms, 50), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def timed(call: Callable[[], httpx.Response], expect: int = 200) -> tuple[float, httpx.Response]:
    """One request and its time; a BenchError unless it answers ``expect``."""
    t0 = time.perf_counter()
    resp = call()
    dt = time.perf_counter() - t0
    if resp.status_code != expect:
        where = f"{resp.request.method} {resp.request.url.path}"
        raise BenchError(f"{where}: {resp.status_code} {resp.text[:300]}")
    return dt, resp


def timed_loop(count: int, call: Callable[[], httpx.Response], expect: int = 200) -> list[float]:
    return [timed(call, expect)[0] for _ in range(count)]


def interleaved(
    calls: dict[str, Callable[[], httpx.Response]],
    count: int,
    warmup: int = 0,
    *,
    rotate: bool = False,
) -> dict[str, list[float]]:
    """``count`` rounds (after ``warmup`` rounds not counted) of one request of each call,
    in turn, so that the machine's mood is shared; with ``rotate`` who goes first moves on
    each round, so that no call always follows the same one."""
    keys = list(calls)
    times: dict[str, list[float]] = {key: [] for key in calls}
    for i in range(warmup + count):
        turn = i % len(keys) if rotate else 0
        for key in keys[turn:] + keys[:turn]:
            dt = timed(calls[key])[0]
            if i >= warmup:
                times[key].append(dt)
    return times


class Tags:
    """X-Request-ID headers: "bench<n>-<key>-<phase>", so that the action log can be read
    back."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.phase = "warm"

    def __call__(self, key: str) -> dict[str, str]:
        return {"X-Request-ID": f"{self.rid(key)}"}

    def rid(self, key: str) -> str:
        return f"bench{self.bench}-{key}-{self.phase}"
