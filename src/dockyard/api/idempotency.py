"""``Idempotency-Key`` on the POSTs that create (rules: ``domain/idempotency.py``).

``Idempotent`` is a route dependency: after authentication it claims the key for this
request, or raises ``Replay`` with the kept answer (rendered by ``install``).
``IdempotencyMiddleware`` keeps the answer of a request that claimed a key, once its
last byte is sent; a request that ended without one (the server failed) frees the key.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.deps import PrincipalDep, Services, ServicesDep
from dockyard.domain.access.permissions import Principal
from dockyard.domain.idempotency import Claim, Idempotency, KeptAnswer

log = structlog.get_logger("dockyard.api")

HEADER = "idempotency-key"
MAX_KEPT = 1024 * 1024  # a larger answer is not kept (creates answer a few KiB)
_STATE = "idempotency"
SECRET_FIELDS = frozenset({"key", "token", "secret"})


class Replay(Exception):
    def __init__(self, answer: KeptAnswer) -> None:
        self.answer = answer


async def idempotent(request: Request, principal: PrincipalDep, services: ServicesDep) -> None:
    if request.headers.get(HEADER) is not None:
        await claim(request, principal, services, await request.body())


async def claim(request: Request, principal: Principal, services: Services, body: bytes) -> None:
    """Claim the request's key for ``body`` (a route whose body is an upload passes its
    digest, read as it was spooled), or raise ``Replay`` with the kept answer."""
    key = request.headers.get(HEADER)
    if key is None:
        return
    route = f"{request.method} {getattr(request.scope.get('route'), 'path', request.url.path)}"
    found = await services.idempotency.begin(principal.username, key, route, body)
    if isinstance(found, KeptAnswer):
        raise Replay(found)
    request.state.idempotency = found


# For the routes that create: `@router.post(..., dependencies=[IDEMPOTENT])`.
IDEMPOTENT = Depends(idempotent)


def install(app: FastAPI) -> None:
    @app.exception_handler(Replay)
    async def _replay(request: Request, exc: Replay) -> Response:
        answer = exc.answer
        return Response(
            answer.body or b"",
            status_code=answer.status or 200,
            media_type=answer.content_type,
            headers={"Idempotent-Replayed": "true"},
        )


class IdempotencyMiddleware:
    """Keeps the answer of each request that claimed an idempotency key."""

    def __init__(self, app: ASGIApp, *, idempotency: Idempotency) -> None:
        self.app = app
        self.idempotency = idempotency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        answer: dict[str, Any] = {"status": None, "type": None, "body": bytearray()}

        async def capture(message: Message) -> None:
            if _STATE in scope.get("state", {}):
                if message["type"] == "http.response.start":
                    answer["status"] = message["status"]
                    for name, value in message.get("headers", []):
                        if name.lower() == b"content-type":
                            answer["type"] = value.decode("latin-1")
                elif message["type"] == "http.response.body":
                    body: bytearray = answer["body"]
                    if len(body) <= MAX_KEPT:
                        body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            claim = scope.get("state", {}).get(_STATE)
            if isinstance(claim, Claim):
                await self._finish(claim, answer)

    async def _finish(self, claim: Claim, answer: dict[str, Any]) -> None:
        status = answer["status"] or 500
        body = _without_secrets(bytes(answer["body"]))
        if len(body) > MAX_KEPT:
            status = 500  # not kept: the key is freed rather than replaying a cut answer
        try:
            await self.idempotency.finish(claim, status, answer["type"], body)
        except Exception as exc:  # the store failed: the key stays pending (409 on retry)
            log.error("idempotency.keep_failed", exc_type=type(exc).__name__)


def _without_secrets(body: bytes) -> bytes:
    """A new service key or token is shown once and only its hash is stored: the kept
    answer has it as null (a replay still names the key's id, to revoke it)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or not SECRET_FIELDS & data.keys():
        return body
    return json.dumps({k: None if k in SECRET_FIELDS else v for k, v in data.items()}).encode()
