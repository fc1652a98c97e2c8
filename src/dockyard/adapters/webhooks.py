"""``WebhookSender`` over httpx's transport, with the SSRF rules of ``fetch.py``.

Every attempt resolves the host again (DNS may have changed since the webhook was
made), refuses it unless every address is public or inside ``FETCH_ALLOW_NETS``, and
POSTs to the pinned address (original ``Host`` header; for https the real name as TLS
server name). A redirect is an answer like any other non-2xx: never followed. One
deadline covers resolution, connection and the answer's head; the body is not read.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence

import httpx

from dockyard.adapters.fetch import (
    IPNetwork,
    Resolver,
    parse_target,
    pinned_addresses,
    pinned_request,
    system_resolve,
)
from dockyard.domain.automation.hooks import Attempt
from dockyard.domain.containers.provision import check_url, url_refused
from dockyard.errors import ValidationError

_REDIRECTS = range(300, 400)


class HttpWebhookSender:
    def __init__(
        self,
        *,
        timeout: float,
        allow_nets: Sequence[IPNetwork] = (),
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        # One TLS context for every attempt: building one loads the CA bundle (~50 ms).
        self._ssl = verify or httpx.create_ssl_context()
        self._timeout = timeout
        self._allow = tuple(allow_nets)
        self._resolve = resolver or system_resolve

    async def check(self, url: str, field: str) -> None:
        target = self._target(url, field)
        try:
            async with asyncio.timeout(self._timeout):
                await self._addresses(target, field, url)
        except TimeoutError:
            raise url_refused("resolving the host took too long", field, url) from None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        try:
            async with asyncio.timeout(self._timeout):
                target = self._target(url, "url")
                addresses = await self._addresses(target, "url", url)
                return await self._send(target, addresses, body, headers)
        except (TimeoutError, httpx.TimeoutException):
            return Attempt(None, "timeout")
        except ValidationError as exc:
            return Attempt(None, "url_refused" if exc.code == "URL_NOT_ALLOWED" else "dns")

    def _target(self, url: str, field: str) -> httpx.URL:
        check_url(url, field)
        return parse_target(url, field)

    async def _addresses(self, target: httpx.URL, field: str, url: str) -> list[str]:
        return await pinned_addresses(
            self._resolve, self._allow, target, field, url, dns_code="DNS"
        )

    async def _send(
        self, target: httpx.URL, addresses: list[str], body: bytes, headers: dict[str, str]
    ) -> Attempt:
        pinned_headers, extensions = pinned_request(target, self._timeout)
        sent = {**headers, **pinned_headers}
        for address in addresses:
            pinned = target.copy_with(host=address, userinfo=b"", fragment=None)
            request = httpx.Request("POST", pinned, headers=sent, content=body)
            request.extensions = extensions
            async with httpx.AsyncHTTPTransport(
                verify=self._ssl, trust_env=False, retries=0
            ) as transport:
                try:
                    response = await transport.handle_async_request(request)
                except httpx.TimeoutException:
                    raise
                except httpx.ConnectError:
                    continue  # the next address, or "connect"
                except httpx.TransportError:
                    return Attempt(None, "transport")  # e.g. closed before an answer
                await response.aclose()
            code = response.status_code
            if 200 <= code < 300:
                return Attempt(code)
            return Attempt(code, "redirect" if code in _REDIRECTS else "status")
        return Attempt(None, "connect")
