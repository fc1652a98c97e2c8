"""What a request body (and its query) may be, checked before the application reads it
(issue 9). A query parameter given twice is 400 ``REPEATED_PARAMETER``.

Routes take JSON, except the few that take an archive (``RAW_BODY_ROUTES``) and those
that take either (``UPLOAD_OR_JSON_ROUTES``: JSON held to these rules). A body
sent as a form, as text or as multipart to a JSON route is 415 (a body without any
Content-Type is read as JSON, as curl users expect); a JSON body larger than
``max_json_bytes`` is 413 without being read to its end. Raw routes keep their own,
larger, limits (uploads).
"""

from __future__ import annotations

import re
from email.message import Message as MimeMessage
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.errors import send_error
from dockyard.errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError

# Paths whose body is not JSON: ZIP uploads (application/zip or multipart).
RAW_BODY_ROUTES = re.compile(r"/containers/[^/]+/upload-zip\Z")
# Paths that take JSON (held to the JSON rules) or an upload the route reads itself
# (multipart, an archive): POST /builds.
UPLOAD_OR_JSON_ROUTES = re.compile(r"/builds\Z")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: str) -> bool:
    mime = MimeMessage()
    mime["content-type"] = content_type
    subtype = mime.get_content_subtype()
    return mime.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class BodyRulesMiddleware:
    def __init__(self, app: ASGIApp, *, max_json_bytes: int, dev_mode: bool) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.dev_mode = dev_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (repeated := _repeated_parameter(scope)):
            twice = ValidationError(
                f"query parameter {repeated!r} is given more than once",
                code="REPEATED_PARAMETER",
                details={"field": repeated},
            )
            await send_error(send, scope.setdefault("state", {}), twice, dev_mode=self.dev_mode)
            return
        if (
            scope["type"] != "http"
            or scope["method"] not in _WITH_BODY
            or RAW_BODY_ROUTES.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        has_body = b"transfer-encoding" in headers or (length is not None and length != b"0")
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        state = scope.setdefault("state", {})
        if has_body and content_type and not is_json(content_type):
            if UPLOAD_OR_JSON_ROUTES.match(scope["path"]):
                await self.app(scope, receive, send)  # the route checks the type
                return
            refused = UnsupportedMediaTypeError(
                "this route takes a JSON body: send Content-Type: application/json",
                details={"content_type": content_type[:100]},
            )
            await send_error(send, state, refused, dev_mode=self.dev_mode)
            return
        if length is not None and length.isdigit() and int(length) > self.max_json_bytes:
            await send_error(send, state, self._too_large(), dev_mode=self.dev_mode)
            return
        if not content_type:
            # In place: the router writes the matched route into this very scope, and
            # the outer middleware reads it from there (audit, action log).
            scope["headers"] = [*scope["headers"], (b"content-type", b"application/json")]
        if b"transfer-encoding" in headers:
            body = await self._read_bounded(receive)
            if body is None:
                await send_error(send, state, self._too_large(), dev_mode=self.dev_mode)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"a JSON body may be at most {self.max_json_bytes} bytes",
            code="BODY_TOO_LARGE",
            details={"limit": self.max_json_bytes},
        )

    async def _read_bounded(self, receive: Receive) -> bytes | None:
        """A chunked JSON body, read whole (it is small); None past the limit."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return bytes(body)  # gone: the application sees an empty body, then this
            body.extend(message.get("body", b""))
            if len(body) > self.max_json_bytes:
                return None
            if not message.get("more_body", False):
                return bytes(body)


def _repeated_parameter(scope: Scope) -> str | None:
    """Every query parameter takes one value (lists are comma-separated, e.g.
    ``status=running,paused``): a second one would be silently dropped."""
    raw: bytes = scope.get("query_string", b"")
    if b"&" not in raw:
        return None
    names: list[str] = [n for n, _ in parse_qsl(raw.decode("latin-1"), keep_blank_values=True)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name[:64]
        seen.add(name)
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
