"""Fetching client-given URLs without reaching what only the service can reach (SSRF).

The host name is resolved once and every address must be public — not loopback,
private, link-local (the cloud metadata address among them), multicast, reserved,
unspecified, shared (100.64.0.0/10), unique-local IPv6, nor any of these wrapped in an
IPv6 form (IPv4-mapped, 6to4, NAT64) — unless an admin allowed its network
(``FETCH_ALLOW_NETS``). The request then goes to that pinned address: the IP literal is
the URL's host, the original ``Host`` header is sent, and for https the real name is the
TLS server name (``sni_hostname``), so the certificate is verified against it. Redirects
are followed by hand, at most ``max_redirects``, each hop checked the same way. One
deadline covers resolution, connection, redirects and body; the size limit counts bytes
as they arrive. The transport is used directly (no ``httpx.Client``): no proxy from the
environment, no cookies, and no request log line carrying a URL's query string.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import httpx
import structlog

from dockyard.domain.containers.provision import SCHEMES, public_url, url_refused
from dockyard.domain.ports import Fetched
from dockyard.errors import DeadlineError, PayloadTooLargeError

log = structlog.get_logger("dockyard.fetch")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_CHUNK = 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_ULA = ipaddress.IPv6Network("fc00::/7")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def refusal(address: IPAddress) -> str | None:
    """Why a client may not make Dockyard connect to ``address``; None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded, form = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal(embedded)
            return f"{reason} ({form})" if reason else None
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address"
    if address.is_multicast:
        return "multicast address"
    if address in _SHARED:
        return "shared address space (100.64.0.0/10)"
    if address in _ULA:
        return "unique local address"
    if address.is_reserved:
        return "reserved address"
    if address.is_private:
        return "private address"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    return None, ""


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``FETCH_ALLOW_NETS``: a comma list of CIDRs (ValueError names a bad one)."""
    nets: list[IPNetwork] = []
    for item in text.split(","):
        if item.strip():
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
    return tuple(nets)


def refusal_allowing(address: IPAddress, allow: Sequence[IPNetwork]) -> str | None:
    """``refusal``, except that an address inside ``allow`` (``FETCH_ALLOW_NETS``, also
    in an IPv6 form that wraps it) may be reached. Git fetches use the same rule."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded, _ = _embedded_ipv4(address)
        if embedded is not None:
            candidates.append(embedded)
    if any(c in net for c in candidates for net in allow):
        return None
    return refusal(address)


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class HttpUrlFetcher:
    """``UrlFetcher`` over httpx's transport, with the rules of this module."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout: float,
        allow_nets: Sequence[IPNetwork] = (),
        max_redirects: int = 3,
        verify: ssl.SSLContext | bool = True,
        resolver: Resolver | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._allow = tuple(allow_nets)
        self._max_redirects = max_redirects
        # One TLS context for every fetch: building one per request costs ~50 ms.
        self._verify: ssl.SSLContext | bool = (
            httpx.create_ssl_context() if verify is True else verify
        )
        self._resolve = resolver or system_resolve

    async def fetch(self, url: str, dest: Path, *, field: str) -> Fetched:
        shown = public_url(url)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                fetched = await self._follow(url, dest, field)
        except (TimeoutError, httpx.TimeoutException):
            log.warning("fetch.timeout", field=field, url=shown, limit=self._timeout)
            raise DeadlineError(
                f"{field}: fetching took longer than {self._timeout:g} s",
                code="FETCH_TIMEOUT",
                details={"field": field, "url": shown, "limit": self._timeout},
            ) from None
        log.info(
            "fetch.finished",
            field=field,
            url=fetched.url,
            bytes=fetched.size,
            duration=round(time.monotonic() - started, 3),
        )
        return fetched

    async def _follow(self, url: str, dest: Path, field: str) -> Fetched:
        current = url
        for _hop in range(self._max_redirects + 1):
            target = self._target(current, field)
            addresses = await self._addresses(target, field, current)
            response, transport = await self._connect(target, addresses, field, current)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    try:
                        current = str(target.join(location))
                    except httpx.InvalidURL:
                        raise url_refused(
                            "redirected to an invalid URL", field, current, code="FETCH_FAILED"
                        ) from None
                    log.info("fetch.redirected", field=field, to=public_url(current))
                    continue
                if not 200 <= response.status_code < 300:
                    raise url_refused(
                        f"the server answered {response.status_code}",
                        field,
                        current,
                        code="FETCH_FAILED",
                        status=response.status_code,
                    )
                size = await self._save(response, dest, field, current)
                return Fetched(public_url(current), size, response.headers.get("content-type"))
            finally:
                await response.aclose()
                await transport.aclose()
        raise url_refused(
            f"more than {self._max_redirects} redirects", field, url, code="FETCH_FAILED"
        )

    def _target(self, url: str, field: str) -> httpx.URL:
        return parse_target(url, field)

    async def _addresses(self, target: httpx.URL, field: str, url: str) -> list[str]:
        return await pinned_addresses(
            self._resolve, self._allow, target, field, url, dns_code="FETCH_FAILED"
        )

    async def _connect(
        self, target: httpx.URL, addresses: list[str], field: str, url: str
    ) -> tuple[httpx.Response, httpx.AsyncHTTPTransport]:
        """Send the GET to the first pinned address that accepts a connection."""
        headers, extensions = pinned_request(target, self._timeout)
        failure: Exception | None = None
        for address in addresses:
            pinned = target.copy_with(host=address, userinfo=b"", fragment=None)
            transport = httpx.AsyncHTTPTransport(verify=self._verify, trust_env=False)
            request = httpx.Request("GET", pinned, headers=headers, extensions=extensions)
            try:
                return await transport.handle_async_request(request), transport
            except httpx.TimeoutException:
                await transport.aclose()
                raise
            except httpx.TransportError as exc:
                await transport.aclose()
                failure = exc
        reason = failure.__class__.__name__ if failure else "no address"
        raise url_refused(
            f"cannot connect ({reason})", field, url, code="FETCH_FAILED", reason=str(failure)
        )

    async def _save(self, response: httpx.Response, dest: Path, field: str, url: str) -> int:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large(field, url)
        fd = await asyncio.to_thread(
            os.open, dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600
        )
        received = 0
        buffer = bytearray()
        try:
            try:
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if received > self._max_bytes:
                        raise self._too_large(field, url)
                    buffer += chunk
                    if len(buffer) >= _CHUNK:
                        await asyncio.to_thread(_write_all, fd, bytes(buffer))
                        buffer.clear()
            except httpx.TimeoutException:
                raise
            except (httpx.TransportError, httpx.DecodingError) as exc:
                raise url_refused(
                    f"the transfer failed ({exc.__class__.__name__})",
                    field,
                    url,
                    code="FETCH_FAILED",
                ) from None
            if buffer:
                await asyncio.to_thread(_write_all, fd, bytes(buffer))
        finally:
            await asyncio.to_thread(os.close, fd)
        return received

    def _too_large(self, field: str, url: str) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"{field}: the download is larger than {self._max_bytes} bytes",
            code="FETCH_TOO_LARGE",
            details={"field": field, "url": public_url(url), "limit": self._max_bytes},
        )


_TIMEOUTS = ("connect", "read", "write", "pool")


def parse_target(url: str, field: str) -> httpx.URL:
    """``url`` as an http(s) URL with a host, or the client's 400 (``URL_NOT_ALLOWED``)."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        raise url_refused("not a valid URL", field, url) from None
    if target.scheme not in SCHEMES:
        raise url_refused("only http and https URLs can be fetched", field, url)
    if not target.raw_host:
        raise url_refused("the URL has no host", field, url)
    return target


def pinned_request(target: httpx.URL, timeout: float) -> tuple[dict[str, str], dict[str, object]]:
    """Headers and extensions of a request sent to one of ``target``'s pinned addresses:
    the Host, SNI and any credentials stay those of the URL; one deadline for each phase."""
    headers = {"Host": target.netloc.decode("ascii"), "Accept-Encoding": "identity"}
    if target.username or target.password:
        pair = f"{target.username}:{target.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    extensions: dict[str, object] = {"timeout": dict.fromkeys(_TIMEOUTS, timeout)}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.raw_host.decode("ascii")
    return headers, extensions


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def pinned_addresses(
    resolve: Resolver,
    allow: Sequence[IPNetwork],
    target: httpx.URL,
    field: str,
    url: str,
    *,
    dns_code: str,
) -> list[str]:
    """Resolve ``target``'s host once; every address must pass the SSRF rule (public, or
    inside ``allow``), or the URL is refused. The addresses are what to connect to (the
    host is never resolved again: no DNS rebinding). Fetches and webhook deliveries."""
    host = target.raw_host.decode("ascii")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        found = await resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise url_refused(
            f"cannot resolve the host ({exc.__class__.__name__})", field, url, code=dns_code
        ) from None
    addresses = list(dict.fromkeys(a.split("%", 1)[0] for a in found))
    if not addresses:
        raise url_refused("the host has no address", field, url, code=dns_code)
    for text in addresses:
        reason = refusal_allowing(ipaddress.ip_address(text), allow)
        if reason is not None:
            log.warning("fetch.refused", field=field, url=public_url(url), address=text)
            raise url_refused(f"the host resolves to a {reason}", field, url, reason=reason)
    return addresses
