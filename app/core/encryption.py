"""Secrets at rest (Invariant 9): AES-256-GCM with versioned keys.

A ciphertext is text, ``v<version>.<base64url(nonce ‖ ciphertext ‖ tag)>``, so it names the key that made
it. The newest configured version encrypts; every configured version decrypts, so keys can be rotated
(``till keys rotate`` re-encrypts rows to the newest). Keys come from ``ENCRYPTION_KEYS``
(``"2:<base64>,1:<base64>"``); version 1 is derived from ``SECRET_KEY`` (HKDF-SHA256) unless
``ENCRYPTION_KEYS`` names a version 1 itself, so a fresh install works without configuration.

Every value is bound to where it lives by associated data (``context``, e.g. store id + provider + mode
+ field): a ciphertext copied to another row or field fails to decrypt. A changed or misplaced
ciphertext raises ``DecryptionFailed``; it never returns garbage. No message ever contains a key or a
plaintext.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.config import Settings, load_settings

__all__ = [
    "DecryptionFailed",
    "EncryptionError",
    "Keyring",
    "UnknownKeyVersion",
    "current_keyring",
    "derive_key",
    "install_keyring",
    "keyring_from_settings",
]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_TOKEN = re.compile(r"^v([1-9][0-9]{0,8})\.([A-Za-z0-9_-]+={0,2})$")


class EncryptionError(Exception):
    """A secret could not be encrypted or decrypted. The message holds no key and no plaintext."""


class DecryptionFailed(EncryptionError):
    """The ciphertext was changed, is malformed, or belongs to another row or field."""


class UnknownKeyVersion(EncryptionError):
    """The ciphertext was made with a key version that is not configured."""


def derive_key(secret_key: str, version: int = 1) -> bytes:
    """A 32-byte key derived from SECRET_KEY (HKDF-SHA256), for installs without ENCRYPTION_KEYS."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=b"till/encryption-keys",
        info=f"till secrets at rest, key version {version}".encode(),
    ).derive(secret_key.encode())


class Keyring:
    """Versioned AES-GCM keys: the newest encrypts, all decrypt."""

    __slots__ = ("_ciphers", "_keys", "newest_version")

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        if not keys:
            raise EncryptionError("a keyring needs at least one key")
        for version, key in keys.items():
            if version < 1 or len(key) != KEY_BYTES:
                raise EncryptionError(f"key version {version} must be >= 1 and {KEY_BYTES} bytes long")
        self._ciphers = {version: AESGCM(key) for version, key in keys.items()}
        self._keys = dict(keys)
        self.newest_version = max(keys)

    def derive(self, purpose: str, version: int) -> bytes:
        """A 32-byte key for another use (e.g. HMAC of gift card codes), derived from key ``version`` (HKDF-SHA256,
        ``purpose`` as info): never the encryption key itself."""
        return HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=b"till/derived-keys", info=purpose.encode()
        ).derive(self._keys[version])

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._ciphers, reverse=True))

    def __repr__(self) -> str:
        return f"Keyring(versions={list(self.versions)})"

    @staticmethod
    def _aad(version: int, context: str) -> bytes:
        return f"till/v{version}/{context}".encode()

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt with the newest key, bound to ``context`` (where the value lives)."""
        version = self.newest_version
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[version].encrypt(nonce, plaintext.encode(), self._aad(version, context))
        return f"v{version}." + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        """The plaintext, or ``DecryptionFailed`` / ``UnknownKeyVersion`` — never a wrong value."""
        version = self.version_of(ciphertext)
        cipher = self._ciphers.get(version)
        if cipher is None:
            configured = ", ".join(str(v) for v in self.versions)
            raise UnknownKeyVersion(
                f"this secret was encrypted with key version {version}, which is not configured "
                f"(configured: {configured}); add it back to ENCRYPTION_KEYS"
            )
        try:
            raw = base64.urlsafe_b64decode(ciphertext.split(".", 1)[1])
        except (binascii.Error, ValueError):
            raise DecryptionFailed("the encrypted secret is malformed") from None
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed("the encrypted secret is malformed")
        try:
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(version, context))
        except InvalidTag:
            raise DecryptionFailed(
                "the encrypted secret failed its integrity check: it was changed or belongs to another row"
            ) from None
        return plain.decode()

    @staticmethod
    def version_of(ciphertext: str) -> int:
        match = _TOKEN.match(ciphertext or "")
        if match is None:
            raise DecryptionFailed("the encrypted secret is malformed (expected v<version>.<base64>)")
        return int(match.group(1))

    def is_current(self, ciphertext: str) -> bool:
        """Whether the value is already under the newest key (rotation skips it)."""
        return self.version_of(ciphertext) == self.newest_version

    def rotate(self, ciphertext: str, *, context: str) -> str:
        """Re-encrypt with the newest key (decrypting checks the value first)."""
        return self.encrypt(self.decrypt(ciphertext, context=context), context=context)


def keyring_from_settings(settings: Settings) -> Keyring:
    keys = dict(settings.encryption_keys)
    keys.setdefault(1, derive_key(settings.secret_key, 1))
    return Keyring(keys)


_installed: Keyring | None = None


def install_keyring(keyring: Keyring | Settings) -> Keyring:
    """Make this the process's keyring (``create_app`` does it with the app's settings)."""
    global _installed
    _installed = keyring if isinstance(keyring, Keyring) else keyring_from_settings(keyring)
    return _installed


def current_keyring() -> Keyring:
    """The process's keyring; without one installed, the one the environment's settings give."""
    global _installed
    if _installed is None:
        _installed = keyring_from_settings(load_settings())
    return _installed
