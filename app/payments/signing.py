"""Webhook signatures, Stripe's scheme: ``t=<unix ts>,v1=<hex HMAC-SHA256 of "<ts>." + body>``.

The sandbox signs the events it sends itself with :func:`sign`; webhook intake checks them with
:func:`verify` on the raw request body, before parsing it. Several ``v1`` entries may be present
(during secret rotation); any one matching is enough. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["DEFAULT_TOLERANCE_S", "InvalidSignature", "sign", "verify"]

DEFAULT_TOLERANCE_S = 300
_SCHEME = "v1"


class InvalidSignature(ValueError):
    """The signature does not prove the payload came from the holder of the secret.

    ``reason`` is one of: "missing signature", "malformed signature header",
    "timestamp outside the tolerance", "no matching signature".
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The signature header value for ``payload`` sent at ``timestamp``."""
    return f"t={timestamp},{_SCHEME}={_digest(payload, secret, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key or not value:
            raise InvalidSignature("malformed signature header")
        if key == "t":
            if timestamp is not None or not value.isdigit():
                raise InvalidSignature("malformed signature header")
            timestamp = int(value)
        elif key == _SCHEME:
            signatures.append(value)
        # other schemes (v0, ...) are ignored, as Stripe does
    if timestamp is None:
        raise InvalidSignature("malformed signature header")
    if not signatures:
        raise InvalidSignature("missing signature")
    return timestamp, signatures


def verify(
    payload: bytes,
    header: str,
    secret: str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: int | None = None,
) -> None:
    """Raise :class:`InvalidSignature` unless ``header`` signs ``payload`` with ``secret`` recently.

    The timestamp must be within ``tolerance_s`` seconds of ``now`` (either side, for clock skew);
    it is checked after the signature, so a stale event is reported as stale only when it is genuine.
    """
    if not header or not header.strip():
        raise InvalidSignature("missing signature")
    timestamp, signatures = _parse(header)
    expected = _digest(payload, secret, timestamp)
    matched = False
    for candidate in signatures:
        # compare every candidate, so the time taken does not depend on which one matched
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise InvalidSignature("no matching signature")
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise InvalidSignature("timestamp outside the tolerance")
