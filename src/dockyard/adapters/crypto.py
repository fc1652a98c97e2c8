"""Secrets at rest: AES-256-GCM with a key kept in the data folder (``registry-secret``).

Each value is sealed with a fresh 96-bit nonce and bound to its context (the row it
belongs to) as associated data, so a sealed value copied into another row does not open.
Stored form: ``v1`` + nonce (12 bytes) + ciphertext and tag.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dockyard.errors import StorageIOError

_VERSION = b"v1"
_NONCE = 12


class AesGcmBox:
    """``SecretBox`` over AES-GCM; ``key`` is 32 bytes (``load_or_create_secret``)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("an AES-256 key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_secret(
        cls, secret: bytes, purpose: bytes = b"dockyard registry credentials"
    ) -> AesGcmBox:
        """A box whose key is derived (HKDF-SHA256) from a secret of the data folder."""
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)
        return cls(key)

    def seal(self, plain: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        if not sealed.startswith(_VERSION) or len(sealed) < len(_VERSION) + _NONCE + 16:
            raise StorageIOError("a stored secret is not in a form this service wrote")
        nonce = sealed[len(_VERSION) : len(_VERSION) + _NONCE]
        try:
            return self._aead.decrypt(nonce, sealed[len(_VERSION) + _NONCE :], context)
        except InvalidTag:
            # Another key (registry-secret replaced) or a row changed behind our back.
            raise StorageIOError(
                "a stored secret does not open with this service's key",
                code="SECRET_UNREADABLE",
            ) from None
