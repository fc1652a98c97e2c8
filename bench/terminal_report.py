"""bench/terminal_bench.py's table: the keystroke and throughput rows, each with compression
offered and off; the notes on where the time goes; the machine and its load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from areas.terminal_sides import MIB, MODES
from harness.table import print_rows, yes

Row = tuple[str, str, str, str, str, str]
HEADER: Row = ("benchmark", "Dockyard", "raw exec", "ratio (best)", "target", "met")


def mode_label(mode: str, extensions: str) -> str:
    if mode == "plain":
        return "no compression"
    return "deflate" if "deflate" in extensions else "deflate offered, declined"


def _keystroke_rows(k: dict[str, Any]) -> Iterator[Row]:
    raw = f"{k['raw']['p50_ms']:.3f} / {k['raw']['p99_ms']:.3f} ms"
    for mode in MODES:
        r = k[f"ws_{mode}"]
        label = mode_label(mode, k["extensions"][mode])
        yield (
            f"1. keystroke p50 / p99, n={k['keys']} ({label})",
            f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f} ms",
            raw,
            f"{k['ratio_p50' if mode == 'deflate' else 'ratio_p50_plain']:.2f}",
            k["target"],
            yes(k["met" if mode == "deflate" else "met_plain"]),
        )


def _throughput_rows(label: str, t: dict[str, Any]) -> Iterator[Row]:
    what = "base64" if label == "random" else "utf8"
    for mode in MODES:
        key = "ratio" if mode == "deflate" else "ratio_plain"
        ws = t[f"ws_{mode}"]
        name = mode_label(mode, ws["median_run"]["extensions"])
        yield (
            f"2. cat {t['bytes'] // MIB} MiB {label} ({what}, {name}), MB/s",
            f"{ws['mb_per_s']:.0f} (best {ws['mb_per_s_best']:.0f})",
            f"{t['raw']['mb_per_s']:.0f} (best {t['raw']['mb_per_s_best']:.0f})",
            f"{t[key]:.2f} ({t[key + '_best']:.2f})",
            t["target"],
            yes(t["met" if mode == "deflate" else "met_plain"]),
        )
    if "ws_binary" in t:
        ws = t["ws_binary"]
        yield (
            f"2. cat {t['bytes'] // MIB} MiB {label} (binary frames, no compression), MB/s",
            f"{ws['mb_per_s']:.0f} (best {ws['mb_per_s_best']:.0f})",
            f"{t['raw']['mb_per_s']:.0f} (best {t['raw']['mb_per_s_best']:.0f})",
            f"{t['ratio_binary']:.2f} ({t['ratio_binary_best']:.2f})",
            t["target_binary"],
            yes(t["met_binary"]),
        )


def rows(b: dict[str, Any]) -> Iterator[Row]:
    if "keystroke" in b:
        yield from _keystroke_rows(b["keystroke"])
    for label, t in b.get("throughput", {}).items():
        yield from _throughput_rows(label, t)


def notes(b: dict[str, Any]) -> Iterator[str]:
    """CPU seconds per transfer, the in-process step rates, the server's CPU split."""
    for label, t in b.get("throughput", {}).items():
        cpu = {k: t[k]["median_run"] for k in ("ws_deflate", "ws_plain", "raw")}
        yield f"{label}: CPU s (server / dockerd / client) per transfer: " + "; ".join(
            f"{k} {v['server_s']:.2f} / {v['dockerd_s']:.2f} / {v['client_s']:.2f}"
            for k, v in cpu.items()
        )
    for label, c in b.get("costs", {}).items():
        yield (
            f"{label}, in-process MB/s: server framing {c['server_framing_mb_per_s']}, "
            f"json.dumps {c['server_json_dumps_mb_per_s']}, ws send "
            f"{c['server_ws_send_plain_mb_per_s']} ({c['server_ws_send_deflate_mb_per_s']} "
            f"deflate); client ws receive {c['client_ws_receive_plain_mb_per_s']} "
            f"({c['client_ws_receive_deflate_mb_per_s']} deflate), json.loads+decode "
            f"{c['client_json_loads_decode_mb_per_s']}"
        )
    for key, d in b.get("breakdown", {}).items():
        yield (
            f"{key}: wall {d['wall_s']:.2f} s; server CPU {d['server_cpu_s']:.2f} s "
            f"(busy {d['server_busy']:.0%}) ~ framing {d['framing_s']:.2f} + json.dumps "
            f"{d['json_dumps_s']:.2f} + ws send {d['ws_send_s']:.2f} + rest {d['rest_s']:.2f}; "
            f"client CPU {d['client_cpu_s']:.2f} s"
        )


def print_table(results: dict[str, Any], out: Path) -> None:
    b = results["benchmarks"]
    print_rows(HEADER, list(rows(b)))
    for note in notes(b):
        print(f"  * {note}")
    m = results.get("machine", {})
    cpu = results.get("cpu_during_run", {})
    print(
        f"\n{m.get('cpus')} CPUs, Docker {m.get('docker_server_version')}, load "
        f"{m.get('load_average_at_start')} -> {results.get('load_average_at_end')}, "
        f"CPU busy {cpu.get('busy_pct')} %, steal {cpu.get('steal_pct')} %; "
        f"{results['duration_s']:.0f} s; figures in {out}"
    )
