"""``AsyncDockyard``: the async client of Dockyard's API. ``_sync_client.py`` (``Dockyard``)
is generated from this file (``scripts/unasync_client.py``); edit this one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from dockyard.client._async_access import AsyncAccounts, AsyncKeys
from dockyard.client._async_jobs import AsyncBuilds
from dockyard.client._async_resources import AsyncContainers, AsyncFiles, AsyncImages, paginate
from dockyard.client._async_transport import STREAM_TIMEOUT, AsyncTransport, new_idempotency_key
from dockyard.client.auth import Auth, auth_headers
from dockyard.client.retry import RetryPolicy

# unasync: async-only
from dockyard.client.terminal import Terminal, terminal_url

# unasync: end

if TYPE_CHECKING:
    from dockyard.client.models import Event, Health, Metrics, NewToken, WhoAmI


class AsyncDockyard:
    """A Dockyard service at ``url``, reached with ``auth``: ``(user, password)`` (Basic),
    a service key (``"dyk_…"`` or ``ServiceKey(…)``) or a bearer token (``BearerToken(…)``).

    ``timeout`` is the deadline of each call in seconds (streams that follow have no read
    deadline); ``retry`` says how 429 and 503 answers are retried (``RetryPolicy(1)``:
    never). Use it as a context manager, or call ``aclose()``."""

    def __init__(
        self,
        url: str,
        auth: Auth = None,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._headers = auth_headers(auth)
        self._timeout = timeout
        self.http = AsyncTransport(
            self.url,
            self._headers,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
        )
        self.containers = AsyncContainers(self.http)
        self.files = AsyncFiles(self.http)
        self.images = AsyncImages(self.http)
        self.builds = AsyncBuilds(self.http)
        self.accounts = AsyncAccounts(self.http)
        self.keys = AsyncKeys(self.http)

    async def __aenter__(self) -> AsyncDockyard:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def logs(
        self,
        cuid: str,
        *,
        follow: bool = False,
        tail: int | str | None = None,
        since: str | None = None,
        timestamps: bool = False,
        replica: int | None = None,
    ) -> AsyncIterator[str]:
        """The container's output, line by line (without line ends); with ``follow`` as it
        is written, until the container stops."""
        params = {
            "follow": follow or None,
            "tail": tail,
            "since": since,
            "timestamps": timestamps or None,
            "replica": replica,
        }
        async with self.http.stream(
            "GET", f"/containers/{cuid}/logs", params=params, timeouts=STREAM_TIMEOUT
        ) as resp:
            async for line in resp.aiter_lines():
                yield line

    async def metrics(self, cuid: str) -> Metrics:
        from dockyard.client.models import Metrics

        resp = await self.http.request("GET", f"/containers/{cuid}/metrics")
        return Metrics.model_validate(resp.json())

    def events(
        self,
        *,
        follow: bool = False,
        cuid: str | None = None,
        type: str | list[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Event]:
        """Past events, newest first (all pages, lazily); or with ``follow`` the new ones
        as they happen (from ``since`` when given), oldest first, until you stop."""
        from dockyard.client.models import Event

        params: dict[str, Any] = {"cuid": cuid, "type": type, "since": since, "until": until}
        if follow:
            return self._follow_events(params)
        params["limit"] = page_size
        return paginate(self.http, "/events", "events", Event, params)

    async def _follow_events(self, params: dict[str, Any]) -> AsyncIterator[Event]:
        from dockyard.client.models import Event

        params = {**params, "follow": True}
        async with self.http.stream(
            "GET", "/events", params=params, timeouts=STREAM_TIMEOUT
        ) as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    yield Event.model_validate(json.loads(line[5:]))

    async def health(self) -> Health:
        from dockyard.client.models import Health

        return Health.model_validate((await self.http.request("GET", "/healthz")).json())

    async def whoami(self) -> WhoAmI:
        from dockyard.client.models import WhoAmI

        return WhoAmI.model_validate((await self.http.request("GET", "/auth/whoami")).json())

    async def issue_token(
        self, *, expires_in: int | None = None, role: str | None = None
    ) -> NewToken:
        """``POST /auth/token``: a bearer token for these credentials (``.token`` is in
        this answer only; ``.id`` revokes it)."""
        from dockyard.client.models import NewToken

        body = {k: v for k, v in {"expires_in": expires_in, "role": role}.items() if v is not None}
        headers = {"Idempotency-Key": new_idempotency_key()}
        resp = await self.http.request("POST", "/auth/token", json=body, headers=headers)
        return NewToken.model_validate(resp.json())

    async def revoke_token(self, token_id: str) -> None:
        """``DELETE /auth/tokens/{id}``: the token no longer works."""
        await self.http.request("DELETE", f"/auth/tokens/{token_id}")

    # unasync: async-only
    def terminal(
        self,
        cuid: str,
        *,
        cmd: str | None = None,
        tty: bool = True,
        cols: int = 80,
        rows: int = 24,
        replica: int | None = None,
    ) -> Terminal:
        """An async context manager over ``/ws/{cuid}`` (binary frames): ``cmd`` runs as
        a new exec session, else the session attaches to the main process."""
        url = terminal_url(self.url, cuid, cmd=cmd, tty=tty, cols=cols, rows=rows, replica=replica)
        return Terminal(url, self._headers, open_timeout=self._timeout or 30.0)

    # unasync: end
