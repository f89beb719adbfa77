"""The sandbox's test cards, and what is kept of a card after screening (brand and last 4 only)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from app.payments.provider import (
    CardDetails,
)

_SUCCESS, _THREE_DS, _DELAYED, _TIMEOUT = "success", "three_d_secure", "delayed", "processing_error"
TEST_CARDS: Mapping[str, str] = {
    "4242424242424242": _SUCCESS,
    "5555555555554444": _SUCCESS,
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000003220": _THREE_DS,
    "4000000000000077": _DELAYED,
    "4000000000000119": _TIMEOUT,
}
TEST_TOKENS: Mapping[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_threeDSecureRequired": "4000000000003220",
    "pm_card_pending": "4000000000000077",
    "pm_card_processingError": "4000000000000119",
}

_MESSAGES = {
    "card_declined": "The card was declined.",
    "insufficient_funds": "The card has insufficient funds.",
    "invalid_number": "The card number is not valid.",
    "expired_card": "The card has expired.",
    "invalid_expiry_month": "The card's expiry month is not valid.",
    "invalid_cvc": "The card's security code is not valid.",
    "authentication_failed": "3-D Secure authentication failed.",
}


def provider_ref_for(idempotency_key: str) -> str:
    """The sandbox reference an authorization with this idempotency key gets (or got)."""
    return "sb_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _brand(digits: str) -> str:
    two, four = int(digits[:2] or 0), int(digits[:4] or 0)
    if digits.startswith("4"):
        return "visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if digits.startswith(("6011", "65")) or 644 <= int(digits[:3] or 0) <= 649:
        return "discover"
    if 3528 <= four <= 3589:
        return "jcb"
    if two in (36, 38, 39) or 300 <= int(digits[:3] or 0) <= 305:
        return "diners"
    if digits.startswith("62"):
        return "unionpay"
    return "unknown"


@dataclass(frozen=True)
class _Screened:
    """What is kept of a card after screening: never the number or the CVC."""

    brand: str
    last4: str
    behaviour: str  # one of the _SUCCESS.. constants, or a decline code from validation
    fingerprint: str  # request identity for idempotency (brand, last4, expiry; no PAN)


def _screen(card: CardDetails, today: datetime) -> _Screened:
    digits = "".join(ch for ch in card.number if ch not in " -")
    last4 = digits[-4:] if digits.isdigit() else ""
    brand = _brand(digits) if digits.isdigit() else "unknown"
    fingerprint = f"{brand}:{last4}:{card.exp_month}:{card.exp_year}"
    behaviour: str
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
        behaviour = "invalid_number"
    elif not 1 <= card.exp_month <= 12:
        behaviour = "invalid_expiry_month"
    elif (card.exp_year + 2000 if card.exp_year < 100 else card.exp_year, card.exp_month) < (today.year, today.month):
        behaviour = "expired_card"
    elif not (card.cvc.isdigit() and 3 <= len(card.cvc) <= 4):
        behaviour = "invalid_cvc"
    else:
        behaviour = TEST_CARDS.get(digits, _SUCCESS)
    return _Screened(brand=brand, last4=last4, behaviour=behaviour, fingerprint=fingerprint)
