"""Reading a Stripe-shaped dispute object: the fields Till keeps, the provider's fees, and what is malformed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.disputes.services import dispute_facts
from app.payments.provider import WebhookEvent

FIXTURES = Path(__file__).resolve().parents[1] / "providers" / "fixtures" / "stripe"


def _event(obj: dict[str, Any]) -> WebhookEvent:
    return WebhookEvent("evt_1", "charge.dispute.updated", 1_764_000_100, {"object": obj})


def _recorded() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "dispute_needs_response.json").read_text()))


def _bt(amount: int, fee: int, currency: str = "eur") -> dict[str, Any]:
    return {"id": "txn_1", "object": "balance_transaction", "amount": amount, "fee": fee, "currency": currency}


def test_a_recorded_stripe_dispute_with_no_balance_transactions_has_no_fee() -> None:
    facts = dispute_facts(_event(_recorded()))
    assert (facts.currency, facts.status, facts.fee_minor) == ("EUR", "needs_response", 0)
    assert facts.payment_ref and facts.charge_ref.startswith("ch_")


def test_fees_are_summed_net_of_any_returned_in_the_disputes_currency_only() -> None:
    obj = _recorded()
    obj["balance_transactions"] = [_bt(-3990, 2000), _bt(3990, -2000)]  # withdrawn, then fully reinstated
    assert dispute_facts(_event(obj)).fee_minor == 0
    obj["balance_transactions"] = [_bt(-3990, 2000), _bt(3990, 0)]  # reinstated, fee kept
    assert dispute_facts(_event(obj)).fee_minor == 2000
    # Settled in another currency: it cannot be set against this payment. An unexpanded id says nothing.
    obj["balance_transactions"] = [_bt(-4200, 1500, "usd"), "txn_unexpanded", {"fee": "15.00", "currency": "eur"}]
    assert dispute_facts(_event(obj)).fee_minor == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": ""}, "without an id"),
        ({"amount": -1}, "whole number"),
        ({"amount": 12.5}, "whole number"),
        ({"status": "pondering"}, "unknown status"),
        ({"currency": ""}, "no currency"),
    ],
)
def test_a_malformed_dispute_names_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dispute_facts(_event({**_recorded(), **change}))
