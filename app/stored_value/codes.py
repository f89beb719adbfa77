"""Gift card codes: 16 symbols of Crockford base32 (80 bits from ``secrets``), shown once, stored only as an
HMAC-SHA256 under a server key derived from the keyring (``app/core/encryption.py``), bound to the store: a
database dump alone reveals no code and cannot be brute-forced offline without the key. The last 4 symbols are
kept for display and search. Lookups try every configured key version, newest first (rotation keeps old cards).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from functools import lru_cache

from app.core.encryption import Keyring, current_keyring

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
LENGTH = 16  # 16 × 5 bits = 80 bits of entropy
_PURPOSE = "till gift card codes"
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A fresh code, grouped for reading: ``XXXX-XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, LENGTH, 4))


def normalise(code: str) -> str:
    """What the shopper typed, as stored: upper case, no spaces or dashes, O→0 and I/L→1. "" when it cannot be a
    code (wrong length or symbols), so a typo never costs a database lookup."""
    cleaned = "".join(code.split()).replace("-", "").upper().translate(_CONFUSABLE)
    if len(cleaned) != LENGTH or any(c not in ALPHABET for c in cleaned):
        return ""
    return cleaned


def last4(code: str) -> str:
    return normalise(code)[-4:]


@lru_cache(maxsize=16)
def _key(keyring: Keyring, version: int) -> bytes:
    return keyring.derive(_PURPOSE, version)


def code_hash(store_id: uuid.UUID, code: str, *, version: int | None = None, keyring: Keyring | None = None) -> str:
    """HMAC-SHA256 (hex) of the normalised code and the store, under key ``version`` (default: the newest)."""
    keyring = keyring or current_keyring()
    key = _key(keyring, version or keyring.newest_version)
    return hmac.new(key, f"{store_id}:{normalise(code)}".encode(), hashlib.sha256).hexdigest()


def candidate_hashes(store_id: uuid.UUID, code: str, *, keyring: Keyring | None = None) -> list[str]:
    """The code's hash under every configured key version, newest first (what a lookup matches)."""
    keyring = keyring or current_keyring()
    return [code_hash(store_id, code, version=v, keyring=keyring) for v in keyring.versions]


__all__ = ["ALPHABET", "LENGTH", "candidate_hashes", "code_hash", "last4", "new_code", "normalise"]
