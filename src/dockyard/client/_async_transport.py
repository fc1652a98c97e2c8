"""Every request of the async client goes through ``AsyncTransport``: credentials,
timeouts, retries (``retry.py``) and the translation of errors into the SDK's tree
(``errors.py``) happen here and nowhere else. ``_sync_transport.py`` is generated from
this file (``scripts/unasync_client.py``); edit this one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from dockyard.client import _async_io as io
from dockyard.client.errors import TransportError, error_for
from dockyard.client.quick import clean_params
from dockyard.client.retry import RetryPolicy, may_retry, parse_retry_after

# Short calls get a deadline; lifecycle actions wait on Compose; follows may be quiet.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
STREAM_TIMEOUT = httpx.Timeout(60.0, connect=10.0, read=None)


def new_idempotency_key() -> str:
    return f"sdk-{uuid.uuid4()}"


class AsyncTransport:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.retry = retry
        self.timeout = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=self.timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        timeouts: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One call, retried when the answer says so and the call may be repeated; an error
        answer raises."""
        async with self.stream(
            method,
            path,
            params=params,
            json=json,
            content=content,
            headers=headers,
            timeouts=timeouts,
        ) as response:
            await response.aread()
            return response

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        timeouts: httpx.Timeout | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """A response whose body is read by the caller; retried only before it starts."""
        headers = dict(headers or {})
        repeatable = may_retry(method, headers) and not _is_stream(content)
        request = self.http.build_request(
            method,
            path,
            params=clean_params(params),
            json=json,
            content=content,
            headers=headers,
            timeout=timeouts or self.timeout,
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.http.send(request, stream=True)
            except httpx.TransportError as exc:
                wait = self.retry.delay(attempt, None, None) if repeatable else None
                if wait is None:
                    raise TransportError(f"{method} {path}: {exc!r}") from exc
                await io.sleep(wait)
                continue
            try:
                if response.status_code < 400:
                    yield response
                    return
                await response.aread()
                retry_after = response.headers.get("retry-after")
                wait = self.retry.delay(attempt, response.status_code, retry_after)
                if wait is None or not repeatable:
                    raise error_for(
                        response.status_code,
                        _body(response),
                        retry_after=parse_retry_after(retry_after),
                    )
            finally:
                await response.aclose()
            await io.sleep(wait)


def _is_stream(content: Any) -> bool:
    """A body read from an iterator cannot be sent twice."""
    return content is not None and not isinstance(content, bytes | str)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
