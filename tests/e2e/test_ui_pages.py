"""The UI's images, builds, events and admin pages in a real browser (Debian's chromium
through Playwright) against the real server and engine. Each page loads without a console
error or a failed request (the ``watched`` fixture fails the test otherwise); a build and
a pull show their live log until they end; the events page shows an event caused by an
action; an admin creates an account and a service key (shown once); a non-admin sees no
admin pages. Screenshots land in ``test-artefacts/ui/``."""

from __future__ import annotations

import io
import re
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker
from tests.e2e.ui_helpers import Watched, browser, open_page, sign_in, signed_in, watched
from tests.registry import REGISTRY, REGISTRY_PASS, REGISTRY_USER, require_registry
from tests.server import Server

__all__ = ["browser", "watched"]  # the fixtures, used by name

pytestmark = pytest.mark.docker
USER = ("uip-user", "uip-user-password")


@pytest.fixture
def tags() -> Iterator[list[str]]:
    """Image tags a test makes; removed afterwards."""
    made: list[str] = []
    yield made
    for tag in made:
        docker("rmi", "-f", tag, check=False)


def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)


def test_every_page_loads_and_a_build_shows_its_live_log(
    server: Server, watched: Watched, tags: list[str]
) -> None:
    page = watched.page
    sign_in(page, server.url, ADMIN)
    open_page(watched, "Images", "Images")
    watched.shot("images")
    page.get_by_label("Tag", exact=True).fill("dockyard-test/busybox")
    page.get_by_label("Tag", exact=True).press("Enter")
    expect(page.locator("tr", has_text=BUSYBOX)).to_have_count(1)
    open_page(watched, "Events", "Events")
    expect(page.locator("#events-state")).to_have_text("live")
    open_page(watched, "Admin", "Admin: Accounts")
    expect(page.locator("tr[data-account='admin']")).to_have_count(1)
    for tab in ("Roles", "Service keys", "Audit", "Engines"):
        page.get_by_role("navigation", name="Admin").get_by_role("link", name=tab).click()
        expect(page.get_by_role("heading", name=f"Admin: {tab}")).to_be_visible()
        if tab == "Roles":
            expect(page.locator("tr[data-role='viewer']")).to_have_count(1)
    open_page(watched, "Builds", "Builds")
    page.get_by_role("link", name="New build").click()
    marker = uuid.uuid4().hex
    image = f"dockyard-e2e/ui-build-{marker[:8]}:1"
    tags.append(image)
    page.get_by_label("Dockerfile", exact=True).fill(f"FROM {BUSYBOX}\nRUN echo built-{marker}\n")
    page.get_by_label("Tags (comma separated)").fill(image)
    watched.shot("build-new")
    page.get_by_role("button", name="Build").click()
    expect(page.locator("#job-log")).to_contain_text(f"built-{marker}", timeout=120_000)
    expect(page.locator("#job-status [data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=120_000
    )
    expect(page.locator(".job")).to_contain_text(image)
    watched.shot("build")
    page.get_by_role("link", name="← Builds").click()
    row = page.locator("tr", has_text=image)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "succeeded")
    # The image it made is listed; deleting it asks first.
    open_page(watched, "Images", "Images")
    page.get_by_label("Tag", exact=True).fill(marker[:8])
    page.get_by_label("Tag", exact=True).press("Enter")
    expect(page.locator("tr[data-ref]")).to_have_count(1)
    page.get_by_role("button", name=f"Delete {image}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("tr[data-ref]")).to_have_count(0)
    with api(server) as http:
        assert http.get(f"/images/{image}").status_code == 404
    # The builds list follows the jobs' events: a build started elsewhere shows up and ends.
    open_page(watched, "Builds", "Builds")
    other = f"dockyard-e2e/ui-other-{marker[:8]}:1"
    tags.append(other)
    with api(server) as http:
        body = {"dockerfile": f"FROM {BUSYBOX}\nRUN echo other-{marker}\n", "tags": [other]}
        assert http.post("/builds", json=body).status_code == 202
    row = page.locator("tr", has_text=other)
    expect(row.locator("[data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=120_000
    )


def test_a_pull_shows_its_progress_and_ends(
    server: Server, watched: Watched, tags: list[str]
) -> None:
    require_registry()
    image = f"{REGISTRY}/dockyard-e2e/ui-pull-{uuid.uuid4().hex[:8]}:1"
    tags.append(image)
    auth = {"server": REGISTRY, "username": REGISTRY_USER, "password": REGISTRY_PASS}
    with api(server) as http:
        body = {"dockerfile": f"FROM {BUSYBOX}\nRUN echo pulled > /p\n", "tags": [image]}
        job_id = http.post("/builds", json={**body, "push": True, "auth": auth}).json()["job_id"]
        with http.stream("GET", f"/builds/{job_id}/logs", params={"follow": "true"}) as resp:
            resp.read()  # the log ends when the job does
        assert http.get(f"/builds/{job_id}").json()["status"] == "succeeded"
        assert http.post("/registries", json=auth).status_code == 201
    docker("rmi", image)
    page = watched.page
    sign_in(page, server.url, ADMIN)
    open_page(watched, "Images", "Images")
    page.locator("#pull-image").fill(image)
    page.get_by_role("button", name="Pull").click()
    job = page.locator("#pull-job")
    expect(job.locator("#job-log")).not_to_be_empty(timeout=60_000)
    expect(job.locator("#job-status [data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=120_000
    )
    expect(job.locator("ul.layers li").first).to_be_visible()
    expect(page.locator("tr[data-ref]", has_text=image)).to_have_count(1)
    watched.shot("images-pulled")


def test_a_build_from_an_uploaded_context_is_pushed(
    server: Server, watched: Watched, tags: list[str], tmp_path: Path
) -> None:
    """The form's upload source: a context archive from this computer (with a file the
    Dockerfile copies) and a Dockerfile path inside it, built, pushed to a saved registry."""
    require_registry()
    marker = uuid.uuid4().hex[:8]
    image = f"{REGISTRY}/dockyard-e2e/ui-upload-{marker}:1"
    tags.append(image)
    context = tmp_path / "context.tar"
    with tarfile.open(context, "w") as tar:
        for name, data in (
            (
                "docker/Build.file",
                f"FROM {BUSYBOX}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n",
            ),
            ("hello.txt", f"uploaded-{marker}\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            tar.addfile(info, io.BytesIO(data.encode()))
    auth = {"server": REGISTRY, "username": REGISTRY_USER, "password": REGISTRY_PASS}
    with api(server) as http:
        saved = http.post("/registries", json=auth)
        assert saved.status_code == 201, saved.text
    page = watched.page
    sign_in(page, server.url, ADMIN)
    open_page(watched, "Builds", "Builds")
    page.get_by_role("link", name="New build").click()
    page.get_by_label("Upload a context").check()
    page.locator("#context-file").set_input_files(str(context))
    page.locator("#context-dockerfile").fill("docker/Build.file")
    page.get_by_label("Tags (comma separated)").fill(image)
    page.get_by_label("Push the tags when built").check()
    page.get_by_label("Registry", exact=True).select_option(saved.json()["id"])
    page.get_by_role("button", name="Build").click()
    expect(page.locator("#job-log")).to_contain_text(f"uploaded-{marker}", timeout=120_000)
    expect(page.locator("#job-status [data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=120_000
    )
    docker("rmi", image)
    docker("pull", image)  # it is in the registry


def test_the_events_page_shows_an_action_live(server: Server, watched: Watched) -> None:
    page = watched.page
    sign_in(page, server.url, ADMIN)
    open_page(watched, "Events", "Events")
    expect(page.locator("#events-state")).to_have_text("live")
    with api(server) as http:
        made = http.post("/containers", json={"image": BUSYBOX, "name": "evt", "command": "sh"})
        assert made.status_code == 201, made.text
    cuid = made.json()["cuid"]
    created = page.locator("#events tr[data-type='container.created']", has_text=cuid[:13])
    expect(created).to_have_count(1)
    watched.shot("events")
    # A filter is the API's: only that type, and new ones of it still arrive live.
    page.get_by_label("Type").select_option("container.action")
    expect(page.locator("#events-state")).to_have_text("live")
    with api(server) as http:
        assert http.post(f"/containers/{cuid}/start").is_success
    started = page.locator("#events tr[data-type='container.action']", has_text="action=start")
    expect(started).to_have_count(1)
    others = page.locator("#events tr[data-type]:not([data-type='container.action'])")
    expect(others).to_have_count(0)


def test_an_admin_creates_an_account_and_a_service_key(server: Server, watched: Watched) -> None:
    page = watched.page
    sign_in(page, server.url, ADMIN)
    open_page(watched, "Admin", "Admin: Accounts")
    page.get_by_label("User name", exact=True).fill(USER[0])
    page.get_by_label("Password (8 characters or more)").fill(USER[1])
    page.get_by_label("Role", exact=True).select_option("user")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(f"tr[data-account='{USER[0]}']")).to_have_count(1)
    watched.shot("admin-accounts")
    assert httpx.get(f"{server.url}/auth/whoami", headers=basic(*USER)).json()["role"] == "user"

    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Service keys").click()
    page.get_by_label("Description").fill("ci deploys")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text()
    assert key.startswith("dyk_")
    row = page.locator("tr", has_text="ci deploys")
    expect(row).to_have_count(1)
    expect(row).not_to_contain_text(key)  # the list shows its prefix only
    watched.shot("admin-keys")
    who = httpx.get(f"{server.url}/auth/whoami", headers={"X-Service-Key": key})
    assert who.json()["username"] == ADMIN[0]
    row.get_by_role("button", name=re.compile("^Revoke")).click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.locator("tr", has_text="ci deploys")).to_have_count(0)
    refused = httpx.get(f"{server.url}/auth/whoami", headers={"X-Service-Key": key})
    assert refused.status_code == 401
    # Reloaded, the key is not shown again.
    page.reload()
    expect(page.get_by_role("heading", name="Admin: Service keys")).to_be_visible()
    expect(page.locator("#new-key")).to_have_count(0)

    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Audit").click()
    page.get_by_label("Action", exact=True).fill("create_account")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-audit]")).to_have_count(1)
    expect(page.locator("tr[data-audit]")).to_contain_text(USER[0])
    watched.shot("admin-audit")
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Engines").click()
    expect(page.locator("tr[data-engine='local']")).to_contain_text("healthy")
    expect(page.locator("#cluster")).to_contain_text("engines")
    page.get_by_role("button", name="Drain local").click()
    expect(page.locator("tr[data-engine='local'] [data-status]")).to_have_text("draining")
    page.get_by_role("button", name="Undrain local").click()
    expect(page.locator("tr[data-engine='local'] [data-status]")).to_have_text("healthy")
    watched.shot("admin-engines")


def test_a_non_admin_sees_no_admin_pages(server: Server, browser: Browser) -> None:
    made = httpx.post(
        f"{server.url}/accounts",
        json={"username": USER[0], "password": USER[1], "role": "user"},
        headers=basic(*ADMIN),
        timeout=10,
    )
    assert made.status_code == 201, made.text
    with signed_in(browser, server.url, USER) as watched:
        page = watched.page
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Images")).to_be_visible()
        expect(nav.get_by_role("link", name="Events")).to_be_visible()
        expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
        expect(page.get_by_text("No containers.")).to_be_visible()  # its requests are done
        page.goto(server.url + "/ui/admin/accounts")
        expect(page.get_by_role("heading", name="Admin")).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text("needs the accounts:manage permission")
        expect(page.locator("#admin-panel")).to_have_count(0)
