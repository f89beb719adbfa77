"""Signed, expiring URLs (HMAC-SHA256 with a key derived from SECRET_KEY).

A delivery token grants reading every derivative of one asset of one store until it expires: the token sits in
the path (``/media/{store}/{asset}/{expires}.{sig}/{name}``), so the relative segment names inside an HLS playlist
resolve under the same token. Expiry is rounded up to a window, so a page rendered twice in a window carries the
same URLs (browser caches and the storefront's page cache keep working) and every URL lives at least ``ttl``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

DELIVERY_TTL = 24 * 3600  # every delivery URL is valid at least this long after it is made...
DELIVERY_WINDOW = 6 * 3600  # ...and at most this much longer (expiry rounded up to the window)
UPLOAD_TTL = 15 * 60


def _key(secret_key: str, purpose: str) -> bytes:
    return hashlib.sha256(f"till-media:{purpose}:{secret_key}".encode()).digest()


def _sign(secret_key: str, purpose: str, message: str) -> str:
    return hmac.new(_key(secret_key, purpose), message.encode(), hashlib.sha256).hexdigest()[:32]


def delivery_expiry(now: float | None = None, ttl: int = DELIVERY_TTL, window: int = DELIVERY_WINDOW) -> int:
    now = time.time() if now is None else now
    return int(-(-(now + ttl) // window) * window)


def delivery_token(secret_key: str, store_id: uuid.UUID, asset_id: uuid.UUID, expires: int) -> str:
    return f"{expires}.{_sign(secret_key, 'read', f'{store_id}:{asset_id}:{expires}')}"


def check_delivery_token(
    secret_key: str, store_id: uuid.UUID, asset_id: uuid.UUID, token: str, now: float | None = None
) -> bool:
    """True when the token was made for this store and asset and has not expired."""
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or not signature:
        return False
    expected = _sign(secret_key, "read", f"{store_id}:{asset_id}:{expires_text}")
    if not hmac.compare_digest(expected, signature):
        return False
    return int(expires_text) > (time.time() if now is None else now)


def upload_signature(secret_key: str, store_id: uuid.UUID, asset_id: uuid.UUID, max_bytes: int, expires: int) -> str:
    return _sign(secret_key, "upload", f"{store_id}:{asset_id}:{max_bytes}:{expires}")


def check_upload_signature(
    secret_key: str,
    store_id: uuid.UUID,
    asset_id: uuid.UUID,
    max_bytes: int,
    expires: int,
    signature: str,
    now: float | None = None,
) -> bool:
    expected = upload_signature(secret_key, store_id, asset_id, max_bytes, expires)
    if not hmac.compare_digest(expected, signature):
        return False
    return expires > (time.time() if now is None else now)
