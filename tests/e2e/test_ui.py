"""The web UI in a real browser (Debian's chromium through Playwright) against the real
server and engine: sign in, create from the form, live status, the terminal, stop,
delete; a viewer sees no action buttons. Any console error or failed request fails the
test. Screenshots of each page land in ``test-artefacts/ui/`` (gitignored)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    expect,
    sync_playwright,
)

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX
from tests.server import Server

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "ui"
VIEWER = ("viewer1", "viewer-secret-pass")

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = "no /usr/bin/chromium (scripts/ensure-chromium.sh installs it)"
        if os.environ.get("DOCKYARD_REQUIRE_DOCKER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page whose console errors, uncaught exceptions and failed requests are kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.problems.append(f"console: {msg.text}")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        url = request.url
        # The UI ends its own streams (logs and events follow) when it leaves a page.
        if "ERR_ABORTED" in failure and "follow=true" in url:
            return
        self.problems.append(f"request failed: {url} {failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def shot(self, name: str) -> None:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Watched(context.new_page())
    page.page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
    assert page.problems == []


def sign_in(page: Page, url: str, user: tuple[str, str]) -> None:
    page.goto(url + "/")
    expect(page).to_have_url(re.compile(r"/ui/signin"))
    page.get_by_label("User name").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Containers")).to_be_visible()


def terminal_has_line(page: Page, text: str) -> None:
    page.wait_for_function(
        """(text) => [...document.querySelectorAll('#terminal .xterm-rows > div')]
            .some((row) => row.textContent.trim() === text)""",
        arg=text,
    )


def test_sign_in_create_terminal_stop_delete(server: Server, watched: Watched) -> None:
    page = watched.page
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Sign in to Dockyard")).to_be_visible()
    watched.shot("signin")
    sign_in(page, server.url, ADMIN)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('dockyard.session')).token")
    assert token.startswith("dyt.")
    assert token not in page.url

    page.get_by_role("link", name="New container").first.click()
    expect(page.get_by_role("heading", name="New container")).to_be_visible()
    page.get_by_label("Image", exact=True).select_option(BUSYBOX)
    page.get_by_label("Name (optional)", exact=True).fill("ui-demo")
    page.get_by_label("Command (optional)", exact=True).fill("sh")
    page.get_by_label("Tags (comma separated)", exact=True).fill("ui, demo")
    page.get_by_role("button", name="Add variable").click()
    page.get_by_label("env name 1").fill("GREETING")
    page.get_by_label("env value 1").fill("hello")
    watched.shot("create")
    page.get_by_role("button", name="Create").click()

    expect(page.get_by_role("heading", name="ui-demo")).to_be_visible()
    expect(page.locator("#status [data-status]")).to_have_attribute(
        "data-status", "running", timeout=60_000
    )
    expect(page.locator("#terminal-status")).to_have_text("connected")
    page.locator("#terminal").click()
    page.keyboard.type("echo hi\n")
    terminal_has_line(page, "hi")
    watched.shot("container")
    # The terminal follows the window: a narrower window is a smaller TTY.
    wide = int(page.locator("#terminal").get_attribute("data-cols") or 0)
    page.set_viewport_size({"width": 800, "height": 900})
    expect(page.locator("#terminal")).not_to_have_attribute("data-cols", str(wide))
    cols = page.locator("#terminal").get_attribute("data-cols")
    rows = page.locator("#terminal").get_attribute("data-rows")
    page.locator("#terminal").click()
    page.keyboard.type("stty size\n")
    terminal_has_line(page, f"{rows} {cols}")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="← Containers").click()
    row = page.locator("tr", has_text="ui-demo")
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "running")
    watched.shot("containers")
    # Live status: stopped from outside the page, the row turns `exited` without a reload.
    cuid = row.get_attribute("data-cuid")
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{server.url}/containers/{cuid}/stop", headers=auth, timeout=60).is_success
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "exited", timeout=10_000)
    row.get_by_role("button", name="Start ui-demo", exact=True).click()
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "running")
    page.locator("tr", has_text="ui-demo").get_by_role(
        "button", name="Stop ui-demo", exact=True
    ).click()
    row = page.locator("tr", has_text="ui-demo")
    # An interactive sh ignores SIGTERM: the stop waits out the engine's grace period.
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "exited", timeout=30_000)

    row.get_by_role("button", name="Delete ui-demo").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete ui-demo?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("tr", has_text="ui-demo")).to_have_count(1)
    page.locator("tr", has_text="ui-demo").get_by_role("button", name="Delete ui-demo").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("tr", has_text="ui-demo")).to_have_count(0)
    gone = httpx.get(f"{server.url}/containers/{cuid}", headers=auth, timeout=10)
    assert gone.status_code == 404

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Dockyard")).to_be_visible()
    revoked = httpx.get(f"{server.url}/containers", headers=auth, timeout=10)
    assert revoked.json()["code"] == "CREDENTIALS_REVOKED"


def test_a_wrong_password_shows_the_message_and_request_id(
    server: Server, browser: Browser
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/ui/signin")
        page.get_by_label("User name").fill(ADMIN[0])
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("request id")
        expect(alert).not_to_contain_text("HTTP 401")
    finally:
        context.close()


def test_a_viewer_sees_no_action_buttons(server: Server, watched: Watched) -> None:
    admin = basic(*ADMIN)
    made = httpx.post(
        f"{server.url}/accounts",
        json={"username": VIEWER[0], "password": VIEWER[1], "role": "viewer"},
        headers=admin,
        timeout=10,
    )
    assert made.status_code == 201, made.text
    created = httpx.post(
        f"{server.url}/containers",
        json={"image": BUSYBOX, "name": "seen", "command": "sh", "owner": VIEWER[0]},
        headers=admin,
        timeout=60,
    )
    assert created.status_code == 201, created.text
    page = watched.page
    sign_in(page, server.url, VIEWER)
    row = page.locator("tr", has_text="seen")
    expect(row).to_have_count(1)
    expect(page.locator("button[data-action]")).to_have_count(0)
    expect(page.get_by_role("link", name="New container")).to_have_count(0)
    row.get_by_role("link", name="seen").click()
    expect(page.get_by_role("heading", name="seen")).to_be_visible()
    expect(page.locator("button[data-action]")).to_have_count(0)
    expect(page.locator("#terminal")).to_have_count(0)
    watched.shot("viewer-container")
    page.emulate_media(color_scheme="dark")
    watched.shot("viewer-container-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="← Containers").click()
    expect(row).to_have_count(1)
    watched.shot("viewer-containers-phone")


def test_ui_headers_and_api_errors_unchanged(server: Server) -> None:
    shell = httpx.get(server.url + "/", timeout=10)
    assert shell.status_code == 200
    assert shell.headers["cache-control"] == "no-cache"
    csp = shell.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert shell.headers["x-frame-options"] == "DENY"
    assert shell.headers["x-content-type-options"] == "nosniff"
    asset = re.search(r'src="(/ui/assets/[0-9a-f]+/js/main\.js)"', shell.text)
    assert asset is not None
    js = httpx.get(server.url + asset.group(1), timeout=10)
    assert js.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert js.headers["content-type"].startswith("text/javascript")
    assert httpx.get(server.url + "/ui/containers/new", timeout=10).text == shell.text
    stale = httpx.get(server.url + "/ui/assets/0000/js/main.js", timeout=10)
    assert stale.status_code == 404
    assert stale.json()["code"] == "ASSET_NOT_FOUND"
    missing = httpx.get(server.url + "/nowhere", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
