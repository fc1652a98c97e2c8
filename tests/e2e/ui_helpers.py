"""Helpers of the UI tests in a real browser (tests/e2e/test_ui.py's fixtures and
``Watched`` page, re-exported; a signed-in page in a context of its own)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, expect

from tests.e2e.test_ui import Watched, browser, sign_in, watched

__all__ = ["Watched", "browser", "open_page", "sign_in", "signed_in", "watched"]


@contextmanager
def signed_in(browser: Browser, url: str, user: tuple[str, str]) -> Iterator[Watched]:
    """A new 1280 px context signed in as ``user``; its problems must be none at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Watched(context.new_page())
    page.page.set_default_timeout(30_000)
    try:
        sign_in(page.page, url, user)
        yield page
    finally:
        context.close()
    assert page.problems == [], page.problems


def open_page(watched: Watched, link: str, heading: str) -> None:
    """Follows the main navigation's ``link`` and waits for the page's ``heading``."""
    page = watched.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(f"^{re.escape(heading)}"))).to_be_visible()
