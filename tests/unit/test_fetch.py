"""Fetching client-given URLs: every refused address range, pinning, redirects, limits.

A real HTTP(S) server on 127.0.0.1 runs in a thread; the fetcher is allowed to reach it
only where a test says so (``allow_nets``), as an admin's ``FETCH_ALLOW_NETS`` would."""

from __future__ import annotations

import base64
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import structlog
import trustme

from dockyard.adapters.fetch import HttpUrlFetcher, parse_networks, refusal
from dockyard.domain.containers.provision import Provision, file_name, public_url
from dockyard.errors import DeadlineError, PayloadTooLargeError, ValidationError

LOCAL = parse_networks("127.0.0.1/32")
Handler = Callable[[BaseHTTPRequestHandler], None]


class FileServer:
    """A threaded HTTP server with scripted routes; records each request it gets."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[dict[str, Any]] = []
        self.sni: list[str | None] = []
        self.release = threading.Event()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(
                    {
                        "path": self.path,
                        "host": self.headers.get("Host"),
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                route = server.routes.get(urlsplit(self.path).path)
                if route is None:
                    self.send_error(404)
                    return
                route(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        if tls is not None:

            def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
                self.sni.append(name)

            tls.sni_callback = record_sni  # type: ignore[assignment]
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def body(data: bytes, *, declare: bool = True, status: int = 200) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        if declare:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


def stall(server: FileServer) -> Handler:
    """Headers and one byte, then nothing until the test ends."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        h.wfile.write(b"x")
        h.wfile.flush()
        server.release.wait(30)

    return handle


def drip(server: FileServer) -> Handler:
    """A byte every 50 ms for 3 s: no single read ever waits long."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.end_headers()
        for _ in range(60):
            if server.release.wait(0.05):
                return
            try:
                h.wfile.write(b"x")
                h.wfile.flush()
            except OSError:
                return

    return handle


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    srv.routes["/hello.txt"] = body(b"hello")
    try:
        yield srv
    finally:
        srv.close()


def fetcher(**kw: Any) -> HttpUrlFetcher:
    values: dict[str, Any] = {"max_bytes": 1024 * 1024, "timeout": 10.0, "allow_nets": LOCAL}
    values.update(kw)
    return HttpUrlFetcher(**values)


def fixed_resolver(
    table: dict[str, list[str]], calls: list[tuple[str, int]] | None = None
) -> Callable[[str, int], Any]:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append((host, port))
        return table.get(host, [host])

    return resolve


# -- addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback address"),
        ("http://127.8.9.1:8080/x", "loopback address"),
        ("http://2130706433/", "loopback address"),  # 127.0.0.1 written as one number
        ("http://10.1.2.3/", "private address"),
        ("http://172.16.5.4/", "private address"),
        ("http://192.168.0.10/", "private address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address"),
        ("http://169.254.1.1/", "link-local address"),
        ("http://224.0.0.251/", "multicast address"),
        ("http://239.1.2.3/", "multicast address"),
        ("http://240.0.0.1/", "reserved address"),
        ("http://0.0.0.0/", "unspecified address"),
        ("http://100.64.0.1/", "shared address space (100.64.0.0/10)"),
        ("http://100.127.255.254/", "shared address space (100.64.0.0/10)"),
        ("http://[::1]/", "loopback address"),
        ("http://[::]/", "unspecified address"),
        ("http://[fd12:3456::1]/", "unique local address"),
        ("http://[fc00::1]/", "unique local address"),
        ("http://[fe80::1]/", "link-local address"),
        ("http://[ff02::1]/", "multicast address"),
        ("http://[::ffff:127.0.0.1]/", "loopback address (IPv4-mapped)"),
        ("http://[::ffff:10.0.0.1]/", "private address (IPv4-mapped)"),
        ("http://[::ffff:169.254.169.254]/", "link-local address (IPv4-mapped)"),
        ("http://[::ffff:100.64.1.1]/", "shared address space (100.64.0.0/10) (IPv4-mapped)"),
        ("http://[::ffff:0.0.0.0]/", "unspecified address (IPv4-mapped)"),
        ("http://[2002:a9fe:a9fe::1]/", "link-local address (6to4)"),
        ("http://[64:ff9b::a9fe:a9fe]/", "link-local address (NAT64)"),
    ],
)
async def test_non_public_addresses_are_refused(tmp_path: Path, url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        await fetcher(allow_nets=()).fetch(url, tmp_path / "out", field="data_url")
    assert err.value.code == "URL_NOT_ALLOWED"
    assert err.value.details["reason"] == reason
    assert err.value.details["field"] == "data_url"
    assert not (tmp_path / "out").exists()


def test_public_addresses_pass() -> None:
    for text in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"):
        assert refusal(ipaddress.ip_address(text)) is None, text


async def test_the_local_server_is_refused_without_an_allowance(
    tmp_path: Path, server: FileServer
) -> None:
    with pytest.raises(ValidationError) as err:
        await fetcher(allow_nets=()).fetch(
            server.url("/hello.txt"), tmp_path / "out", field="script_url"
        )
    assert err.value.code == "URL_NOT_ALLOWED"
    assert err.value.details == {
        "field": "script_url",
        "url": server.url("/hello.txt"),
        "reason": "loopback address",
    }
    assert server.requests == []


async def test_an_allowance_covers_only_its_network(tmp_path: Path, server: FileServer) -> None:
    got = await fetcher().fetch(server.url("/hello.txt"), tmp_path / "out", field="data_url")
    assert (tmp_path / "out").read_bytes() == b"hello" and got.size == 5
    for url in (server.url("/hello.txt", host="127.0.0.2"), server.url("/", host="[::1]")):
        with pytest.raises(ValidationError) as err:
            await fetcher().fetch(url, tmp_path / "out", field="data_url")
        assert err.value.code == "URL_NOT_ALLOWED"
    assert len(server.requests) == 1


async def test_name_resolved_once_and_the_connection_pinned(
    tmp_path: Path, server: FileServer
) -> None:
    calls: list[tuple[str, int]] = []
    resolve = fixed_resolver({"files.example": ["127.0.0.1"]}, calls)
    url = server.url("/hello.txt?token=abc", host="files.example")
    await fetcher(resolver=resolve).fetch(url, tmp_path / "out", field="data_url")
    assert calls == [("files.example", server.port)]
    assert server.requests[0]["host"] == f"files.example:{server.port}"
    assert server.requests[0]["path"] == "/hello.txt?token=abc"
    assert (tmp_path / "out").read_bytes() == b"hello"


async def test_every_address_of_a_name_must_be_allowed(tmp_path: Path, server: FileServer) -> None:
    resolve = fixed_resolver({"files.example": ["127.0.0.1", "10.0.0.7"]})
    with pytest.raises(ValidationError) as err:
        await fetcher(resolver=resolve).fetch(
            server.url("/hello.txt", host="files.example"), tmp_path / "out", field="data_url"
        )
    assert err.value.details["reason"] == "private address"
    assert server.requests == []


async def test_only_http_and_https(tmp_path: Path) -> None:
    for url in ("ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1/"):
        with pytest.raises(ValidationError) as err:
            await fetcher().fetch(url, tmp_path / "out", field="data_url")
        assert err.value.code == "URL_NOT_ALLOWED"


# -- redirects -------------------------------------------------------------------


async def test_redirects_are_followed_up_to_three(tmp_path: Path, server: FileServer) -> None:
    server.routes["/r0"] = body(b"landed")
    for n in range(1, 5):
        server.routes[f"/r{n}"] = redirect(f"/r{n - 1}")
    got = await fetcher().fetch(server.url("/r3"), tmp_path / "out", field="data_url")
    assert (tmp_path / "out").read_bytes() == b"landed"
    assert got.url == server.url("/r0")
    with pytest.raises(ValidationError) as err:
        await fetcher().fetch(server.url("/r4"), tmp_path / "out2", field="data_url")
    assert err.value.code == "FETCH_FAILED" and "redirects" in err.value.message


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local address"),
        ("http://10.0.0.1/", "private address"),
        ("http://[::ffff:127.0.0.2]/", "loopback address (IPv4-mapped)"),
        ("http://internal.example/secret", "private address"),
    ],
)
async def test_each_redirect_hop_is_checked_again(
    tmp_path: Path, server: FileServer, location: str, reason: str
) -> None:
    server.routes["/go"] = redirect(location, 307)
    resolve = fixed_resolver({"internal.example": ["10.9.8.7"]})
    with pytest.raises(ValidationError) as err:
        await fetcher(resolver=resolve).fetch(server.url("/go"), tmp_path / "out", field="data_url")
    assert err.value.code == "URL_NOT_ALLOWED"
    assert err.value.details["reason"] == reason
    assert [r["path"] for r in server.requests] == ["/go"]


async def test_a_redirect_to_another_scheme_is_refused(tmp_path: Path, server: FileServer) -> None:
    server.routes["/go"] = redirect("file:///etc/passwd")
    with pytest.raises(ValidationError) as err:
        await fetcher().fetch(server.url("/go"), tmp_path / "out", field="data_url")
    assert err.value.code == "URL_NOT_ALLOWED"


# -- limits and failures ---------------------------------------------------------


async def test_size_limit_declared_or_not(tmp_path: Path, server: FileServer) -> None:
    server.routes["/declared"] = body(b"x" * 5000)
    server.routes["/undeclared"] = body(b"x" * 5000, declare=False)
    server.routes["/exact"] = body(b"x" * 1000, declare=False)
    small = fetcher(max_bytes=1000)
    for path in ("/declared", "/undeclared"):
        with pytest.raises(PayloadTooLargeError) as err:
            await small.fetch(server.url(path), tmp_path / "out", field="data_url")
        assert err.value.code == "FETCH_TOO_LARGE"
        assert err.value.details["limit"] == 1000
    got = await small.fetch(server.url("/exact"), tmp_path / "out", field="data_url")
    assert got.size == 1000 and (tmp_path / "out").stat().st_size == 1000


@pytest.mark.parametrize("route", ["/stall", "/drip"])
async def test_one_deadline_covers_the_whole_fetch(
    tmp_path: Path, server: FileServer, route: str
) -> None:
    server.routes["/stall"] = stall(server)
    server.routes["/drip"] = drip(server)
    with pytest.raises(DeadlineError) as err:
        await fetcher(timeout=0.6).fetch(server.url(route), tmp_path / "out", field="data_url")
    assert err.value.code == "FETCH_TIMEOUT" and err.value.kind == "timeout"


async def test_an_error_status_fails(tmp_path: Path, server: FileServer) -> None:
    with pytest.raises(ValidationError) as err:
        await fetcher().fetch(server.url("/missing"), tmp_path / "out", field="data_url")
    assert err.value.code == "FETCH_FAILED" and err.value.details["status"] == 404


async def test_userinfo_and_query_never_shown_nor_logged(
    tmp_path: Path, server: FileServer
) -> None:
    secret = server.url("/hello.txt?token=t0ken-value").replace("://", "://alice:pa55word@")
    with structlog.testing.capture_logs() as logs:
        await fetcher().fetch(secret, tmp_path / "out", field="data_url")
        with pytest.raises(ValidationError) as err:
            await fetcher().fetch(
                secret.replace("hello.txt", "missing"), tmp_path / "out", field="data_url"
            )
        with pytest.raises(ValidationError):
            await fetcher(allow_nets=()).fetch(secret, tmp_path / "out", field="data_url")
    shown = repr(logs) + repr(err.value.details) + err.value.message
    for needle in ("pa55word", "alice", "t0ken", "token="):
        assert needle not in shown
    assert err.value.details["url"] == server.url("/missing")
    # The userinfo is still used, as Basic credentials to the server the client named.
    assert (
        server.requests[0]["authorization"]
        == "Basic " + base64.b64encode(b"alice:pa55word").decode()
    )


# -- https -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[Callable[[str], FileServer]]:
    """``tls_server(name)``: an HTTPS server with a certificate for ``name`` only."""
    servers: list[FileServer] = []

    def start(name: str) -> FileServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)
        srv = FileServer(tls=context)
        srv.routes["/hello.txt"] = body(b"secure hello")
        servers.append(srv)
        return srv

    try:
        yield start
    finally:
        for srv in servers:
            srv.close()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_https_is_pinned_and_verified_against_the_real_name(
    tmp_path: Path, ca: trustme.CA, tls_server: Callable[[str], FileServer]
) -> None:
    srv = tls_server("files.example")
    resolve = fixed_resolver({"files.example": ["127.0.0.1"]})
    url = srv.url("/hello.txt", host="files.example", scheme="https")
    await fetcher(resolver=resolve, verify=trusting(ca)).fetch(
        url, tmp_path / "out", field="data_url"
    )
    assert (tmp_path / "out").read_bytes() == b"secure hello"
    assert srv.sni == ["files.example"]
    assert srv.requests[0]["host"] == f"files.example:{srv.port}"


async def test_https_with_a_certificate_for_another_name_fails(
    tmp_path: Path, ca: trustme.CA, tls_server: Callable[[str], FileServer]
) -> None:
    srv = tls_server("other.example")
    resolve = fixed_resolver({"files.example": ["127.0.0.1"]})
    url = srv.url("/hello.txt", host="files.example", scheme="https")
    with pytest.raises(ValidationError) as err:
        await fetcher(resolver=resolve, verify=trusting(ca)).fetch(
            url, tmp_path / "out", field="data_url"
        )
    assert err.value.code == "FETCH_FAILED"
    assert srv.requests == []


# -- what a create may ask -------------------------------------------------------


def test_provision_inputs_are_checked_up_front() -> None:
    script = base64.b64encode(b"print('hi')\n" * 20).decode()
    wrapped = "\n".join(script[i : i + 76] for i in range(0, len(script), 76))
    ok = Provision.parse(script=wrapped, script_url=None, data_url=None, data_path=None)
    assert ok is not None and ok.script == b"print('hi')\n" * 20
    assert ok.data_path.text == "/app"
    assert Provision.parse(script=None, script_url=None, data_url=None, data_path=None) is None
    cases: list[tuple[dict[str, str | None], str]] = [
        ({"script": "not base64!"}, "INVALID_SCRIPT"),
        ({"script": "YWJj=x"}, "INVALID_SCRIPT"),
        ({"script": "YQ==", "script_url": "http://example.com/x.py"}, "CONFLICTING_FIELDS"),
        ({"data_path": "/app/data"}, "MISSING_DATA_URL"),
        ({"data_url": "ftp://example.com/x"}, "URL_NOT_ALLOWED"),
        ({"data_url": "http:///nohost"}, "URL_NOT_ALLOWED"),
        ({"data_url": "http://exa mple.com/"}, "URL_NOT_ALLOWED"),
        ({"data_url": "http://example.com/", "data_path": "/etc"}, "INVALID_PATH"),
        ({"data_url": "http://example.com/", "data_path": "/app/../etc"}, "INVALID_PATH"),
    ]
    for fields, code in cases:
        values: dict[str, str | None] = dict.fromkeys(
            ("script", "script_url", "data_url", "data_path")
        )
        values.update(fields)
        with pytest.raises(ValidationError) as err:
            Provision.parse(**values)  # type: ignore[arg-type]
        assert err.value.code == code, fields


def test_urls_as_shown_and_file_names() -> None:
    assert public_url("https://u:p@Example.com:8443/a/b.zip?sig=1#frag") == (
        "https://example.com:8443/a/b.zip"
    )
    assert public_url("http://[::1]:80/x?y") == "http://[::1]:80/x"
    assert file_name("https://example.com/files/report%20v2.csv?x=1") == "report v2.csv"
    for url in (
        "https://example.com/",
        "https://example.com",
        "https://example.com/a/%2e%2e",
        "https://example.com/a%2Fb",
        "https://example.com/x%00y",
    ):
        assert file_name(url) == "data", url
