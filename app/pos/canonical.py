"""The bytes an offline sale is checked by: canonical JSON, its HMAC under the shift's key, and its fingerprint.

Canonical JSON is Python's ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
encoded as UTF-8: keys sorted at every level, no whitespace, characters as themselves. The tablet writes the
same bytes (static/pos/canonical.js, checked against this in tests/unit/test_pos_js.py). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

__all__ = [
    "OFFLINE_KEY_BYTES",
    "canonical_json",
    "checksum",
    "checksum_matches",
    "key_from_text",
    "key_text",
    "new_offline_key",
    "sale_fingerprint",
]

OFFLINE_KEY_BYTES = 32


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON value (a float is refused: money and counts are integers)."""
    _refuse_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise ValueError("canonical JSON takes integers only")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_floats(item)


def checksum(key: bytes, sale: Any) -> str:
    """Hex HMAC-SHA256 of the sale's canonical JSON under the shift's offline key."""
    return hmac.new(key, canonical_json(sale), hashlib.sha256).hexdigest()


def checksum_matches(key: bytes, sale: Any, given: object) -> bool:
    """Whether ``given`` is the sale's checksum, compared in constant time; False for anything malformed."""
    if not isinstance(given, str) or len(given) != 64:
        return False
    try:
        expected = checksum(key, sale)
    except (TypeError, ValueError):
        return False
    return hmac.compare_digest(expected, given.lower())


def sale_fingerprint(sale: Any) -> str:
    """SHA-256 of the sale's canonical JSON: the same sale again (online or by sync) is told from another one
    under the same client_sale_id."""
    return hashlib.sha256(canonical_json(sale)).hexdigest()


def new_offline_key() -> bytes:
    return secrets.token_bytes(OFFLINE_KEY_BYTES)


def key_text(key: bytes) -> str:
    """base64url without padding, as the contract hands the key to the tablet."""
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def key_from_text(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a base64url offline key") from exc
    if len(key) != OFFLINE_KEY_BYTES:
        raise ValueError("an offline key is 32 bytes")
    return key
