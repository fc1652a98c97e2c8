"""The OWASP API Security Top 10 cases Dockyard has routes for, tried against the real
server and engine (issue 9): broken object level authorization (API1), broken
authentication (API2), broken object property level authorization (API3), unrestricted
resource consumption (API4), broken function level authorization (API5) and server-side
request forgery (API7). Each case asserts the refusal, SPEC §9's error body, and that
nothing was written: the objects are as they were, and the audit holds no new entry."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker, remove_projects, require_engine, wait_for
from tests.server import Server, serve_env

pytestmark = pytest.mark.docker

ALICE = ("alice", "alice-password-owasp-1")
BOB = ("bob", "bob-password-owasp-2")
VERA = ("vera", "vera-password-owasp-3")
ERROR_KEYS = {"error", "code", "message", "status", "request_id", "timestamp", "details"}
EVENT_STREAMS = 2  # EVENTS_FOLLOW_MAX of this module's server


def assert_refused(resp: httpx.Response, status: int, kind: str, code: str | None = None) -> None:
    """The status, and SPEC §9's body with the kind (and code) expected."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == ERROR_KEYS, body
    assert (body["error"], body["status"]) == (kind, status), body
    assert body["request_id"] == resp.headers["x-request-id"]
    assert body["message"] and body["timestamp"]
    if code is not None:
        assert body["code"] == code, body


@dataclass
class World:
    server: Server
    admin: httpx.Client
    alice: httpx.Client
    bob: httpx.Client
    vera: httpx.Client
    cuid: str
    key: str
    key_id: str
    token: str
    token_id: str
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, headers: dict[str, str]) -> httpx.Client:
        made = httpx.Client(base_url=self.server.url, headers=headers, timeout=120)
        self.clients.append(made)
        return made

    def audit(self) -> int:
        """The id of the newest audit entry (0 when there is none)."""
        resp = self.admin.get("/audit", params={"limit": 1})
        assert resp.status_code == 200, resp.text
        entries = resp.json()["entries"]
        return int(entries[0]["id"]) if entries else 0

    def changes_since(self, newest: int) -> list[dict[str, Any]]:
        """The audit entries after ``newest`` that record an accepted change (refused
        attempts are audited too, with their 4xx status)."""
        resp = self.admin.get("/audit", params={"limit": 500})
        assert resp.status_code == 200, resp.text
        return [e for e in resp.json()["entries"] if e["id"] > newest and e["status"] < 400]

    def container(self) -> dict[str, Any]:
        resp = self.alice.get(f"/containers/{self.cuid}")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One server for the module: alice (user) with a container, a key and a token; bob
    (another user); vera (a viewer)."""
    require_engine()
    workdir = tmp_path_factory.mktemp("owasp")
    env = serve_env(
        workdir,
        app_user=ADMIN[0],
        app_pass=ADMIN[1],
        network_name="dockyard-test",
        events_follow_max=EVENT_STREAMS,
        fetch_allow_nets="127.0.0.2/32",  # the first hop of the redirect test
        # Bad credentials are what this module sends: not to be rate limited here.
        login_failures_per_minute=10_000,
    )
    srv = Server(workdir, env)
    clients: list[httpx.Client] = []
    try:
        srv.start()
        admin = httpx.Client(base_url=srv.url, headers=basic(*ADMIN), timeout=120)
        clients.append(admin)
        for (name, password), role in ((ALICE, "user"), (BOB, "user"), (VERA, "viewer")):
            resp = admin.post(
                "/accounts", json={"username": name, "password": password, "role": role}
            )
            assert resp.status_code == 201, resp.text
        alice, bob, vera = (
            httpx.Client(base_url=srv.url, headers=basic(*who), timeout=120)
            for who in (ALICE, BOB, VERA)
        )
        clients += [alice, bob, vera]
        resp = alice.post(
            "/containers", json={"image": BUSYBOX, "env": {"A": "1"}, "tags": ["mine"]}
        )
        assert resp.status_code == 201, resp.text
        cuid = resp.json()["cuid"]
        key = alice.post("/servicekeys", json={"description": "ci"})
        token = alice.post("/auth/token", json={"expires_in": 600})
        assert key.status_code == token.status_code == 201, (key.text, token.text)
        w = World(
            srv,
            admin,
            alice,
            bob,
            vera,
            cuid,
            key.json()["key"],
            key.json()["id"],
            token.json()["token"],
            token.json()["id"],
            clients,
        )
        yield w
    finally:
        for client in clients:
            client.close()
        srv.stop()
        remove_projects(workdir / "data" / "containers")


# -- API1: broken object level authorization ---------------------------------------------


OTHER_USERS_OBJECTS = [
    ("GET", "/containers/{cuid}", None),
    ("PATCH", "/containers/{cuid}", {"env": {"A": "2"}, "tags": ["bob's"]}),
    ("PATCH", "/containers/{cuid}/ports", {"ports": [{"host": 18080, "container": 80}]}),
    ("DELETE", "/containers/{cuid}", None),
    ("POST", "/containers/{cuid}/start", None),
    ("POST", "/containers/{cuid}/kill", None),
    ("GET", "/containers/{cuid}/status", None),
    ("GET", "/containers/{cuid}/logs", None),
    ("GET", "/containers/{cuid}/files", None),
    ("GET", "/containers/{cuid}/download-zip", None),
    ("GET", "/containers/{cuid}/changes", None),
    ("DELETE", "/servicekeys/{key_id}", None),
    ("DELETE", "/auth/tokens/{token_id}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), OTHER_USERS_OBJECTS)
def test_another_users_object_is_not_found_and_unchanged(
    world: World, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before, audit = world.container(), world.audit()
    url = path.format(cuid=world.cuid, key_id=world.key_id, token_id=world.token_id)
    assert_refused(world.bob.request(method, url, json=body), 404, "not_found")
    assert world.container() == before
    assert world.changes_since(audit) == []
    # alice's key and token still work: bob revoked neither.
    for headers in ({"X-Service-Key": world.key}, {"Authorization": f"Bearer {world.token}"}):
        assert world.client(headers).get("/auth/whoami").json()["username"] == ALICE[0]


def test_another_users_upload_is_refused_before_its_body(world: World) -> None:
    resp = world.bob.post(
        f"/containers/{world.cuid}/upload-zip",
        content=b"PK\x05\x06" + bytes(18),
        headers={"Content-Type": "application/zip"},
    )
    assert_refused(resp, 404, "not_found")
    listing = world.alice.get(f"/containers/{world.cuid}/files")
    assert listing.status_code == 200 and listing.json()["entries"] == [], listing.text


def test_another_users_keys_and_account_are_out_of_reach(world: World) -> None:
    audit = world.audit()
    # Listing is one's own: alice's key is not in bob's list, whatever he asks for.
    for params in ({}, {"owner": ALICE[0]}):
        resp = world.bob.get("/servicekeys", params=params)
        if resp.status_code == 200:
            assert world.key_id not in {k["id"] for k in resp.json()["servicekeys"]}
        else:
            assert_refused(resp, 403, "forbidden")
    resp = world.bob.request("DELETE", "/servicekeys", json={"key": world.key})
    assert_refused(resp, 404, "not_found")
    assert world.bob.get("/containers").json()["containers"] == []
    assert world.changes_since(audit) == []
    assert world.client({"X-Service-Key": world.key}).get("/auth/whoami").status_code == 200


# -- API2: broken authentication ----------------------------------------------------------


def _basic_raw(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


BAD_CREDENTIALS = {
    "none": {},
    "wrong password": basic(ALICE[0], "not-the-password"),
    "unknown user": basic("mallory", "whatever-password"),
    "empty password": basic(ALICE[0], ""),
    "no colon": _basic_raw("alice"),
    "not base64": {"Authorization": "Basic %%%"},
    "unknown scheme": {"Authorization": "Digest username=alice"},
    "bad bearer": {"Authorization": "Bearer dy_not_a_token"},
    "empty bearer": {"Authorization": "Bearer"},
    "bad key": {"X-Service-Key": "dk_not_a_key"},
}


@pytest.mark.parametrize("case", sorted(BAD_CREDENTIALS))
def test_bad_credentials_are_401(world: World, case: str) -> None:
    audit = world.audit()
    client = world.client(BAD_CREDENTIALS[case])
    for method, path in (("GET", "/containers"), ("POST", "/containers"), ("GET", "/accounts/me")):
        body = {"image": BUSYBOX} if method == "POST" else None
        resp = client.request(method, path, json=body)
        assert_refused(resp, 401, "auth_error")
        assert "www-authenticate" in resp.headers
    assert world.alice.get("/containers").json()["containers"] == [world.container()]
    assert world.changes_since(audit) == []


def test_two_credentials_at_once_are_401(world: World) -> None:
    """Even when both are good: which one acts would be a guess."""
    for extra in (
        {"X-Service-Key": world.key},
        {"X-Service-Key": "dk_not_a_key"},
    ):
        for first in (basic(*ALICE), {"Authorization": f"Bearer {world.token}"}):
            resp = world.client({**first, **extra}).get("/containers")
            assert_refused(resp, 401, "auth_error")


def test_revoked_and_expired_credentials_are_401(world: World) -> None:
    key = world.alice.post("/servicekeys", json={"description": "short-lived"}).json()
    token = world.alice.post("/auth/token", json={"expires_in": 600}).json()
    by_key = world.client({"X-Service-Key": key["key"]})
    by_token = world.client({"Authorization": f"Bearer {token['token']}"})
    # Used once (a verified credential may be cached), then revoked: refused at once.
    assert by_key.get("/auth/whoami").status_code == by_token.get("/auth/whoami").status_code == 200
    assert world.alice.delete(f"/servicekeys/{key['id']}").status_code == 204
    assert world.alice.delete(f"/auth/tokens/{token['id']}").status_code == 204
    assert_refused(by_key.get("/containers"), 401, "auth_error")
    assert_refused(by_token.get("/containers"), 401, "auth_error")

    short = world.alice.post("/auth/token", json={"expires_in": 1}).json()
    by_short = world.client({"Authorization": f"Bearer {short['token']}"})
    wait_for(
        lambda: by_short.get("/containers").status_code == 401 or None,
        timeout=15,
        what="the token expires",
    )
    assert_refused(by_short.get("/containers"), 401, "auth_error")


# -- API3: broken object property level authorization --------------------------------------


def test_a_user_cannot_raise_its_own_role_or_quota(world: World) -> None:
    audit = world.audit()
    for path in (f"/accounts/{ALICE[0]}", "/accounts/me"):
        for body in ({"role": "admin"}, {"quota": {"containers": 1000}}, {"password": "x" * 12}):
            assert_refused(world.alice.patch(path, json=body), 403, "forbidden")
    for path, body in (
        ("/servicekeys", {"role": "admin"}),
        ("/auth/token", {"role": "admin"}),
    ):
        assert_refused(world.alice.post(path, json=body), 403, "forbidden")
    me = world.alice.get("/accounts/me").json()
    assert me["role"] == "user"
    assert world.changes_since(audit) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"owner": "bob"},
        {"cuid": "c00000000-0000-4000-8000-000000000000"},
        {"status": "running"},
        {"engine": "elsewhere"},
        {"created_at": "2020-01-01T00:00:00+00:00"},
        {"privileged": True},
        {"labels": {"dockyard.owner": "bob"}},
    ],
)
def test_server_owned_fields_cannot_be_assigned(world: World, extra: dict[str, Any]) -> None:
    before, audit = world.container(), world.audit()
    listed = world.alice.get("/containers").json()["containers"]
    resp = world.alice.post("/containers", json={"image": BUSYBOX, **extra})
    assert resp.status_code in (400, 403), resp.text
    assert_refused(
        resp, resp.status_code, "validation_error" if resp.status_code == 400 else "forbidden"
    )
    # PATCH {"status": …} is seed 003's stop/start (docs/api.md), not an assignment.
    if not {"labels", "status"} & set(extra):
        resp = world.alice.patch(f"/containers/{world.cuid}", json=extra)
        assert resp.status_code in (400, 403), resp.text
        assert_refused(resp, resp.status_code, resp.json()["error"])
    assert world.alice.get("/containers").json()["containers"] == listed
    assert world.container() == before
    assert world.changes_since(audit) == []


# -- API4: unrestricted resource consumption ---------------------------------------------


def test_bodies_and_specs_over_their_limits_are_refused(world: World) -> None:
    audit = world.audit()
    listed = world.alice.get("/containers").json()["containers"]
    big = {"image": BUSYBOX, "env": {"BIG": "x" * (2 * 1024 * 1024)}}
    assert_refused(world.alice.post("/containers", json=big), 413, "payload_too_large")
    many = {"image": BUSYBOX, "env": {f"V{i}": "1" for i in range(10_000)}}
    resp = world.alice.post("/containers", json=many)
    assert resp.status_code in (400, 413), resp.text
    assert_refused(resp, resp.status_code, resp.json()["error"])
    long_value = {"image": BUSYBOX, "env": {"LONG": "x" * 200_000}}
    assert_refused(world.alice.post("/containers", json=long_value), 400, "validation_error")
    greedy = {"image": BUSYBOX, "resources": {"cpus": 1e9, "memory": "1000000g", "pids": 10**9}}
    resp = world.alice.post("/containers", json=greedy)
    assert resp.status_code in (400, 403), resp.text
    assert world.alice.get("/containers").json()["containers"] == listed
    assert world.changes_since(audit) == []


def test_a_container_made_without_resources_is_limited(world: World) -> None:
    limits = world.container()["resources"]
    assert limits["cpus"] and limits["memory"] and limits["pids"], limits
    host = docker(
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
        *project_ids(world.cuid),
    ).split()
    assert int(host[0]) > 0 and int(host[1]) > 0, host


def project_ids(cuid: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=dockyard.cuid={cuid}").split()


def test_too_many_streams_are_429(world: World) -> None:
    url = f"{world.server.url}/events"
    held: list[httpx.Response] = []
    with httpx.Client(headers=basic(*ALICE), timeout=30) as client:
        try:
            for _ in range(EVENT_STREAMS):
                resp = client.send(
                    client.build_request("GET", url, params={"follow": "true"}), stream=True
                )
                assert resp.status_code == 200
                held.append(resp)
            assert_refused(client.get(url, params={"follow": "true"}), 429, "rate_limited")
        finally:
            for resp in held:
                resp.close()
    # The streams given back, one may follow again.
    with world.client(basic(*ALICE)).stream("GET", "/events", params={"follow": "true"}) as resp:
        assert resp.status_code == 200


# -- API5: broken function level authorization --------------------------------------------


ADMIN_ROUTES = [
    ("GET", "/accounts", None),
    ("POST", "/accounts", {"username": "eve", "password": "eve-password-1", "role": "admin"}),
    ("GET", "/accounts/bob", None),
    ("PATCH", "/accounts/bob", {"role": "viewer"}),
    ("DELETE", "/accounts/bob", None),
    ("POST", "/roles", {"name": "root", "permissions": ["accounts:manage"]}),
    ("GET", "/audit", None),
]
VIEWER_REFUSED = [
    ("POST", "/containers", {"image": BUSYBOX}),
    ("POST", "/servicekeys", {"description": "x"}),
    ("GET", "/servicekeys", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES + VIEWER_REFUSED)
@pytest.mark.parametrize("who", ["user", "viewer"])
def test_admin_routes_are_403_to_users_and_viewers(
    world: World, who: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    if who == "user" and (method, path, body) in VIEWER_REFUSED:
        pytest.skip("a user may do this")
    client = world.alice if who == "user" else world.vera
    accounts = world.admin.get("/accounts").json()
    audit = world.audit()
    assert_refused(client.request(method, path, json=body), 403, "forbidden")
    assert world.admin.get("/accounts").json() == accounts
    assert world.changes_since(audit) == []


# -- API7: server-side request forgery -----------------------------------------------------


class Recorder(ThreadingHTTPServer):
    """A local HTTP server that notes every request (it must get none)."""

    def __init__(self, host: str, redirect_to: str | None = None) -> None:
        self.seen: list[str] = []
        self.redirect_to = redirect_to
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append(self.path)
                if recorder.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", recorder.redirect_to)
                    self.end_headers()
                    return
                body = b"print('fetched')\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__((host, 0), Handler)
        self.url = f"http://{host}:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def target() -> Iterator[Recorder]:
    server = Recorder("127.0.0.1")
    try:
        yield server
    finally:
        server.close()


def _private_urls(target: Recorder) -> list[str]:
    port = target.server_address[1]
    return [
        f"{target.url}/boot.py",
        f"http://localhost:{port}/boot.py",
        f"http://[::1]:{port}/boot.py",
        f"http://2130706433:{port}/boot.py",  # 127.0.0.1 as one number
        f"http://0x7f000001:{port}/boot.py",
        f"http://0.0.0.0:{port}/boot.py",
        f"http://[::ffff:127.0.0.1]:{port}/boot.py",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/boot.py",
        "http://192.168.1.1/boot.py",
        "http://172.17.0.1/boot.py",
    ]


@pytest.mark.parametrize("field_name", ["script_url", "data_url"])
def test_urls_to_private_addresses_are_never_fetched(
    world: World, target: Recorder, field_name: str
) -> None:
    listed = world.alice.get("/containers").json()["containers"]
    audit = world.audit()
    for url in _private_urls(target):
        resp = world.alice.post("/containers", json={"image": BUSYBOX, field_name: url})
        assert_refused(resp, 400, "validation_error", "URL_NOT_ALLOWED")
        assert resp.json()["details"]["field"] == field_name
    assert target.seen == []
    assert world.alice.get("/containers").json()["containers"] == listed
    assert world.changes_since(audit) == []


def test_a_redirect_to_a_private_address_is_not_followed(world: World, target: Recorder) -> None:
    """The first hop is allowed (this module's server allows 127.0.0.2 by FETCH_ALLOW_NETS);
    its redirect to 127.0.0.1 is not."""
    hop = Recorder("127.0.0.2", redirect_to=f"{target.url}/boot.py")
    try:
        listed = world.alice.get("/containers").json()["containers"]
        resp = world.alice.post(
            "/containers", json={"image": BUSYBOX, "script_url": f"{hop.url}/start"}
        )
        assert_refused(resp, 400, "validation_error", "URL_NOT_ALLOWED")
        assert hop.seen == ["/start"]
        assert target.seen == []
        assert world.alice.get("/containers").json()["containers"] == listed
    finally:
        hop.close()


def test_refusals_leave_no_container_behind(world: World) -> None:
    """After the whole battery: alice's one container, and nothing else of this server's."""
    owned = docker(
        "ps",
        "-aq",
        "--filter",
        "label=dockyard.owner=alice",
        "--filter",
        f"label=dockyard.cuid={world.cuid}",
    ).split()
    assert len(owned) == 1
    cuids = {p.name for p in (world.server.workdir / "data" / "containers").iterdir()}
    assert cuids == {world.cuid}
