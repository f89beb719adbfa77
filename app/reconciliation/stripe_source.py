"""Stripe's side of reconciliation: its list APIs, read page by page with the SDK's auto-pagination.

- Payments: ``GET /v1/payment_intents`` by ``created`` (``latest_charge.balance_transaction`` expanded: the fee Stripe
  charged), each read as the provider reads one (``intent_result``: the same status and totals mapping).
- Payouts: ``GET /v1/payouts`` by ``arrival_date``; a payout's contents: ``GET /v1/balance_transactions?payout=…``
  (``source`` expanded, to name the PaymentIntent a charge or refund belongs to).

localstripe has none of the balance transaction or payout list endpoints, so these are tested with recorded,
Stripe-shaped fixtures (tests/integration/test_stripe_reconciliation.py; docs/payments.md says which).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import stripe

from app.payments.provider import PaymentError, PaymentProvider, ProviderTimeout
from app.payments.providers._stripe_results import intent_result
from app.reconciliation.sources import PayoutItem, RemotePayment, RemotePayout

PAGE = 100
_CHARGE_TYPES = ("charge", "payment")
_REFUND_TYPES = ("refund", "payment_refund")


def _dict(value: Any) -> dict[str, Any]:
    if isinstance(value, stripe.StripeObject):
        return value.to_dict()
    return dict(value) if isinstance(value, Mapping) else {}


def _remote(intent: dict[str, Any]) -> RemotePayment:
    result = intent_result(intent)
    charge = _dict(intent.get("latest_charge"))
    balance = _dict(charge.get("balance_transaction"))
    return RemotePayment(
        ref=result.provider_ref,
        status=result.status.value,
        currency=result.amount.currency,
        amount=result.amount.amount_minor,
        captured=result.captured.amount_minor,
        refunded=result.refunded.amount_minor,
        fee=int(balance.get("fee") or 0),
        created=int(intent.get("created") or 0),
    )


def _payment_of(source: dict[str, Any]) -> str:
    """The PaymentIntent a balance transaction's source (a charge, a refund, a dispute) belongs to."""
    ref = source.get("payment_intent")
    if ref:
        return str(ref.get("id") if isinstance(ref, dict) else ref)
    charge = source.get("charge")
    if isinstance(charge, dict):
        return _payment_of(charge)
    return str(source.get("id") or charge or "")


class StripeLedger:
    """A store's Stripe account, read through the provider's client (its keys, its API version)."""

    name = "stripe"

    def __init__(self, client: stripe.StripeClient) -> None:
        self._v1 = client.v1

    @classmethod
    def of(cls, provider: PaymentProvider) -> StripeLedger:
        client = getattr(provider, "client", None)
        if not isinstance(client, stripe.StripeClient):
            raise TypeError("a StripeLedger needs a StripeProvider")
        return cls(client)

    async def payments(self, start: int, end: int) -> AsyncIterator[RemotePayment]:
        try:
            page = await self._v1.payment_intents.list_async(
                {
                    "created": {"gte": start, "lt": end},
                    "limit": PAGE,
                    "expand": ["data.latest_charge.balance_transaction"],
                }
            )
            async for intent in page.auto_paging_iter():
                yield _remote(intent.to_dict())
        except stripe.APIConnectionError as exc:
            raise ProviderTimeout(f"stripe: {exc.user_message or exc}") from exc

    async def payment(self, ref: str) -> RemotePayment | None:
        try:
            intent = await self._v1.payment_intents.retrieve_async(
                ref, {"expand": ["latest_charge.balance_transaction"]}
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return None
            raise PaymentError(exc.code or "invalid_request", str(exc.user_message or exc), provider_ref=ref) from exc
        return _remote(intent.to_dict())

    async def payouts(self, start: int, end: int) -> AsyncIterator[RemotePayout]:
        page = await self._v1.payouts.list_async({"arrival_date": {"gte": start, "lt": end}, "limit": PAGE})
        async for payout in page.auto_paging_iter():
            body = payout.to_dict()
            yield RemotePayout(
                ref=str(body["id"]),
                currency=str(body["currency"]).upper(),
                amount=int(body["amount"]),
                status=str(body.get("status") or ""),
                arrival=int(body.get("arrival_date") or 0),
            )

    async def payout_items(self, payout_ref: str) -> AsyncIterator[PayoutItem]:
        page = await self._v1.balance_transactions.list_async(
            {"payout": payout_ref, "limit": PAGE, "expand": ["data.source"]}
        )
        async for txn in page.auto_paging_iter():
            body = txn.to_dict()
            kind = str(body.get("type") or "")
            if kind == "payout":  # the payout's own withdrawal: not part of what it carries
                continue
            if kind in _CHARGE_TYPES:
                item_type = "charge"
            elif kind in _REFUND_TYPES:
                item_type = "refund"
            elif kind in ("adjustment", "dispute") or "dispute" in str(body.get("reporting_category") or ""):
                item_type = "dispute"
            else:
                item_type = "adjustment"
            yield PayoutItem(
                id=str(body["id"]),
                type=item_type,
                source_ref=_payment_of(_dict(body.get("source"))),
                amount=int(body.get("amount") or 0),
                fee=int(body.get("fee") or 0),
                net=int(body.get("net") or 0),
            )
