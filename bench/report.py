"""bench/run.py's table: one row per benchmark (two for the list), the notes on where the
time goes, and the machine the figures were measured on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from harness.base import RESULTS
from harness.table import print_rows, yes

Row = tuple[str, str, str, str, str, str]
HEADER: Row = ("benchmark", "Dockyard", "raw baseline", "ratio", "target", "met")


def _create_delete(r: dict[str, Any]) -> Iterator[Row]:
    yield (
        f"1. create+start+delete, mean (p50), n={r['iterations']}",
        f"{r['api']['mean_ms']:.0f} ms ({r['api']['p50_ms']:.0f})",
        f"{r['raw']['mean_ms']:.0f} ms ({r['raw']['p50_ms']:.0f})",
        f"{r['ratio_mean']:.3f} ({r['ratio_p50']:.3f})",
        "ratio <= 1.05",
        yes(r["met"]),
    )


def _get(r: dict[str, Any]) -> Iterator[Row]:
    yield (
        f"2. GET /containers/{{cuid}} p50 / p99, n={r['requests']}",
        f"{r['api']['p50_ms']:.2f} / {r['api']['p99_ms']:.2f} ms",
        f"{r['raw']['p50_ms']:.2f} / {r['raw']['p99_ms']:.2f} ms",
        f"{r['ratio_p50']:.2f} / {r['ratio_p99']:.2f}",
        "p50 <= 2 ms",
        yes(r["met"]),
    )


def _list(r: dict[str, Any]) -> Iterator[Row]:
    sizes = sorted(r["sizes"], key=int)
    for size in sizes:
        s = r["sizes"][size]
        big = size == sizes[-1]
        yield (
            f"3. GET /containers?limit=50, {int(size):,} records, p50 / p99",
            f"{s['api']['p50_ms']:.2f} / {s['api']['p99_ms']:.2f} ms",
            f"{s['raw']['p50_ms']:.2f} / {s['raw']['p99_ms']:.2f} ms",
            f"{s['ratio_p50']:.2f} / {s['ratio_p99']:.2f}",
            "p99 <= 20 ms" if big else "-",
            yes(r["met"]) if big else "-",
        )


def _auth(r: dict[str, Any]) -> Iterator[Row]:
    yield (
        f"4. /auth/whoami vs /livez p50, n={r['requests']} each",
        f"{r['authenticated']['p50_ms']:.3f} ms",
        f"{r['open']['p50_ms']:.3f} ms",
        f"+{r['added_p50_ms']:.3f} ms ({r['ratio_p50']:.2f})",
        "added <= 1 ms",
        yes(r["met"]),
    )


def _concurrent(r: dict[str, Any]) -> Iterator[Row]:
    yield (
        f"5. {r['count']} concurrent creates, wall (non-201)",
        f"{r['api']['wall_s']:.2f} s ({r['api']['non_201']})",
        f"{r['raw']['wall_s']:.2f} s ({r['raw']['failures']})",
        f"{r['ratio_wall']:.2f}",
        "0 non-201",
        yes(r["met"]),
    )


ROWS: dict[str, Callable[[dict[str, Any]], Iterator[Row]]] = {
    "create_delete": _create_delete,
    "get": _get,
    "list": _list,
    "auth": _auth,
    "concurrent": _concurrent,
}


def rows(results: dict[str, Any]) -> Iterator[Row]:
    b = results["benchmarks"]
    for key, make in ROWS.items():
        if key in b:
            yield from make(b[key])


def _create_delete_notes(r: dict[str, Any]) -> Iterator[str]:
    if not (r.get("server_compose_up") and r.get("server_compose_down")):
        return
    up, down = r["server_compose_up"]["mean_ms"], r["server_compose_down"]["mean_ms"]
    yield (
        f"1: per iteration (means) the server's compose up + down took {up:.0f} + "
        f"{down:.0f} ms (raw: {r['raw_up']['mean_ms']:.0f} + {r['raw_down']['mean_ms']:.0f})"
        f"; Dockyard's own work in the app {r.get('server_outside_compose_mean_ms')} ms; "
        f"HTTP + client {r.get('http_and_client_mean_ms')} ms"
    )
    cp, dp = r.get("create_phases") or {}, r.get("delete_phases") or {}
    if cp and dp:
        yield (
            f"1: in the app, POST spends {cp['before_compose_ms']} ms before and "
            f"{cp['after_compose_ms']} ms after its compose up, DELETE "
            f"{dp['before_compose_ms']} + {dp['after_compose_ms']} ms around compose down; "
            f"server CPU {r['server_cpu_per_iteration_ms']} ms per iteration"
        )


def _get_notes(r: dict[str, Any]) -> Iterator[str]:
    ref, srv = r["reference"], r.get("server_side") or {}

    def inside(key: str) -> str:
        return f"{srv[key]['p50_ms']:.2f}" if srv.get(key) else "?"

    yield (
        f"2: p50 client (in app): /livez {ref['livez']['p50_ms']:.2f} ({inside('livez')}), "
        f"/auth/whoami {ref['whoami']['p50_ms']:.2f} ({inside('whoami')}), "
        f"GET /containers?limit=1 {ref['store_only']['p50_ms']:.2f} "
        f"({inside('store_only')}), GET /containers/{{cuid}} {r['api']['p50_ms']:.2f} "
        f"({inside('api')}) ms; engine inspect alone {r['raw']['p50_ms']:.2f} ms"
    )


def _auth_notes(r: dict[str, Any]) -> Iterator[str]:
    if r.get("server_added_p50_ms") is not None:
        yield f"4: inside the app, credentials add {r['server_added_p50_ms']:.3f} ms at p50"


def _concurrent_notes(r: dict[str, Any]) -> Iterator[str]:
    if r.get("server_compose_up"):
        yield (
            f"5: the server's compose up calls took {r['server_compose_up']['mean_ms']:.0f} ms "
            f"on average, at most {r.get('server_max_concurrency', '?')} at a time (raw, all "
            f"{r['count']} at once: {r['raw']['per_call']['mean_ms']:.0f} ms)"
        )


NOTES: dict[str, Callable[[dict[str, Any]], Iterator[str]]] = {
    "create_delete": _create_delete_notes,
    "get": _get_notes,
    "auth": _auth_notes,
    "concurrent": _concurrent_notes,
}


def notes(results: dict[str, Any]) -> Iterator[str]:
    """Where the time goes, from the server's own logs and the reference reads."""
    b = results["benchmarks"]
    for key, make in NOTES.items():
        if b.get(key):
            yield from make(b[key])


def print_table(results: dict[str, Any]) -> None:
    print_rows(HEADER, list(rows(results)))
    for note in notes(results):
        print(f"  * {note}")
    m = results["machine"]
    print(
        f"\n{m.get('cpus')} CPUs, Docker {m.get('docker_server_version')}, "
        f"Compose {m.get('compose_version')}; {results['duration_s']:.0f} s; "
        f"figures in {RESULTS / 'latest.json'}"
    )
