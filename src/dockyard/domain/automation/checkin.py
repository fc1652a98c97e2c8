"""Check-in tokens (issue 11): a container's workload may say "I am in use" by itself.

Each container gets a token at create, put into its environment as
``DOCKYARD_CHECKIN_TOKEN`` (with ``DOCKYARD_CHECKIN_URL``); the store keeps only its
SHA-256. The token is an HMAC of the cuid under a key of the data folder's own (not a
random value kept somewhere), because the Compose document is written again on every
start and change and must carry the same token without the token being stored. It is
not a signed API token, so the authenticator refuses it everywhere; only
``POST /containers/{cuid}/check-in`` of its own container accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "dyc_"
TOKEN_ENV = "DOCKYARD_CHECKIN_TOKEN"  # noqa: S105 (a variable's name)
URL_ENV = "DOCKYARD_CHECKIN_URL"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_checkin_token(token: str) -> bool:
    return token.startswith(PREFIX)


class CheckinTokens:
    """Makes a container's check-in token and environment, and checks a presented token."""

    def __init__(self, secret: bytes, base_url: str) -> None:
        self._key = hmac.new(secret, b"dockyard check-in tokens", hashlib.sha256).digest()
        self.base_url = base_url.rstrip("/")

    def token(self, cuid: str) -> str:
        mac = hmac.new(self._key, cuid.encode(), hashlib.sha256).digest()
        return PREFIX + base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def url(self, cuid: str) -> str:
        return f"{self.base_url}/containers/{cuid}/check-in"

    def env(self, cuid: str) -> dict[str, str]:
        return {TOKEN_ENV: self.token(cuid), URL_ENV: self.url(cuid)}


def token_matches(token: str, stored_hash: str | None) -> bool:
    """Constant time; a container without a stored hash (older than tokens) has none."""
    if stored_hash is None:
        return False
    return hmac.compare_digest(token_hash(token), stored_hash)


def derived_base_url(host: str, port: int, public_host: str) -> str:
    """``CHECKIN_BASE_URL`` unset: the service's own port on ``PUBLIC_HOST`` when it
    listens on every interface (or loopback), else on the address it listens on."""
    if host in ("0.0.0.0", "::", "", "127.0.0.1", "localhost", "::1"):
        host = public_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
