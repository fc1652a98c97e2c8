"""The binary terminal frames of SPEC §5 (WebSocket subprotocol ``dockyard.v1.binary``).

A binary frame is one channel byte followed by raw bytes: ``0`` stdin (client to
server), ``1`` stdout and ``2`` stderr (server to client). A stdin frame with no bytes
(``STDIN_EOF``, the channel byte alone) is the end of input: an exec process's stdin is
closed, so it reads EOF (``echo hi | dockyard exec -i CUID cat``); attached to the main
process it is ignored. Control messages (resize, signal, close, exit, error) stay JSON
text frames. Stdlib only: the SDK
(``dockyard.client``) reads the same constants, so both ends speak one definition.
"""

from __future__ import annotations

SUBPROTOCOL = "dockyard.v1.binary"
STDIN = 0
STDOUT = 1
STDERR = 2
CHANNELS = {"stdout": STDOUT, "stderr": STDERR}
STREAMS = {STDOUT: "stdout", STDERR: "stderr"}
# An output frame carries at most this many bytes after its channel byte, so that a
# frame stays under the 1 MiB message limit most WebSocket clients default to.
MAX_PAYLOAD = 1024 * 1024 - 1


def output_frames(stream: str, data: bytes, cap: int = MAX_PAYLOAD) -> list[bytes]:
    """``data`` of ``stream`` (stdout or stderr) as binary frames of at most ``cap``
    bytes after the channel byte."""
    prefix = bytes((CHANNELS[stream],))
    if len(data) <= cap:
        return [prefix + data]
    view = memoryview(data)
    return [prefix + view[start : start + cap] for start in range(0, len(data), cap)]


def stdin_frame(data: bytes) -> bytes:
    return bytes((STDIN,)) + data


STDIN_EOF = stdin_frame(b"")


def split(frame: bytes) -> tuple[int, bytes]:
    """A binary frame's channel and payload; an empty frame is channel -1."""
    if not frame:
        return -1, b""
    return frame[0], frame[1:]
