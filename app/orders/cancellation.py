"""Cancelling an order: the money goes back through the provider and the stock goes back on the shelf.

Three steps, never holding a transaction or a row lock across the provider call:
  1. lock the order, check the change (manager, a reason, nothing fulfilled yet), read its payment;
  2. void an authorisation or refund a capture, keyed by the order, so a retry or a second click
     reaches the same provider result instead of giving money back twice;
  3. lock the order again and, unless someone finished first, record the payment, restock every line,
     and write the status change, its history row and its event.
A crash between 2 and 3 leaves the money returned and the order open; cancelling again finishes it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import Conflict, ValidationFailed
from app.inventory.services import InventoryService
from app.orders.models import Order
from app.orders.services import Actor, OrderService, clean_reason
from app.orders.states import CANCELLED, Axis
from app.payments.models import PaymentIntent
from app.payments.order_money import order_axis_after_card, order_money
from app.payments.provider import PaymentError, PaymentProvider, ProviderResult
from app.payments.services import PaymentLedger, TxKind, give_money_back

_SETTLED = ("declined", "failed", "voided")


class OrderCancellation:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], store_id: uuid.UUID, provider: PaymentProvider
    ) -> None:
        self.sessions = sessions
        self.store_id = store_id
        self.provider = provider

    async def cancel(self, order_id: uuid.UUID, *, actor: Actor, reason: str) -> tuple[Order, bool]:
        """The cancelled order and whether this call cancelled it (False: it already was)."""
        reason = clean_reason(reason)
        if not reason:
            raise ValidationFailed("Say why the order is cancelled.", fields={"reason": "Required to cancel."})
        async with self.sessions() as session, session.begin():
            orders = OrderService(session, self.store_id)
            order = await orders.locked(order_id)
            if order.status == CANCELLED:
                return order, False
            orders.check(order, Axis.ORDER, CANCELLED, actor)
            if order.channel == "pos":
                # Its money may be in a shift's drawer: a refund at the till keeps the drawer and the report right.
                raise Conflict("This is a counter sale: refund it at the till by its receipt number instead.")
            if order.fulfilment_status != "unfulfilled":
                raise Conflict("Part of this order was handed over already: record a return instead.")
            intent = await self._open_intent(session, order.id)
            if intent is not None and intent.disputed_minor:
                raise Conflict("A dispute is open on this payment: answer it on its dispute page before cancelling.")
            # what the order has left after store credit and stored value given back (app/payments/order_money.py)
            room = (await order_money(session, self.store_id, order.id)).room_minor if intent is not None else 0
        reversal = await self._give_money_back(order, intent, reason, room) if intent is not None else None
        async with self.sessions() as session, session.begin():
            orders = OrderService(session, self.store_id)
            order = await orders.locked(order_id)
            if order.status == CANCELLED:  # a concurrent cancel finished first (same provider keys)
                return order, False
            if reversal is not None and intent is not None:
                kind, key, result = reversal
                current = await session.get(PaymentIntent, intent.id)
                assert current is not None
                PaymentLedger(session, self.store_id).record(current, kind, result, key)
                order.payment_status = await order_axis_after_card(session, self.store_id, order, current)
            inventory = InventoryService(session, self.store_id)
            for line in order.lines:
                if line.variant_id is not None:
                    await inventory.adjust(
                        line.variant_id,
                        line.quantity,
                        "cancelled",
                        note=f"Order #{order.number} cancelled",
                        actor_id=actor.id if actor.source == "staff" else None,
                    )
            orders.record(order, Axis.ORDER, CANCELLED, actor=actor, reason=reason)
            await session.flush()
            return order, True

    async def _open_intent(self, session: AsyncSession, order_id: uuid.UUID) -> PaymentIntent | None:
        intent: PaymentIntent | None = await session.scalar(
            select(PaymentIntent).where(PaymentIntent.order_id == order_id, PaymentIntent.status.not_in(_SETTLED))
        )
        return intent

    async def _give_money_back(
        self, order: Order, intent: PaymentIntent, reason: str, room_minor: int
    ) -> tuple[TxKind, str, ProviderResult] | None:
        # What a lost dispute took back has left the store already: only the rest is given back, and never more
        # than the order has left (store credit or stored value given back for it count).
        kept_minor = intent.captured_minor - (intent.dispute_lost_minor or 0)
        kept_minor = min(kept_minor, intent.refunded_minor + room_minor)
        if kept_minor <= intent.refunded_minor and intent.status != "authorized":
            return None  # nothing held
        try:
            return await give_money_back(
                self.provider,
                provider_ref=intent.provider_ref,
                currency=intent.currency,
                captured_minor=kept_minor,
                refunded_minor=intent.refunded_minor,
                key_prefix=f"order:{order.id}:cancel",
                reason=reason,
            )
        except PaymentError as exc:
            raise Conflict(f"The payment could not be given back ({exc.message}); the order is still open.") from exc
