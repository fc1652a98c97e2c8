"""What a git source may name: the URL, the ref, seed 002's GitHub triple.

Checked before any process runs; the adapter (adapters/git.py) applies the same rules
and then the address rule of every fetch (public addresses, or FETCH_ALLOW_NETS).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import SplitResult, urlsplit

from dockyard.errors import ValidationError

MAX_URL = 2048
MAX_REF = 255
_GITHUB_USER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# git check-ref-format's rules, plus: no leading '-' (an option), nothing outside ASCII.
_REF_CHARS = re.compile(r"^[A-Za-z0-9._/+@=,%-]+$")


def _refused(message: str, field: str, code: str, provided: str) -> ValidationError:
    shown = provided if len(provided) <= 200 and provided.isprintable() else None
    return ValidationError(
        f"{field}: {message}", code=code, details={"field": field, "provided": shown}
    )


def check_url(url: str, allow_http_hosts: Collection[str], field: str = "git.url") -> SplitResult:
    """An https URL (or http to a host an admin allows) with a host and a path; no
    credentials, query, fragment, whitespace or control characters."""

    def no(reason: str) -> ValidationError:
        return _refused(reason, field, "GIT_URL_NOT_ALLOWED", url)

    if not url or len(url) > MAX_URL:
        raise no(f"a URL of 1 to {MAX_URL} characters is required")
    if url.startswith("-") or any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise no("spaces, control characters and a leading '-' are not allowed")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise no("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or "::" in parts.scheme:
        raise no("only https URLs are allowed (http only to hosts an admin allows)")
    if not host:
        raise no("the URL has no host")
    if scheme == "http" and host.lower() not in {h.lower() for h in allow_http_hosts}:
        raise no(f"http is not allowed to {host}; use https")
    if parts.username is not None or parts.password is not None:
        raise no("credentials in the URL are not supported")
    if parts.query or parts.fragment or "#" in url:
        raise no("a query or fragment is not allowed")
    if not parts.path.strip("/"):
        raise no("the URL names no repository")
    return parts


def check_ref(ref: str, field: str = "git.ref") -> str:
    """A branch, tag or commit id as ``git fetch`` takes it, never an option."""

    def no(reason: str) -> ValidationError:
        return _refused(reason, field, "GIT_REF_INVALID", ref)

    if not ref or len(ref) > MAX_REF:
        raise no(f"a ref of 1 to {MAX_REF} characters is required")
    if ref.startswith("-"):
        raise no("a ref may not start with '-'")
    if not _REF_CHARS.fullmatch(ref):
        raise no("a ref holds letters, digits and . _ / + @ = , % - only")
    components = ref.split("/")
    if (
        ".." in ref
        or "@{" in ref
        or ref == "@"
        or ref.endswith((".", "/", ".lock"))
        or any(not c or c.startswith(".") or c.endswith(".lock") for c in components)
    ):
        raise no("not a valid git ref name")
    return ref


def github_url(username: str, reponame: str) -> str:
    """Seed 002's ``github_username``/``github_reponame`` as an https clone URL."""
    if not _GITHUB_USER.fullmatch(username or ""):
        raise _refused(
            "not a GitHub user or organisation name", "github_username", "INVALID_FIELD", username
        )
    if not _GITHUB_REPO.fullmatch(reponame or "") or reponame in (".", ".."):
        raise _refused("not a GitHub repository name", "github_reponame", "INVALID_FIELD", reponame)
    name = reponame if reponame.endswith(".git") else f"{reponame}.git"
    return f"https://github.com/{username}/{name}"
