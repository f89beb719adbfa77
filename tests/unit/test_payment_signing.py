"""Webhook signatures (Stripe's scheme): sign/verify and every way verification fails."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.payments.signing import InvalidSignature, sign, verify

SECRET = "whsec_test_secret"
PAYLOAD = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
NOW = 1_800_000_000


def _reason(payload: bytes, header: str, secret: str = SECRET, **kwargs: int) -> str:
    with pytest.raises(InvalidSignature) as caught:
        verify(payload, header, secret, now=kwargs.pop("now", NOW), **kwargs)
    return caught.value.reason


def test_sign_produces_stripe_header() -> None:
    header = sign(PAYLOAD, SECRET, NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + PAYLOAD, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_roundtrip_verifies() -> None:
    verify(PAYLOAD, sign(PAYLOAD, SECRET, NOW), SECRET, now=NOW)
    verify(PAYLOAD, sign(PAYLOAD, SECRET, NOW), SECRET, now=NOW + 300)  # at the edge of the tolerance


def test_invalid_signature_is_a_value_error() -> None:
    assert issubclass(InvalidSignature, ValueError)
    assert str(InvalidSignature("missing signature")) == "missing signature"


@pytest.mark.parametrize("header", ["", "   "])
def test_missing_header(header: str) -> None:
    assert _reason(PAYLOAD, header) == "missing signature"


def test_header_without_v1_is_missing_signature() -> None:
    assert _reason(PAYLOAD, f"t={NOW},v0=abc") == "missing signature"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "v1=abcdef",  # no timestamp
        "t=notanumber,v1=abcdef",
        "t=-5,v1=abcdef",
        f"t={NOW},t={NOW},v1=abcdef",  # two timestamps
        f"t={NOW},v1=",
        f"t={NOW},,v1=abcdef",
    ],
)
def test_malformed_header(header: str) -> None:
    assert _reason(PAYLOAD, header) == "malformed signature header"


def test_old_timestamp_is_rejected() -> None:
    header = sign(PAYLOAD, SECRET, NOW - 301)
    assert _reason(PAYLOAD, header) == "timestamp outside the tolerance"


def test_future_timestamp_is_rejected() -> None:
    header = sign(PAYLOAD, SECRET, NOW + 301)
    assert _reason(PAYLOAD, header) == "timestamp outside the tolerance"


def test_tolerance_is_configurable() -> None:
    header = sign(PAYLOAD, SECRET, NOW - 1000)
    verify(PAYLOAD, header, SECRET, tolerance_s=1000, now=NOW)
    assert _reason(PAYLOAD, header, tolerance_s=999) == "timestamp outside the tolerance"


def test_wrong_secret() -> None:
    assert _reason(PAYLOAD, sign(PAYLOAD, "another-secret", NOW)) == "no matching signature"


def test_tampered_payload() -> None:
    header = sign(PAYLOAD, SECRET, NOW)
    assert _reason(PAYLOAD.replace(b"evt_1", b"evt_2"), header) == "no matching signature"


def test_tampered_timestamp() -> None:
    good = sign(PAYLOAD, SECRET, NOW)
    signature = good.split("v1=")[1]
    assert _reason(PAYLOAD, f"t={NOW + 1},v1={signature}") == "no matching signature"


def test_stale_and_forged_reports_the_forgery() -> None:
    # the signature is checked first: an attacker learns nothing about the tolerance
    assert _reason(PAYLOAD, sign(PAYLOAD, "wrong", NOW - 10_000)) == "no matching signature"


def test_any_of_several_v1_entries_may_match() -> None:
    good = sign(PAYLOAD, SECRET, NOW).split("v1=")[1]
    old = sign(PAYLOAD, "rotated-out-secret", NOW).split("v1=")[1]
    verify(PAYLOAD, f"t={NOW},v1={old},v1={good}", SECRET, now=NOW)
    verify(PAYLOAD, f"t={NOW}, v1={good}, v1={old}, v0=ignored", SECRET, now=NOW)
    assert _reason(PAYLOAD, f"t={NOW},v1={old},v1={'0' * 64}") == "no matching signature"


def test_non_ascii_signature_is_no_match_not_a_crash() -> None:
    assert _reason(PAYLOAD, f"t={NOW},v1=é") == "no matching signature"
