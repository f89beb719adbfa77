"""Reading Stripe's answers: a PaymentIntent as a :class:`ProviderResult`, an SDK error as a
:class:`PaymentError`, Connect objects as the capability dataclasses, and a redacted ``raw``.

Everything here works on plain dicts (``StripeObject.to_dict()``): fields a test server such as
localstripe leaves out read as absent instead of raising ``AttributeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import stripe

from app.core.money import Money
from app.payments.capabilities import ConnectedAccount, Payout, PayoutStatus, Transfer
from app.payments.provider import PaymentError, PaymentStatus, ProviderResult, ProviderTimeout

__all__ = [
    "account_from",
    "declined_result",
    "error_body",
    "intent_result",
    "payment_error",
    "payout_from",
    "transfer_from",
]

_STATUS: Mapping[str, PaymentStatus] = {
    "requires_capture": PaymentStatus.AUTHORIZED,
    "succeeded": PaymentStatus.CAPTURED,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PENDING,
    "requires_confirmation": PaymentStatus.PENDING,
    "canceled": PaymentStatus.VOIDED,
}

# Stripe error codes (https://docs.stripe.com/error-codes) -> our stable PaymentError codes.
_ERROR_CODES: Mapping[str, str] = {
    "payment_intent_unexpected_state": "invalid_state",
    "charge_already_captured": "invalid_state",
    "charge_expired_for_capture": "invalid_state",
    "charge_disputed": "invalid_state",
    "amount_too_large": "amount_too_large",
    "charge_already_refunded": "amount_too_large",
    "amount_too_small": "invalid_amount",
    "idempotency_key_in_use": "busy",
    "lock_timeout": "busy",
    "resource_missing": "unknown_payment",
    "payment_method_unactivated": "invalid_request",
}

_PAYOUT_STATUSES: frozenset[str] = frozenset({"pending", "in_transit", "paid", "failed", "canceled"})


def _dict(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _id(value: Any) -> str:
    """An expandable field's id, whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _totals(charge: Mapping[str, Any]) -> tuple[int, int]:
    """(captured, refunded) in minor units from the payment's latest charge."""
    if not charge or charge.get("status") == "failed":
        return 0, 0
    refunded = int(charge.get("amount_refunded") or 0)
    if "amount_captured" in charge:  # Stripe: partial captures and releases create no refunds (API >= 2025-03-31)
        return int(charge.get("amount_captured") or 0), refunded
    # localstripe has no amount_captured and still records the released rest of a partial capture as
    # a refund without a payment_intent; our refunds always name the payment_intent.
    if not charge.get("captured"):
        return 0, 0
    refunds = _dict(charge.get("refunds")).get("data") or []
    released = sum(int(r.get("amount") or 0) for r in refunds if isinstance(r, dict) and not r.get("payment_intent"))
    return int(charge.get("amount") or 0) - released, refunded - released


def _decline_code(error: Mapping[str, Any]) -> str:
    code = str(error.get("decline_code") or error.get("code") or "card_declined")
    return "authentication_failed" if code == "payment_intent_authentication_failure" else code


def _card(charge: Mapping[str, Any], payment_method: Any) -> tuple[str, str]:
    details = _dict(charge.get("payment_method_details"))
    card = _dict(details.get("card")) or _dict(details.get("card_present"))  # card_present: a Terminal reader
    if not card:  # localstripe's charges carry no payment_method_details; the expanded payment method does
        method = _dict(payment_method)
        card = _dict(method.get("card")) or _dict(method.get("card_present"))
    return str(card.get("brand") or ""), str(card.get("last4") or "")


def _action_url(next_action: Mapping[str, Any]) -> str:
    """Where to send the shopper for 3-D Secure: only a redirect has a URL (``use_stripe_sdk`` needs Stripe.js)."""
    return str(_dict(next_action.get("redirect_to_url")).get("url") or "")


def _redacted(intent: Mapping[str, Any], charge: Mapping[str, Any], brand: str, last4: str) -> dict[str, Any]:
    """An allow-list copy of the intent: never ``client_secret``, card numbers or anything secret."""
    raw: dict[str, Any] = {
        key: intent[key]
        for key in (
            "id",
            "object",
            "status",
            "amount",
            "currency",
            "capture_method",
            "amount_capturable",
            "amount_received",
            "application_fee_amount",
            "transfer_group",
            "cancellation_reason",
            "created",
            "livemode",
        )
        if key in intent
    }
    raw["customer"] = _id(intent.get("customer"))
    raw["payment_method"] = _id(intent.get("payment_method"))
    raw["latest_charge"] = _id(intent.get("latest_charge"))
    raw["metadata"] = {str(k): str(v) for k, v in _dict(intent.get("metadata")).items()}
    destination = _id(_dict(intent.get("transfer_data")).get("destination"))
    if destination:
        raw["transfer_destination"] = destination
    next_action = _dict(intent.get("next_action"))
    if next_action:
        raw["next_action"] = str(next_action.get("type") or "")
    error = _dict(intent.get("last_payment_error"))
    if error:
        raw["last_payment_error"] = {k: error[k] for k in ("type", "code", "decline_code", "message") if error.get(k)}
    captured, refunded = _totals(charge)
    raw.update(amount_captured=captured, amount_refunded=refunded, brand=brand, last4=last4)
    return raw


def intent_result(intent: Mapping[str, Any], **extra_raw: Any) -> ProviderResult:
    """A PaymentIntent (``latest_charge`` and ``payment_method`` expanded) as a ProviderResult."""
    currency = str(intent["currency"]).upper()
    charge = _dict(intent.get("latest_charge"))
    captured, refunded = _totals(charge)
    brand, last4 = _card(charge, intent.get("payment_method"))
    stripe_status = str(intent.get("status") or "")
    error = _dict(intent.get("last_payment_error"))
    decline_code = message = ""
    if stripe_status == "requires_payment_method":
        status = PaymentStatus.DECLINED if error else PaymentStatus.FAILED
        decline_code = _decline_code(error) if error else ""
        message = str(error.get("message") or "") if error else "no payment method was confirmed"
    else:
        status = _STATUS.get(stripe_status, PaymentStatus.FAILED)
        if status is PaymentStatus.CAPTURED and captured > 0 and refunded >= captured:
            status = PaymentStatus.REFUNDED
    action_url = _action_url(_dict(intent.get("next_action"))) if status is PaymentStatus.REQUIRES_ACTION else ""
    return ProviderResult(
        status=status,
        provider_ref=str(intent["id"]),
        amount=Money(int(intent["amount"]), currency),
        captured=Money(captured, currency),
        refunded=Money(refunded, currency),
        brand=brand,
        last4=last4,
        decline_code=decline_code,
        message=message,
        action_url=action_url,
        raw={**_redacted(intent, charge, brand, last4), **extra_raw},
    )


def error_body(exc: stripe.StripeError) -> dict[str, Any]:
    """The ``error`` object of Stripe's JSON answer (empty when there was none)."""
    return _dict(_dict(exc.json_body).get("error"))


def declined_result(exc: stripe.CardError, amount: Money) -> ProviderResult:
    """A card refused before any PaymentIntent existed (creating the payment method failed)."""
    body = error_body(exc)
    zero = Money(0, amount.currency)
    return ProviderResult(
        status=PaymentStatus.DECLINED,
        provider_ref="",
        amount=amount,
        captured=zero,
        refunded=zero,
        decline_code=_decline_code(body),
        message=str(body.get("message") or exc.user_message or ""),
        raw={"object": "error", **{k: body[k] for k in ("type", "code", "decline_code", "message") if body.get(k)}},
    )


def payment_error(exc: stripe.StripeError, *, ref: str = "", missing: str = "unknown_payment") -> PaymentError:
    """An SDK error as a PaymentError with a stable code; ProviderTimeout when the outcome is unknown."""
    message = str(exc.user_message or type(exc).__name__)
    code = str(exc.code or error_body(exc).get("code") or "")
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderTimeout(f"Stripe did not answer: {message}", provider_ref=ref)
    if code in ("idempotency_key_in_use", "lock_timeout"):
        return PaymentError("busy", message, provider_ref=ref)
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500:
        # Stripe: a 5xx leaves the result indeterminate; resolve it like a timeout.
        return ProviderTimeout(f"Stripe failed ({exc.http_status}); the outcome is unknown", provider_ref=ref)
    if isinstance(exc, stripe.IdempotencyError):
        return PaymentError("idempotency_key_reused", message, provider_ref=ref)
    if isinstance(exc, stripe.RateLimitError):
        return PaymentError("rate_limited", message, provider_ref=ref)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return PaymentError("provider_auth", message, provider_ref=ref)
    if isinstance(exc, stripe.CardError):
        return PaymentError("card_declined", message, provider_ref=ref)
    if code == "resource_missing" or exc.http_status == 404:
        return PaymentError(missing, message, provider_ref=ref)
    return PaymentError(_ERROR_CODES.get(code, "invalid_request"), message, provider_ref=ref)


def account_from(account: Mapping[str, Any]) -> ConnectedAccount:
    requirements = _dict(account.get("requirements"))
    due: list[str] = []
    for field in [*(requirements.get("past_due") or []), *(requirements.get("currently_due") or [])]:
        if str(field) not in due:
            due.append(str(field))
    return ConnectedAccount(
        id=str(account["id"]),
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
        details_submitted=bool(account.get("details_submitted")),
        requirements_due=tuple(due),
    )


def payout_from(payout: Mapping[str, Any]) -> Payout:
    status = str(payout.get("status") or "pending")
    arrival = int(payout.get("arrival_date") or payout.get("created") or 0)
    return Payout(
        id=str(payout["id"]),
        amount=Money(int(payout["amount"]), str(payout["currency"]).upper()),
        status=cast(PayoutStatus, status if status in _PAYOUT_STATUSES else "pending"),
        arrival_date=datetime.fromtimestamp(arrival, UTC).date(),
        created=int(payout.get("created") or 0),
        failure_message=str(payout.get("failure_message") or ""),
    )


def transfer_from(transfer: Mapping[str, Any]) -> Transfer:
    return Transfer(
        id=str(transfer["id"]),
        amount=Money(int(transfer["amount"]), str(transfer["currency"]).upper()),
        destination=_id(transfer.get("destination")),
        transfer_group=str(transfer.get("transfer_group") or ""),
    )
