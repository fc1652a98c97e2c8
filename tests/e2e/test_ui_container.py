"""The container page of the web UI in a real browser (Debian's chromium through
Playwright) against the real server and engine: pause and unpause, the environment, the
live metrics chart, the log search and download, and the files browser (upload by the
file picker and by a drop, download back, a ZIP unpacked, an API error shown). Any console
error (a CSP refusal among them), failed request or HTTP error fails a test, besides the
one refusal a test provokes on purpose."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX
from tests.e2e import test_ui
from tests.e2e.test_ui import Watched, sign_in
from tests.server import Server

pytestmark = pytest.mark.docker

# test_ui.py's fixtures: the browser (module-wide) and a watched page per test.
browser = test_ui.browser
watched = test_ui.watched

# Recorded by the page itself, so a CSP refusal fails the test even without a console line.
CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


def create(server: Server, **body: Any) -> str:
    made = httpx.post(
        f"{server.url}/containers",
        json={"image": BUSYBOX, **body},
        headers=basic(*ADMIN),
        timeout=60,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["cuid"])


def open_page(
    watched: Watched, server: Server, cuid: str, name: str, user: tuple[str, str] = ADMIN
) -> Page:
    page = watched.page
    page.add_init_script(CSP_WATCH)
    sign_in(page, server.url, user)
    # Through the list (a goto while its request runs would abort that request).
    page.locator(f"tr[data-cuid='{cuid}']").get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    return page


def no_csp_violations(page: Page) -> None:
    assert page.evaluate("window.__csp") == []


def test_pause_env_metrics_and_log_search(server: Server, watched: Watched) -> None:
    script = "echo needle-one; echo hay; echo NEEDLE-two; exec sleep 3600"
    cuid = create(
        server,
        name="uic-live",
        command=script,
        env={"GREETING": "hello world", "EMPTY": ""},
        start=True,
    )
    page = open_page(watched, server, cuid, "uic-live")
    status = page.locator("#status [data-status]")
    expect(status).to_have_attribute("data-status", "running", timeout=60_000)

    env = page.locator("#env")
    expect(env.locator("tr[data-name='GREETING'] td").nth(1)).to_have_text("hello world")
    expect(env.locator("tr[data-name='EMPTY'] td").nth(1)).to_have_text("")

    # The chart fills from one request a second: wait on the DOM for two samples.
    page.wait_for_function(
        "() => Number(document.getElementById('metrics').dataset.samples) >= 2", timeout=30_000
    )
    expect(page.locator("#metric-cpu")).to_contain_text("%")
    expect(page.locator("#metric-memory")).to_contain_text(" of ")
    assert page.locator("#chart-cpu polyline").get_attribute("points")

    # Log search: case-insensitive, counted, highlighted, next/previous.
    expect(page.locator("#logs")).to_contain_text("NEEDLE-two")
    page.get_by_label("Search the logs").fill("needle")
    expect(page.locator("#logs-count")).to_have_text("1 of 2")
    expect(page.locator("#logs mark.hit")).to_have_count(2)
    expect(page.locator("#logs mark.current")).to_have_text("needle")
    page.get_by_label("Search the logs").press("Enter")
    expect(page.locator("#logs-count")).to_have_text("2 of 2")
    expect(page.locator("#logs mark.current")).to_have_text("NEEDLE")
    page.get_by_role("button", name="Next match").click()
    expect(page.locator("#logs-count")).to_have_text("1 of 2")
    page.get_by_label("Search the logs").fill("absent-word")
    expect(page.locator("#logs-count")).to_have_text("no matches")
    page.get_by_label("Search the logs").fill("needle")
    watched.shot("container-live")

    with page.expect_download() as saved:
        page.get_by_role("button", name="Download logs").click()
    assert b"needle-one" in Path(saved.value.path()).read_bytes()

    page.get_by_role("button", name="Pause uic-live").click()
    expect(status).to_have_attribute("data-status", "paused")
    paused = httpx.get(f"{server.url}/containers/{cuid}", headers=basic(*ADMIN), timeout=10)
    assert paused.json()["status"] == "paused"
    page.get_by_role("button", name="Unpause uic-live").click()
    expect(status).to_have_attribute("data-status", "running")
    expect(page.get_by_role("button", name="Pause uic-live")).to_be_enabled()
    no_csp_violations(page)

    # Leaving the page stops the polling: no metrics request after the list is shown.
    page.get_by_role("link", name="← Containers").click()
    expect(page.get_by_role("heading", name="Containers")).to_be_visible()
    # (An absence over 2.5 intervals: there is no event to wait on for "nothing more".)
    with (
        pytest.raises(PlaywrightTimeoutError),
        page.expect_request(lambda r: "/metrics" in r.url, timeout=2_500),
    ):
        pass


def drop_file(page: Page, name: str, data: bytes) -> None:
    """A drop on the files' drop zone, as a drag from the desktop delivers it."""
    transfer = page.evaluate_handle(
        """([name, bytes]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name));
            return dt;
        }""",
        [name, list(data)],
    )
    page.dispatch_event("#files-drop", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#files-drop", "drop", {"dataTransfer": transfer})


def download_bytes(page: Page, button_name: str) -> bytes:
    with page.expect_download() as saved:
        page.locator(f"#files [data-download='{button_name}']").click()
    return Path(saved.value.path()).read_bytes()


def test_files_browser_upload_download(server: Server, watched: Watched) -> None:
    cuid = create(server, name="uic-files", command="sleep 3600")
    page = open_page(watched, server, cuid, "uic-files")
    files = page.locator("#files")
    expect(page.locator("#files-path")).to_contain_text("app")

    picked = bytes(range(256)) * 40 + "é ü\n".encode()
    page.locator("#files-picker").set_input_files(
        {"name": "picked.bin", "mimeType": "application/octet-stream", "buffer": picked}
    )
    expect(files.locator("tr[data-name='picked.bin']")).to_have_count(1)
    expect(page.locator("#files-upload-status")).to_contain_text("Uploaded 1 file")
    assert download_bytes(page, "picked.bin") == picked

    dropped = b"dropped by drag and drop\n" * 100
    drop_file(page, "dropped.txt", dropped)
    expect(files.locator("tr[data-name='dropped.txt']")).to_have_count(1)
    assert download_bytes(page, "dropped.txt") == dropped

    # A ZIP alone is unpacked into the folder shown; its folder opens and downloads as a ZIP.
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("sub/inner.txt", "inner text\n")
    page.locator("#files-picker").set_input_files(
        {"name": "bundle.zip", "mimeType": "application/zip", "buffer": archive.getvalue()}
    )
    expect(files.locator("tr[data-name='sub'][data-type='dir']")).to_have_count(1)
    expect(files.locator("tr[data-name='bundle.zip']")).to_have_count(0)
    folder = zipfile.ZipFile(io.BytesIO(download_bytes(page, "sub")))
    assert folder.read("inner.txt") == b"inner text\n"
    files.locator("[data-dir='sub']").click()
    expect(page.locator("#files-path")).to_contain_text("sub")
    expect(files.locator("tr[data-name='inner.txt']")).to_have_count(1)
    # An upload goes into the folder shown.
    drop_file(page, "deeper.txt", b"deeper\n")
    expect(files.locator("tr[data-name='deeper.txt']")).to_have_count(1)
    listing = httpx.get(
        f"{server.url}/containers/{cuid}/files",
        params={"path": "/app/sub"},
        headers=basic(*ADMIN),
        timeout=10,
    ).json()
    assert {e["name"] for e in listing["entries"]} == {"inner.txt", "deeper.txt"}
    watched.shot("container-files")

    # An API error shows the API's message and request id (the one refusal expected here).
    page.locator("#files-picker").set_input_files(
        {"name": "broken.zip", "mimeType": "application/zip", "buffer": b"not a zip at all"}
    )
    alert = files.get_by_role("alert")
    expect(alert).to_contain_text("request id")
    message = alert.locator(".msg").inner_text()
    assert message and "HTTP 400" not in message
    expected = [p for p in watched.problems if "upload-zip" in p or "status of 400" in p]
    assert any(p.startswith("HTTP 400") for p in expected)
    watched.problems[:] = [p for p in watched.problems if p not in expected]
    no_csp_violations(page)


def test_a_viewer_browses_files_but_cannot_upload_or_pause(
    server: Server, watched: Watched
) -> None:
    viewer = ("viewer2", "viewer-secret-pass")
    made = httpx.post(
        f"{server.url}/accounts",
        json={"username": viewer[0], "password": viewer[1], "role": "viewer"},
        headers=basic(*ADMIN),
        timeout=10,
    )
    assert made.status_code == 201, made.text
    cuid = create(server, name="uic-seen", command="sleep 3600", owner=viewer[0], start=True)
    page = open_page(watched, server, cuid, "uic-seen", viewer)
    expect(page.locator("#files tbody")).to_contain_text("Empty folder.")
    page.wait_for_function("() => Number(document.getElementById('metrics').dataset.samples) >= 1")
    expect(page.locator("#files-drop")).to_have_count(0)
    expect(page.locator("button[data-action]")).to_have_count(0)
    no_csp_violations(page)
