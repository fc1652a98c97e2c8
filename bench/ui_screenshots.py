"""Screenshots of each page of the web UI for the docs: ``docs/img/ui-<page>.png``.

Run from the repository root, as root, with a Docker engine, the local image
``dockyard-test/busybox:latest`` and Debian's chromium; nothing is pulled:
``.venv/bin/python bench/ui_screenshots.py``. It starts its own ``dockyard serve``
(bench/harness), makes something to show (two containers, a build, an account, a service
key), signs in through the form in ``/usr/bin/chromium`` at 1280 x 800 and saves the
visible part of each page (light colour scheme). Everything it made is removed at the end
(the image it built too).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import base
from harness.base import BenchError, log, run_cmd
from harness.context import Ctx, new_ctx
from harness.session import run_session

OUT_DIR = base.REPO / "docs" / "img"
CHROMIUM = Path("/usr/bin/chromium")
NETWORK = "dockyard-bench-screens"
BUILT = "dockyard-screens/hello:1"
PAGES = [  # (file name, path, a selector that says the page is drawn)
    ("containers", "/ui/containers", "tr[data-name='web-1']"),
    ("container", "/ui/containers/{cuid}", "#terminal-status >> text=connected"),
    ("new-container", "/ui/containers/new", "#image option"),
    ("images", "/ui/images", f"tr[data-ref='{BUILT}']"),
    ("builds", "/ui/builds", "tr[data-job]"),
    ("build", "/ui/builds/{job_id}", "#job-status [data-status='succeeded']"),
    ("build-new", "/ui/builds/new", "#dockerfile"),
    ("events", "/ui/events", "#events tr[data-type='container.created']"),
    ("admin-accounts", "/ui/admin/accounts", "tr[data-account='alice']"),
    ("admin-roles", "/ui/admin/roles", "tr[data-role='viewer']"),
    ("admin-keys", "/ui/admin/keys", "tr[data-key]"),
    ("admin-audit", "/ui/admin/audit", "tr[data-audit]"),
    ("admin-engines", "/ui/admin/engines", "tr[data-engine='local']"),
]


def create(client: Any, ctx: Ctx, fields: dict[str, Any]) -> str:
    made = client.post("/containers", json={"image": base.IMAGE, **fields}, timeout=180)
    if made.status_code != 201:
        raise BenchError(f"POST /containers: {made.status_code} {made.text[:300]}")
    cuid = str(made.json()["cuid"])
    ctx.api_cuids.add(cuid)
    return cuid


def make_things(ctx: Ctx) -> dict[str, str]:
    """Two containers (one running a shell), a finished build, an account and a key."""
    with ctx.client() as client:
        cuid = create(client, ctx, {"name": "web-1", "command": "sh", "start": True})
        create(client, ctx, {"name": "worker", "tags": ["batch"]})
        body = {"dockerfile": f"FROM {base.IMAGE}\nRUN echo hello > /hello.txt\n", "tags": [BUILT]}
        job_id = client.post("/builds", json=body).json()["job_id"]
        client.timeout = httpx.Timeout(180)
        with client.stream("GET", f"/builds/{job_id}/logs", params={"follow": "true"}) as resp:
            resp.read()  # the log ends when the job does
        account = {"username": "alice", "password": "alice-password-1", "role": "user"}
        client.post("/accounts", json=account).raise_for_status()
        client.post("/servicekeys", json={"description": "deploys"}).raise_for_status()
    return {"cuid": cuid, "job_id": job_id}


def shoot(ctx: Ctx, made: dict[str, str]) -> list[str]:
    from playwright.sync_api import sync_playwright

    saved = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{ctx.url}/ui/signin")
            page.screenshot(path=str(OUT_DIR / "ui-signin.png"))
            page.get_by_label("User name").fill(ctx.auth[0])
            page.get_by_label("Password").fill(ctx.auth[1])
            page.keyboard.press("Enter")
            page.get_by_role("heading", name="Containers").wait_for()
            for name, path, ready in PAGES:
                page.goto(ctx.url + path.format(**made))
                page.locator(ready).first.wait_for(state="attached")
                target = OUT_DIR / f"ui-{name}.png"
                page.screenshot(path=str(target))
                saved.append(target.name)
        finally:
            browser.close()
    return saved


def body(ctx: Ctx, results: dict[str, Any]) -> None:
    if not CHROMIUM.exists():
        raise BenchError("no /usr/bin/chromium: run `bash scripts/ensure-chromium.sh`")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    try:
        made = make_things(ctx)
        log("screenshots")
        results["screenshots"] = shoot(ctx, made)
    finally:
        run_cmd(["docker", "rmi", "-f", BUILT])


def main() -> int:
    ctx = new_ctx("dyshot-", network=NETWORK, keep_log=None)
    results, status = run_session(ctx, body, base.RESULTS / "ui-screenshots.json")
    for name in results.get("benchmarks", {}).get("screenshots", []):
        print(f"docs/img/{name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
