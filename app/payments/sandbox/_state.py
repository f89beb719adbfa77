"""One sandbox payment as stored in Redis, and how it reads as a ProviderResult."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NotRequired, TypedDict

from app.core.money import Money
from app.payments.provider import (
    PaymentError,
    PaymentStatus,
    ProviderResult,
)

STATE_TTL_S = 7 * 24 * 3600
_PI_PREFIX = "till:sandbox:pi:"
_IDEM_PREFIX = "till:sandbox:idem:"
_MAX_ATTEMPTS = 200  # optimistic-transaction retries before giving up under contention


# Behaviour of the special test cards (any other valid card: success); a decline's is its decline code.
class _State(TypedDict):
    """One sandbox payment as stored in Redis (no card data beyond brand and last 4)."""

    id: str
    status: str
    currency: str
    amount: int
    captured: int
    refunded: int
    capture: bool  # capture on authorization (also after a challenge or a delayed success)
    flow: str  # "", "challenge" or "pending": how it got past REQUIRES_ACTION / PENDING
    brand: str
    last4: str
    decline_code: str
    message: str
    action_url: str
    created: int
    # Where the 3-D Secure page sends the payer back (the authorisation's return_url), when no checkout waits.
    return_url: NotRequired[str]
    # Connect destination charges: the connected account credited with the capture, less the platform's fee.
    destination: NotRequired[str]
    application_fee: NotRequired[int]


def _public(state: _State) -> dict[str, Any]:
    """The redacted object shown in ``ProviderResult.raw`` and in webhooks."""
    public = {
        "id": state["id"],
        "object": "payment_intent",
        "status": state["status"],
        "amount": state["amount"],
        "currency": state["currency"],
        "amount_captured": state["captured"],
        "amount_refunded": state["refunded"],
        "brand": state["brand"],
        "last4": state["last4"],
        "decline_code": state["decline_code"],
    }
    if "destination" in state:  # a Connect destination charge
        public["destination"], public["application_fee"] = state["destination"], state.get("application_fee", 0)
    return public


def _result(state: _State, **extra_raw: Any) -> ProviderResult:
    currency = state["currency"]
    return ProviderResult(
        status=PaymentStatus(state["status"]),
        provider_ref=state["id"],
        amount=Money(state["amount"], currency),
        captured=Money(state["captured"], currency),
        refunded=Money(state["refunded"], currency),
        brand=state["brand"],
        last4=state["last4"],
        decline_code=state["decline_code"],
        message=state["message"],
        action_url=state["action_url"],
        raw={**_public(state), **extra_raw},
    )


def _check_amount(amount: Money, state: _State | None = None) -> None:
    if amount.amount_minor <= 0:
        raise PaymentError("invalid_amount", f"amount must be positive, got {amount.amount_minor}")
    if state is not None and amount.currency != state["currency"]:
        raise PaymentError(
            "currency_mismatch",
            f"payment is in {state['currency']}, request is in {amount.currency}",
            provider_ref=state["id"],
        )


def _require(state: _State | None, ref: str) -> _State:
    if state is None:
        raise PaymentError("unknown_payment", f"no sandbox payment {ref}", provider_ref=ref)
    return state


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# A step computes the new state (and extra fields for ``raw``) from the current one, or raises PaymentError.
_Step = Callable[[_State | None], tuple[_State, dict[str, Any]]]
