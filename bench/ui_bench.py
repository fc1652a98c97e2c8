"""The web UI in a real browser (issue 13's benchmark), in one run.

Run from the repository root, as root, with a Docker engine, the local image
``dockyard-test/busybox:latest`` (``bash scripts/test-images.sh``) and Debian's chromium
(``bash scripts/ensure-chromium.sh``); nothing is pulled:
``.venv/bin/python bench/ui_bench.py``. It starts its own ``dockyard serve`` on
127.0.0.1:<free port> with its data in a temporary directory (bench/harness) and drives
``/usr/bin/chromium`` through Playwright, as tests/e2e/test_ui.py does. Measured:

1. First load of ``/ui/containers`` with an empty browser cache, signed in (the session
   is put in ``sessionStorage`` before the page's scripts run): the bytes transferred
   (the document and every resource, as the Resource Timing API counts them; the events
   stream, which never ends, is left out) and the time from the navigation's start to the
   table's first row in the DOM (a MutationObserver's ``performance.now()``). Targets:
   <= 300 KB and <= 1 s. The median of 5 loads, each in a new browser context.
2. The same page with 1,000 containers. They are **records only**: one container is
   created through the API (not started), and its store row is copied 1,000 times
   straight into the server's SQLite database (new cuid and name, status ``exited``);
   they exist for the API and the UI, not on the engine, and are removed from the database
   at the end. The page shows the first 50 (its page size), with 20 pages behind it.
   Target: table shown <= 500 ms after the navigation starts (median of 5, warm cache:
   the assets are cached as a returning user's would be).
3. Keystroke echo in the browser terminal: a container running ``sh`` with a TTY, its
   page open, 60 keys typed one at a time (after 5 warm-up); each is timed in the page
   from its ``keydown`` (capture phase) to the DOM mutation that shows it in xterm.js's
   rows. Target: p50 <= 50 ms.

It prints the figures with their ratio to the target and writes
``bench/results/ui.json``. Everything it makes is removed at the end.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import base
from harness.base import BenchError, log
from harness.containers import api_create
from harness.context import Ctx, new_ctx
from harness.session import run_session
from harness.stats import pct

OUT = base.RESULTS / "ui.json"
NETWORK = "dockyard-bench-ui"
CHROMIUM = Path("/usr/bin/chromium")
RECORDS = 1000
LOADS = 5
KEYS = 60
WARMUP = 5
TARGETS = {"first_load_kb": 300, "first_load_ms": 1000, "records_ms": 500, "keystroke_p50_ms": 50}

# Runs before the page's scripts: the table's first row is timed by a MutationObserver.
WATCH_TABLE = """
window.__tableShown = null;
new MutationObserver((_, observer) => {
  if (document.querySelector("table[aria-label=Containers] tbody tr")) {
    window.__tableShown = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""
TRANSFERRED = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource")
    .filter((r) => !r.name.includes("follow=true"));
  return nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0);
}"""
# A promise of the time from the last keydown to the moment `expected` shows in the rows.
ECHO = """(expected) => {
  const rows = document.querySelector("#terminal .xterm-rows");
  window.__echo = new Promise((resolve) => {
    const seen = () => rows.textContent.includes(expected);
    const observer = new MutationObserver(() => {
      if (!seen()) return;
      observer.disconnect();
      resolve(performance.now() - window.__keydown);
    });
    observer.observe(rows, { childList: true, subtree: true, characterData: true });
  });
}"""
KEYDOWN = """document.addEventListener("keydown", () => {
  window.__keydown = performance.now();
}, true);"""


def session_script(ctx: Ctx) -> str:
    """sessionStorage's session, as js/api.js signIn() leaves it, set before the page runs."""
    with ctx.client() as client:
        issued = client.post("/auth/token", json={}).json()
        me = client.get("/auth/whoami").json()
    value = {
        "token": issued["token"],
        "tokenId": issued["id"],
        "expiresAt": issued["expires_at"],
        "username": me["username"],
        "role": me["role"],
        "permissions": me["permissions"],
    }
    return f"sessionStorage.setItem('dockyard.session', {json.dumps(json.dumps(value))});"


def load_containers(browser: Any, ctx: Ctx, init: str, context: Any = None) -> dict[str, float]:
    """One load of /ui/containers: bytes transferred and ms to the table's first row."""
    own = context is None
    context = context or browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.add_init_script(init + WATCH_TABLE)
        page.goto(f"{ctx.url}/ui/containers")
        page.wait_for_function("() => window.__tableShown !== null", timeout=30_000)
        shown = float(page.evaluate("() => window.__tableShown"))
        transferred = float(page.evaluate(TRANSFERRED))
        page.close()
        return {"ms": shown, "bytes": transferred}
    finally:
        if own:
            context.close()


def add_records(ctx: Ctx, template_cuid: str) -> list[str]:
    """RECORDS copies of one container's store row, straight into the SQLite file."""
    db = sqlite3.connect(ctx.data_dir / "dockyard.db", timeout=30)
    db.row_factory = sqlite3.Row
    found = db.execute("SELECT * FROM containers WHERE cuid = ?", (template_cuid,)).fetchone()
    if found is None:
        raise BenchError(f"{template_cuid} is not in the store")
    row = dict(found)
    row.pop("seq")
    cuids = []
    with db:
        for i in range(RECORDS):
            cuid = f"c{uuid.uuid4()}"
            cuids.append(cuid)
            copy = {**row, "cuid": cuid, "name": f"ui-bench-{i:04d}", "status": "exited"}
            names = ", ".join(copy)
            marks = ", ".join("?" for _ in copy)
            db.execute(f"INSERT INTO containers ({names}) VALUES ({marks})", list(copy.values()))
    db.close()
    return cuids


def remove_records(ctx: Ctx, cuids: list[str]) -> None:
    db = sqlite3.connect(ctx.data_dir / "dockyard.db", timeout=30)
    with db:
        db.executemany("DELETE FROM containers WHERE cuid = ?", [(c,) for c in cuids])
    db.close()


def bench_first_load(browser: Any, ctx: Ctx, init: str) -> dict[str, Any]:
    loads = [load_containers(browser, ctx, init) for _ in range(LOADS)]
    return {
        "loads": loads,
        "kb": round(statistics.median(x["bytes"] for x in loads) / 1000, 1),
        "ms": round(statistics.median(x["ms"] for x in loads), 1),
    }


def bench_records(browser: Any, ctx: Ctx, init: str) -> dict[str, Any]:
    with ctx.client() as client:
        made = client.post("/containers", json={"image": base.IMAGE, "command": "sh"}, timeout=180)
        if made.status_code != 201:
            raise BenchError(f"POST /containers: {made.status_code} {made.text[:300]}")
        ctx.api_cuids.add(made.json()["cuid"])
    cuids = add_records(ctx, made.json()["cuid"])
    try:
        with ctx.client() as client:
            listed = client.get("/containers", params={"limit": 500}).json()["containers"]
            if len(listed) < 500:
                raise BenchError(f"the API lists {len(listed)} containers, not the records")
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            load_containers(browser, ctx, init, context)  # the assets into the cache
            loads = [load_containers(browser, ctx, init, context) for _ in range(LOADS)]
        finally:
            context.close()
    finally:
        remove_records(ctx, cuids)
    ms = round(statistics.median(x["ms"] for x in loads), 1)
    return {"records": RECORDS, "loads": loads, "ms": ms}


def bench_keystrokes(browser: Any, ctx: Ctx, init: str) -> dict[str, Any]:
    with ctx.client() as client:
        cuid, _ = api_create(client, ctx, command="sh")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.add_init_script(init + KEYDOWN)
        page.goto(f"{ctx.url}/ui/containers/{cuid}")
        page.wait_for_function(
            "() => document.querySelector('#terminal-status')?.textContent === 'connected'",
            timeout=60_000,
        )
        page.locator("#terminal").click()
        page.keyboard.type("#")  # a comment: the line typed after it never runs
        typed = "#"
        letters = uuid.uuid4().hex + uuid.uuid4().hex
        times = []
        for i in range(WARMUP + KEYS):
            typed += letters[i % len(letters)]
            page.evaluate(ECHO, typed)
            page.keyboard.type(typed[-1])
            ms = float(page.evaluate("() => window.__echo"))
            if i >= WARMUP:
                times.append(ms)
        page.keyboard.press("Control+C")
    finally:
        context.close()
    return {
        "n": len(times),
        "p50_ms": round(pct(times, 50), 1),
        "p90_ms": round(pct(times, 90), 1),
        "max_ms": round(max(times), 1),
    }


def body(ctx: Ctx, results: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise BenchError("no /usr/bin/chromium: run `bash scripts/ensure-chromium.sh`")
    init = session_script(ctx)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            log("first load of /ui/containers (cold cache)")
            results["first_load"] = bench_first_load(browser, ctx, init)
            log(f"/ui/containers with {RECORDS} container records")
            results["records"] = bench_records(browser, ctx, init)
            log("keystroke echo in the browser terminal")
            results["keystrokes"] = bench_keystrokes(browser, ctx, init)
        finally:
            browser.close()


def report(results: dict[str, Any]) -> None:
    b = results.get("benchmarks", {})
    rows = [
        ("first load, transferred (KB)", b.get("first_load", {}).get("kb"), "first_load_kb"),
        ("first load, table shown (ms)", b.get("first_load", {}).get("ms"), "first_load_ms"),
        (f"{RECORDS} records, table shown (ms)", b.get("records", {}).get("ms"), "records_ms"),
        ("keystroke echo p50 (ms)", b.get("keystrokes", {}).get("p50_ms"), "keystroke_p50_ms"),
    ]
    print(f"{'measure':34} {'value':>9} {'target':>8} {'ratio':>7}")
    for label, value, key in rows:
        target = TARGETS[key]
        if value is None:
            print(f"{label:34} {'—':>9} {target:>8}")
            continue
        print(f"{label:34} {value:>9} {target:>8} {value / target:>7.2f}")
    if "keystrokes" in b:
        k = b["keystrokes"]
        print(f"keystrokes: n={k['n']} p90={k['p90_ms']} ms max={k['max_ms']} ms")


def main() -> int:
    ctx = new_ctx("dyui-", network=NETWORK, keep_log=base.RESULTS / "ui-server.log")
    results, status = run_session(ctx, body, OUT, results={"targets": TARGETS})
    report(results)
    return status


if __name__ == "__main__":
    sys.exit(main())
