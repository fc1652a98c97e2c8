"""3. Where the time goes: each step of an engine chunk's way to the client's decoded bytes,
timed in this process, and the server's CPU seconds of a transfer split into those steps."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from harness import base

from areas.terminal_sides import MODES, BenchError, decode

Frames = list[dict[str, str]]


def _best(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The fastest of a few runs (the machine's noise only ever adds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _ws_protocol(side: Any, deflate: bool) -> Any:
    """A websockets sans-I/O connection in the OPEN state, with permessage-deflate as the
    server negotiates it (uvicorn: 12-bit windows, memLevel 5) when asked."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.protocol import Protocol

    proto = Protocol(side, max_size=None)
    if deflate:
        proto.extensions = [PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})]
    return proto


def _frame(chunks: list[bytes]) -> Callable[[], Frames]:
    """The server's framing (the UTF-8 check, base64) of each chunk."""
    if str(base.REPO / "src") not in sys.path:
        sys.path.insert(0, str(base.REPO / "src"))
    from dockyard.domain.terminal.framing import Utf8Framer

    def run() -> Frames:
        framer = Utf8Framer("stdout")
        return [f for c in chunks for f in framer.feed(c)] + framer.flush()

    return run


def _send(texts: list[str], deflate: bool) -> Callable[[], bytes]:
    """The server's WebSocket library: ``send_text`` of each JSON text, the bytes it sends."""
    from websockets.protocol import Side

    def run() -> bytes:
        proto = _ws_protocol(Side.SERVER, deflate)
        out = []
        for text in texts:
            proto.send_text(text.encode())
            out += proto.data_to_send()
        return b"".join(out)

    return run


def _receive(wire: bytes, deflate: bool) -> Callable[[], list[str]]:
    """The client's WebSocket library: parsing (inflate, UTF-8 check) of what was sent."""
    from websockets.protocol import Side

    def run() -> list[str]:
        proto = _ws_protocol(Side.CLIENT, deflate)
        got: list[str] = []
        for start in range(0, len(wire), 256 * 1024):  # as a socket delivers it
            proto.receive_data(wire[start : start + 256 * 1024])
            got += [bytes(e.data).decode() for e in proto.events_received()]
        return got

    return run


def _websocket_costs(texts: list[str], size: int) -> dict[str, float]:
    """Each mode's send and receive, MB/s of file bytes, and its wire bytes a file byte."""
    mb = size / 1e6
    result: dict[str, float] = {}
    for mode in MODES:
        send_s, wire = _best(_send(texts, mode == "deflate"))
        recv_s, got = _best(_receive(wire, mode == "deflate"))
        if got != texts:
            raise BenchError(f"websockets round trip ({mode}) changed the frames")
        result[f"wire_bytes_per_file_byte_{mode}"] = round(len(wire) / size, 3)
        result[f"server_ws_send_{mode}_mb_per_s"] = round(mb / send_s, 1)
        result[f"client_ws_receive_{mode}_mb_per_s"] = round(mb / recv_s, 1)
    return result


def encoding_costs(data: bytes, chunk: int) -> dict[str, Any]:
    """MB/s (of file bytes) of each step an engine chunk goes through on its way to the
    client's decoded bytes, one core, the fastest of three runs: on the server, the framing
    (dockyard.domain.terminal.Utf8Framer: the UTF-8 check and base64), ``json.dumps`` (as
    api/terminal.py does) and the WebSocket library's ``send_text`` (the websockets sans-I/O
    protocol uvicorn uses; with and without permessage-deflate); on the client, the same
    library's parsing (inflate, UTF-8 check) and ``json.loads`` + base64 decoding."""
    mb = len(data) / 1e6
    frame_s, frames = _best(_frame([data[i : i + chunk] for i in range(0, len(data), chunk)]))
    json_s, texts = _best(lambda: [json.dumps(f) for f in frames])
    result: dict[str, Any] = {
        "sample_bytes": len(data),
        "chunk_bytes": chunk,
        "frames": len(texts),
        "json_bytes_per_file_byte": round(sum(len(t) for t in texts) / len(data), 3),
        "server_framing_mb_per_s": round(mb / frame_s, 1),
        "server_json_dumps_mb_per_s": round(mb / json_s, 1),
        **_websocket_costs(texts, len(data)),
    }
    loads_s, out = _best(lambda: sum(len(decode(json.loads(text))) for text in texts))
    if out != len(data):
        raise BenchError(f"framing round trip: {out} bytes of {len(data)}")
    result["client_json_loads_decode_mb_per_s"] = round(mb / loads_s, 1)
    return result


def breakdown(throughput: dict[str, Any], costs: dict[str, Any]) -> dict[str, Any]:
    """The server's CPU seconds of a transfer (its median run) split into the steps timed
    in-process (framing, json.dumps, the WebSocket library's send: estimates from
    ``encoding_costs``) and the rest (reading the engine's stream, the event loop, system
    calls); and how busy the server's process was over the transfer."""
    out: dict[str, Any] = {}
    for label, entry in throughput.items():
        c = costs[label]
        mb = entry["bytes"] / 1e6
        for mode in MODES:
            run = entry[f"ws_{mode}"]
            server = run["median_run"]["server_s"]
            sent = "deflate" if "deflate" in run["median_run"]["extensions"] else "plain"
            steps = {
                "framing_s": mb / c["server_framing_mb_per_s"],
                "json_dumps_s": mb / c["server_json_dumps_mb_per_s"],
                "ws_send_s": mb / c[f"server_ws_send_{sent}_mb_per_s"],
            }
            out[f"{label} ws_{mode}"] = {
                "wall_s": run["seconds_median"],
                "server_cpu_s": server,
                "server_busy": round(server / run["seconds_median"], 2),
                **{k: round(v, 3) for k, v in steps.items()},
                "rest_s": round(server - sum(steps.values()), 3),
                "client_cpu_s": run["median_run"]["client_s"],
            }
    return out
