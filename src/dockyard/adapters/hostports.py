"""Is a host port free on this machine? A bind on 0.0.0.0 answers (a hint only: the
engine's own bind decides, see domain/containers/ports.py)."""

from __future__ import annotations

import socket


def port_free(port: int, protocol: str) -> bool:
    """True when nothing on this host listens on ``port`` (tcp) or holds it (udp)."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            # Connections lingering in TIME_WAIT do not make a port busy; a listener
            # does (Linux refuses the bind then, SO_REUSEADDR or not).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True
