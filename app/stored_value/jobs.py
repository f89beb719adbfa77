"""Stored value's SAQ tasks (registered in ``workers/settings.py``): tiny, they call the stored-value services.

- ``return_stored_value``: the outbox consumer of ``order.status_changed`` — an order cancelled gives what its gift
  cards, store credit and points paid back to them (the card's part is voided by the payments domain). Exactly once
  by its consumer receipt; a second run finds nothing left to give back anyway (refunds never exceed what was spent).
- ``activate_gift_cards``: the outbox consumer of ``order.placed`` / ``order.payment_changed`` — a paid order's gift
  card products become gift cards, once per order (``purchases.py``).
"""

from __future__ import annotations

import uuid
from typing import Any

from app.core.outbox import register_consumer
from app.stored_value.purchases import activate
from app.stored_value.refunds import StoredValueRefunds
from app.webhooks.receipts import exactly_once


@exactly_once
async def return_stored_value(ctx: Any, *, event: dict[str, Any]) -> str:
    payload = event.get("payload") or {}
    if not (payload.get("axis") == "order" and payload.get("to") == "cancelled"):
        return "skipped"
    store_id, order_id = uuid.UUID(event["store_id"]), uuid.UUID(event["aggregate_id"])
    async with ctx["sessions"]() as session, session.begin():
        refunds = StoredValueRefunds(session, store_id)
        amount = await refunds.refundable(order_id)
        if amount <= 0:
            return "skipped"
        result = await refunds.refund(order_id, amount, "order cancelled", principal=None, destination="original")
    return f"returned {result.refunded_minor}"


@exactly_once
async def activate_gift_cards(ctx: Any, *, event: dict[str, Any]) -> str:
    """order.placed / order.payment_changed: a paid order's gift card products become gift cards (once)."""
    async with ctx["sessions"]() as session, session.begin():
        made = await activate(session, uuid.UUID(event["store_id"]), uuid.UUID(event["aggregate_id"]))
    return f"activated {made}" if made else "skipped"


register_consumer("order.status_changed", "return_stored_value")
register_consumer("order.placed", "activate_gift_cards")
register_consumer("order.payment_changed", "activate_gift_cards")

__all__ = ["activate_gift_cards", "return_stored_value"]
