"""The UI's static files: one version over all of them, the shell pointing at it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from dockyard.ui import STATIC, Assets
from tests.conftest import FakeWorld


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_version_names_every_file_and_changes_with_any(tmp_path: Path) -> None:
    shell = '<script type="module" src="{{assets}}/js/main.js"></script>'
    write(tmp_path, {"index.html": shell, "js/main.js": "1", "vendor/x/LICENSE": "MIT"})
    first = Assets.load(tmp_path)
    assert first.index.decode() == (
        f'<script type="module" src="/ui/assets/{first.version}/js/main.js"></script>'
    )
    main = first.get(first.version, "js/main.js")
    assert main is not None and main.media_type.startswith("text/javascript")
    assert first.get("0" * 16, "js/main.js") is None
    assert first.get(first.version, "vendor/x/LICENSE") is None  # not served
    write(tmp_path, {"js/main.js": "2"})
    assert Assets.load(tmp_path).version != first.version


def test_the_shipped_shell_names_only_files_that_exist() -> None:
    assets = Assets.load(STATIC)
    for name in ("js/main.js", "app.css", "vendor/xterm/xterm.css", "vendor/xterm/xterm.mjs"):
        assert assets.get(assets.version, name) is not None, name
    assert b"{{assets}}" not in assets.index


async def test_ui_routes_are_open_and_api_paths_keep_their_errors(
    fake_world: FakeWorld,
) -> None:
    transport = httpx.ASGITransport(app=fake_world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
        for path in ("/", "/ui", "/ui/containers/new"):
            page = await anon.get(path)
            assert page.status_code == 200, path
            assert page.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        missing = await anon.get("/containerz")
        assert missing.status_code == 404
        assert missing.json()["code"] == "ROUTE_NOT_FOUND"
        assert (await anon.get("/containers")).status_code == 401


@pytest.mark.parametrize(
    "module", sorted(p.name for p in (STATIC / "js").glob("*.js")), ids=lambda name: name
)
def test_every_ui_module_parses(module: str) -> None:
    """A module that does not parse leaves the whole UI blank (a bad merge did once)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js) is needed to check the UI's modules")
    source = (STATIC / "js" / module).read_bytes()
    checked = subprocess.run(
        [node, "--check", "--input-type=module"],
        input=source,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr.decode()[-2000:]
