"""Pure ASGI middleware: request id, the action log, Prometheus metrics, and the last
line of defence that turns an unexpected exception into SPEC §9's 500 body."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.errors import note, send_500, send_error
from dockyard.domain.access.audit import AuditEntry
from dockyard.domain.recording import RequestScope, request_scope
from dockyard.errors import disk_full, is_disk_full

log = structlog.get_logger("dockyard.api")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class AuditSink(Protocol):
    """The audit trail (domain/access/audit.py): every authenticated request but reads."""

    def record(self, entry: AuditEntry) -> None: ...
    async def commit(self, entry: AuditEntry) -> bool: ...


_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_RESOURCE_PARAMS = ("cuid", "username", "key_id", "token_id", "name")


class ActionLog:
    """``LOG_DIR/actions.jsonl``: one line per request, never a secret (SPEC §9)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)

    def write(self, entry: dict[str, Any]) -> None:
        # One short line into the page cache: cheaper than a hop to a thread.
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dockyard_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dockyard_http_request_duration_seconds",
            "HTTP latency",
            ["method", "route"],
            registry=self.registry,
        )


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        action_log: ActionLog,
        metrics: Metrics,
        dev_mode: bool,
        audit: AuditSink | None = None,
    ) -> None:
        self.app = app
        self.action_log = action_log
        self.metrics = metrics
        self.dev_mode = dev_mode
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        response: dict[str, Any] = {"status": None}
        # Audited before the last byte leaves, so a client that reads /audit next sees it;
        # an accepted change's entry is even committed by then (issue 9: SIGKILL).
        # Set to None once the entry is queued.
        audit = self.audit if scope.get("method", "WS") not in _READS else None
        # The domain names the resource a change made or touched (domain/recording.py).
        changes = RequestScope()
        if audit is not None:
            changes.draft = partial(_success_entry, scope, state)
        token = request_scope.set(changes)

        async def send_with_id(message: Message) -> None:
            nonlocal audit
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                response["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            elif message["type"] == "websocket.accept":
                response["status"] = 101
            elif message["type"] == "http.response.body" and audit is not None:
                if not message.get("more_body", False):
                    sink, audit = audit, None
                    status = response["status"] or 500
                    written = changes.written  # committed with the change already
                    entry = _entry(scope, state, status, changes.resource)
                    if entry is not None and (written is None or written.status != status):
                        await _audit(sink, entry, durable=200 <= status < 300)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if is_disk_full(exc) and response["status"] is None and scope["type"] == "http":
                # The database (or a file) found the disk full: the client's 507.
                log.error("request.disk_full", request_id=request_id)
                await send_error(send_with_id, state, disk_full(exc), dev_mode=self.dev_mode)
                return
            log.error("request.crashed", request_id=request_id, exc_type=type(exc).__name__)
            note(state, "internal_error", "INTERNAL")
            if response["status"] is None and scope["type"] == "http":
                await send_500(send_with_id, request_id, exc, dev_mode=self.dev_mode)
            else:
                raise
        finally:
            request_scope.reset(token)
            changes.draft = None  # a task begun in this request cannot take it later
            if audit is not None:
                # No full answer left (a WebSocket, a cut-off stream): nothing to wait for.
                entry = _entry(scope, state, response["status"] or 500, changes.resource)
                if entry is not None:
                    audit.record(entry)
            self._record(scope, state, response["status"] or 500, started)

    def _record(self, scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
        duration = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", "unmatched")
        endpoint = scope.get("endpoint")
        method = scope.get("method", "WS")
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(duration)
        self.action_log.write(
            {
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "request_id": state.get("request_id"),
                "user": state.get("user"),
                "method": method,
                "path": scope.get("path"),
                "cuid": (scope.get("path_params") or {}).get("cuid"),
                "action": getattr(endpoint, "__name__", None),
                "status": status,
                "duration_ms": round(duration * 1000, 2),
                "error": state.get("error_kind"),
                "code": state.get("error_code"),
            }
        )


async def _audit(audit: AuditSink, entry: AuditEntry, *, durable: bool) -> None:
    """Queue the entry; for an accepted change, wait until it is committed. A store
    that cannot take it in time does not undo the change: logged, and the answer goes."""
    if not durable:
        audit.record(entry)
    elif not await audit.commit(entry):
        log.error("audit.not_committed", request_id=entry.request_id, action=entry.action)


def _success_entry(scope: Scope, state: dict[str, Any], changed: str | None) -> AuditEntry | None:
    """The entry this request will have if it answers with its route's own status (a
    change writes it in its own transaction: domain/recording.py)."""
    status = getattr(scope.get("route"), "status_code", None) or 200
    return _entry(scope, state, status, changed)


def _entry(
    scope: Scope, state: dict[str, Any], status: int, changed: str | None
) -> AuditEntry | None:
    """One request that asked for a change: who, what, which resource, outcome. The
    resource is the route's own, else the one the domain recorded (a new one's id)."""
    user = state.get("user")
    if user is None:
        return None  # not authenticated: the action log has it, the audit does not
    params = scope.get("path_params") or {}
    resource = next((str(params[k]) for k in _RESOURCE_PARAMS if k in params), None)
    if resource is None:
        resource = changed
    client = scope.get("client")
    return AuditEntry(
        username=user,
        credential=state.get("credential") or "basic",
        method=scope.get("method", "WS"),
        route=getattr(scope.get("route"), "path", "unmatched"),
        action=getattr(scope.get("endpoint"), "__name__", "unknown"),
        resource=resource[:128] if resource else None,
        request_id=state.get("request_id"),
        status=status,
        source=client[0] if client else None,
    )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _CLIENT_ID.match(text):
                return text
            break
    return str(uuid.uuid4())
