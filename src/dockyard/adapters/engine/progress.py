"""The engine's build, pull and push streams as ``Progress`` values (pure functions).

The engine answers ``POST /build``, ``POST /images/create`` and ``POST /images/{name}/push``
with a stream of JSON messages (Docker's ``jsonmessage``), one after the other, usually
each on its own line:

    build  {"stream": "Step 2/5 : RUN make"}          → STEP 2 of 5, "RUN make"
           {"stream": " ---> Running in 3f2c…\\n"}    → LOG
           {"aux": {"ID": "sha256:…"}}                → RESULT image_id
    pull   {"status": "Downloading", "id": "6c0d…",
            "progressDetail": {"current": 1, "total": 2}}  → LAYER
           {"status": "Digest: sha256:…"}             → STATUS
    push   {"aux": {"Tag": "1", "Digest": "sha256:…", "Size": 735}}  → RESULT digest
    all    {"errorDetail": {"message": …}, "error": …}  → ERROR

Recorded examples are in tests/unit/data/engine_streams/.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from dockyard.domain.images.ports import Progress, ProgressKind, RegistryAuth
from dockyard.errors import AuthError, EngineError

_STEP = re.compile(r"^Step (\d+)/(\d+) : ?(.*)$", re.DOTALL)
MAX_MESSAGE = 4 * 1024 * 1024  # one JSON message; build output arrives in far smaller pieces
# What registries (distribution, Docker Hub, Harbor, …) answer to wrong credentials.
_AUTH_FAILED = (
    "unauthorized",
    "authentication required",
    "incorrect username or password",
    "denied: requested access to the resource is denied",
    "no basic auth credentials",
)


class JsonMessages:
    """Splits the bytes of a stream into its JSON messages (whatever the chunking)."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buffer = ""
        self._max = max_message
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The messages completed by ``data``; a message that is not a JSON object is
        dropped, a partial one waits for the next chunk."""
        self._buffer += data.decode("utf-8", "replace")
        out: list[dict[str, Any]] = []
        pos, text = 0, self._buffer
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos >= len(text):
                break
            try:
                value, end = self._decoder.raw_decode(text, pos)
            except ValueError:
                if "\n" in text[pos:]:  # a whole line that is not JSON: skip it
                    pos = text.index("\n", pos) + 1
                    continue
                break
            if isinstance(value, dict):
                out.append(value)
            pos = end
        self._buffer = text[pos:]
        if len(self._buffer) > self._max:
            raise EngineError(
                f"the engine sent a message of more than {self._max} bytes",
                code="ENGINE_STREAM_MALFORMED",
            )
        return out


def _error_text(message: dict[str, Any]) -> str | None:
    detail = message.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"])
    if message.get("error"):
        return str(message["error"])
    return None


def build_progress(message: dict[str, Any]) -> Progress | None:
    """One message of a build stream; None for those that say nothing (a bare newline)."""
    error = _error_text(message)
    if error is not None:
        return Progress(ProgressKind.ERROR, text=error.strip())
    aux = message.get("aux")
    if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
        return Progress(ProgressKind.RESULT, image_id=aux["ID"])
    text = message.get("stream")
    if not isinstance(text, str) or not text.strip():
        return None
    step = _STEP.match(text.strip())
    if step is not None:
        return Progress(
            ProgressKind.STEP,
            text=step.group(3).strip(),
            step=int(step.group(1)),
            total=int(step.group(2)),
        )
    return Progress(ProgressKind.LOG, text=text.rstrip("\r\n"))


def transfer_progress(message: dict[str, Any]) -> Progress | None:
    """One message of a pull or push stream."""
    error = _error_text(message)
    if error is not None:
        return Progress(ProgressKind.ERROR, text=error.strip())
    aux = message.get("aux")
    if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
        return Progress(ProgressKind.RESULT, digest=aux["Digest"])
    status = message.get("status")
    if not isinstance(status, str):
        return None
    layer = message.get("id")
    detail = message.get("progressDetail")
    if isinstance(layer, str) and isinstance(detail, dict) and "current" in detail:
        return Progress(
            ProgressKind.LAYER,
            text=status,
            layer=layer,
            current=_int(detail.get("current")),
            total=_int(detail.get("total")),
        )
    if isinstance(layer, str) and isinstance(detail, dict):
        # "Pull complete", "Pushed", "Already exists": a layer's state, no byte count.
        return Progress(ProgressKind.LAYER, text=status, layer=layer)
    return Progress(ProgressKind.STATUS, text=f"{layer}: {status}" if layer else status)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def registry_auth_header(auth: RegistryAuth | None) -> str:
    """``X-Registry-Auth``: base64url of the JSON credentials (``{}`` for none, which the
    engine needs on a push even to an open registry)."""
    body: dict[str, str] = {}
    if auth is not None:
        body = {
            "username": auth.username,
            "password": auth.password,
            "serveraddress": auth.server,
        }
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def scrub(text: str, auth: RegistryAuth | None) -> str:
    """``text`` without the secret in it (a registry may echo what it was sent)."""
    if auth is not None and auth.password:
        text = text.replace(auth.password, "***")
    return text


def is_auth_failure(text: str) -> bool:
    lowered = text.lower()
    return any(mark in lowered for mark in _AUTH_FAILED)


def registry_auth_error(server: str, text: str, auth: RegistryAuth | None) -> AuthError:
    """The registry refused the credentials: said without them."""
    return AuthError(
        f"the registry {server} refused the credentials: {scrub(text, auth)}",
        code="REGISTRY_AUTH_FAILED",
        details={"registry": server},
    )
