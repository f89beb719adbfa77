"""Signed, expiring links to a receipt's PDF that work without an account: ``/r/<id>?exp=<unix>&sig=<hmac>``.

The signature is an HMAC-SHA256 under the deployment's SECRET_KEY over the receipt id and the expiry; a changed
id or expiry, or a link past its expiry, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from urllib.parse import urlencode

LINK_LIFETIME_S = 90 * 24 * 3600  # a receipt link keeps working for 90 days


def _signature(secret: str, receipt_id: uuid.UUID, expires: int) -> str:
    message = f"receipt:{receipt_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_path(
    secret: str, receipt_id: uuid.UUID, *, now: float | None = None, lifetime_s: int = LINK_LIFETIME_S
) -> str:
    expires = int((now if now is not None else time.time()) + lifetime_s)
    query = urlencode({"exp": expires, "sig": _signature(secret, receipt_id, expires)})
    return f"/r/{receipt_id}?{query}"


def check(secret: str, receipt_id: uuid.UUID, exp: str, sig: str, *, now: float | None = None) -> str:
    """ "ok", "expired" or "invalid" (a tampered id, expiry or signature)."""
    if not exp.isdigit() or len(sig) != 64:
        return "invalid"
    if not hmac.compare_digest(_signature(secret, receipt_id, int(exp)), sig):
        return "invalid"
    if int(exp) < (now if now is not None else time.time()):
        return "expired"
    return "ok"
