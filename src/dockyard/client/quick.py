"""Reads of JSON over plain HTTP without the HTTP stack: for the command line's start-up
critical reads (``dockyard ps``), where importing httpx (with httpcore, h11, ssl, email
and urllib.request) was most of a 250 ms start. Stdlib only: a socket, one request per
connection (``Connection: close``), HTTP/1.1 with a length or chunked body.

Only ``http://`` without a proxy in the environment takes this way (``usable``); the
callers fall back to the SDK's client otherwise. Errors are the SDK's (``errors.py``'s
``error_for``, the same translation as the transport's) and retries follow the same
``RetryPolicy``: GETs are idempotent, so 429/503 and refused connections are retried.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from dockyard.client.errors import TransportError, error_for
from dockyard.client.retry import RetryPolicy, parse_retry_after

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")
MAX_BODY = 64 * 1024 * 1024


def usable(url: str, env: Mapping[str, str]) -> bool:
    """Whether ``url`` can be read this way: plain http, and no proxy configured."""
    return url.startswith("http://") and not any(env.get(name) for name in PROXY_VARS)


def clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters without the unset ones; booleans and lists as the API spells
    them (the SDK's transport uses the same)."""
    if params is None:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | tuple | set | frozenset):
            value = ",".join(str(v) for v in value)
        out[key] = value
    return out


def get_json(
    base_url: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    retry: RetryPolicy | None = None,
) -> Any:
    """``GET base_url + path`` and its JSON body; an error answer raises the SDK's error."""
    policy = retry or RetryPolicy()
    target = _target(path, params)
    attempt = 0
    while True:
        attempt += 1
        try:
            status, head, body = _exchange(base_url, target, headers or {}, timeout)
        except OSError as exc:
            wait = policy.delay(attempt, None, None)
            if wait is None:
                raise TransportError(f"GET {path}: {exc!r}") from exc
            time.sleep(wait)
            continue
        if status < 400:
            return json.loads(body)
        retry_after = head.get("retry-after")
        wait = policy.delay(attempt, status, retry_after)
        if wait is None:
            raise error_for(status, _decoded(body), retry_after=parse_retry_after(retry_after))
        time.sleep(wait)


def get_pages(
    base_url: str,
    path: str,
    key: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Iterator[dict[str, Any]]:
    """Every item of a paged list (``{key: [...], "next_cursor": …}``), page by page."""
    query = dict(params or {})
    while True:
        page = get_json(base_url, path, params=query, headers=headers, timeout=timeout)
        yield from page[key]
        if not page.get("next_cursor"):
            return
        query["cursor"] = page["next_cursor"]


def _target(path: str, params: Mapping[str, Any] | None) -> str:
    query = clean_params(params) or {}
    if not query:
        return path
    pairs = "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in query.items())
    return f"{path}?{pairs}"


def _exchange(
    base_url: str, target: str, headers: Mapping[str, str], timeout: float
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection: the status, the headers and the whole body."""
    url = urlsplit(base_url)
    host, port = url.hostname or "localhost", url.port or 80
    prefix = url.path.rstrip("/")
    lines = [f"GET {prefix}{target} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
    lines += ["Accept: application/json", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    # An ASCII name as bytes: a str would load the IDNA codec (~5 ms) to encode it.
    address = host.encode("ascii") if host.isascii() else host
    with socket.create_connection((address, port), timeout=timeout) as sock:  # type: ignore[arg-type]
        sock.sendall(request)
        raw = _read_all(sock)
    return _parse(raw)


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := sock.recv(256 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            raise ConnectionError("the answer is too large")
    return b"".join(chunks)


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ConnectionError("the answer ended before its headers")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _unchunk(body)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if len(body) < length:
            raise ConnectionError("the answer ended early")
        body = body[:length]
    return int(parts[1]), headers, body


def _unchunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise ConnectionError("a chunked answer ended early")
        size = int(data[pos:end].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(out)
        start = end + 2
        if len(data) < start + size:
            raise ConnectionError("a chunked answer ended early")
        out.append(data[start : start + size])
        pos = start + size + 2


def _decoded(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")
