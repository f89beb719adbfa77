"""Refunding what stored value paid (issue 15): to the original instrument first, or all to store credit, as the
store's setting says (``settings["stored_value"]["refund_to"]``: ``original`` | ``store_credit``).

``original``: each gift card / store credit / points spend of the order gets back up to what it paid and has not had
back (points in proportion: value → points at the spend's own rate), in the order they were made; what is left is
the card's part (the payments domain refunds it). ``store_credit``: the whole amount goes to the order's customer's
store credit. Never more than was spent: each spend's ``refunded_minor <= captured_minor`` is checked in the
refund's statement and by a constraint.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import actor_label, record
from app.core.errors import NotFound, ValidationFailed
from app.core.outbox import emit
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.payments.models import PaymentIntent
from app.payments.order_money import order_money, order_payment_axis
from app.payments.services import order_payment_status
from app.stored_value.ledger import Hold, Ledger, Refs
from app.stored_value.services import StoreCreditService
from app.stores.services import StoreService

Destination = Literal["original", "store_credit"]
DESTINATIONS: tuple[Destination, ...] = ("original", "store_credit")


def refund_to(settings: dict[str, Any] | None) -> Destination:
    value = ((settings or {}).get("stored_value") or {}).get("refund_to", "original")
    return "store_credit" if value == "store_credit" else "original"


@dataclass(frozen=True)
class RefundResult:
    refunded_minor: int  # money given back to stored value
    left_minor: int  # what stored value could not take (the card's part, for the payments domain)
    destination: Destination
    parts: list[tuple[str, int]]  # (instrument, money) per spend refunded


@dataclass(frozen=True)
class Spend:
    """One stored-value spend of an order, for the staff order page."""

    instrument: str
    label: str  # "Gift card ••••7K2Q", "Store credit", "Points (1,200)"
    paid_minor: int  # the money it paid
    back_minor: int  # the money given back to it so far


@dataclass(frozen=True)
class OrderStoredValue:
    """What stored value paid on an order and what can still go back (the order page's panel)."""

    currency: str
    customer_id: uuid.UUID | None
    spends: list[Spend]
    refundable_minor: int  # back to the original instruments: what they have left, at most what the order has left
    credited_minor: int  # already given to store credit as a refund of this order
    given_back_minor: int  # card refunds + stored value given back + store credit given, so far
    total_minor: int

    @property
    def paid_minor(self) -> int:
        return sum(s.paid_minor for s in self.spends)

    @property
    def creditable_minor(self) -> int:
        """At most what may still go to store credit: the order's total less everything given back already."""
        return max(0, self.total_minor - self.given_back_minor)


class StoredValueRefunds:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        self.ledger = Ledger(session, store_id)
        bind_store(session, store_id)

    async def refundable(self, order_id: uuid.UUID) -> int:
        """Money the order's stored-value spends can still take back."""
        holds = await self.ledger.holds_of_order(order_id)
        return sum(_value_left(h) for h in holds if h.status == "captured")

    async def of_order(self, order_id: uuid.UUID) -> OrderStoredValue:
        order = await self.session.get(Order, order_id)
        if order is None or order.store_id != self.store_id:
            raise NotFound("No such order.")
        holds = [h for h in await self.ledger.holds_of_order(order_id) if h.status == "captured"]
        spends = [await self._spend(h) for h in holds]
        money = await order_money(self.session, self.store_id, order_id)  # card refunds (in flight too) included
        return OrderStoredValue(
            currency=order.currency,
            customer_id=order.customer_id,
            spends=spends,
            refundable_minor=min(sum(_value_left(h) for h in holds), money.room_minor),
            credited_minor=money.credited_minor,
            given_back_minor=money.given_back_minor,
            total_minor=order.total_minor,
        )

    async def _spend(self, hold: Hold) -> Spend:
        account = await self.ledger.account(hold.account_id)
        if hold.instrument == "gift_card":
            label = f"Gift card ••••{account.code_last4}"
        elif hold.instrument == "store_credit":
            label = "Store credit"
        elif account.is_points:
            label = f"Points ({hold.captured_minor:,})"
        else:
            label = hold.instrument.replace("_", " ").capitalize()
        return Spend(hold.instrument, label, hold.value_minor, hold.value_minor - _value_left(hold))

    async def refund(
        self,
        order_id: uuid.UUID,
        amount_minor: int,
        reason: str,
        *,
        principal: Principal | None,
        destination: Destination | None = None,
        settings: dict[str, Any] | None = None,
        whole: bool = False,
    ) -> RefundResult:
        """``whole``: refuse (422, nothing written) when the original instruments cannot take all of the amount,
        instead of answering the rest as ``left_minor`` (the order page asks for exactly what goes back)."""
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise ValidationFailed("Enter an amount above zero.", fields={"amount_minor": "More than zero."})
        reason = " ".join(reason.split())[:200]
        if not reason:
            raise ValidationFailed("Say why.", fields={"reason": "A reason is required."})
        # one refund of an order at a time: the caps below read what was given back already
        order = await self.session.scalar(
            select(Order).where(Order.id == order_id, Order.store_id == self.store_id).with_for_update()
        )
        if order is None:
            raise NotFound("No such order.")
        if amount_minor > order.total_minor:
            raise ValidationFailed(
                "More than the order's total.", fields={"amount_minor": f"At most {order.total_minor}."}
            )
        chosen = destination or refund_to(settings)
        actor = actor_label(principal)
        parts: list[tuple[str, int]] = []
        left = amount_minor
        if chosen == "store_credit":
            if order.customer_id is None:
                raise ValidationFailed(
                    "This order has no customer to credit.", fields={"destination": "Refund to the original instead."}
                )
            room = (await order_money(self.session, self.store_id, order_id)).room_minor  # under the order's lock
            if amount_minor > room:
                raise ValidationFailed(
                    "More than is left of the order after what was given back already.",
                    fields={"amount_minor": f"At most {room}."},
                )
        else:  # back to what paid: never more than the order has left either (store credit given counts)
            room = (await order_money(self.session, self.store_id, order_id)).room_minor  # under the order's lock
            spends_left = await self.refundable(order_id) if whole else amount_minor
            if whole and amount_minor > min(room, spends_left):
                raise ValidationFailed(
                    "More than the gift cards, store credit and points paid and have not had back."
                    if spends_left <= room
                    else "More than is left of the order after what was given back already.",
                    fields={"amount_minor": f"At most {min(room, spends_left)}."},
                )
            left = min(amount_minor, room)  # what may go back to them; the rest is answered as left_minor
        if chosen == "store_credit":
            assert order.customer_id is not None
            await StoreCreditService(self.session, self.store_id).issue(
                order.customer_id, amount_minor, order.currency, f"Refund of order #{order.number}: {reason}",
                principal=principal, refs=Refs(order_id=order_id),
            )  # fmt: skip
            parts.append(("store_credit", amount_minor))
            left = 0
        else:
            for hold in await self.ledger.holds_of_order(order_id):
                if left <= 0 or hold.status != "captured":
                    continue
                value = min(left, _value_left(hold))
                if value <= 0:
                    continue
                units = hold.captured_minor * value // hold.value_minor if hold.value_minor else 0
                units = min(units, hold.captured_minor - hold.refunded_minor)
                if units <= 0:
                    continue
                await self.ledger.refund(hold.id, units, reason=reason, actor=actor, refs=Refs(order_id=order_id))
                parts.append((hold.instrument, value))
                left -= value
            left = amount_minor - sum(value for _, value in parts)
        record(
            self.session,
            principal,
            "stored_value.refunded",
            target_type="order",
            target_id=order_id,
            details={"amount_minor": amount_minor - left, "destination": chosen, "parts": parts, "reason": reason},
            store_id=self.store_id,
        )
        if amount_minor - left > 0:  # loyalty takes back the points of the money given back (app/stored_value/loyalty)
            emit(self.session, "stored_value.refunded", aggregate_type="order", aggregate_id=order_id,
                 payload={"amount_minor": amount_minor - left, "destination": chosen, "parts": parts},
                 store_id=self.store_id)  # fmt: skip
            if order.channel != "pos":  # a till's refund moves its order's payment axis itself (app/pos/refunds.py)
                await self._follow_order(order, amount_minor - left, chosen)
        return RefundResult(amount_minor - left, left, chosen, parts)

    async def _follow_order(self, order: Order, amount_minor: int, destination: Destination) -> None:
        """The order's payment badge counts what went back outside the card ("partially refunded", "refunded"
        once everything paid in any form went back; app/payments/order_money.py), with its event for the board and
        the order pages. Its operation is ``stored_value_refund``: not a card refund (receipts and loyalty follow
        ``stored_value.refunded`` for it)."""
        intent = await self.session.scalar(
            select(PaymentIntent)
            .where(
                PaymentIntent.store_id == self.store_id,
                PaymentIntent.order_id == order.id,
                PaymentIntent.status.not_in(("declined", "failed")),
            )
            .order_by(PaymentIntent.created_at.desc())
            .limit(1)
        )
        card = order_payment_status(intent) if intent is not None else order.payment_status
        before = order.payment_status
        after = order_payment_axis(card, await order_money(self.session, self.store_id, order.id))
        if after == before:
            return
        order.payment_status = after
        emit(self.session, "order.payment_changed", aggregate_type="order", aggregate_id=order.id,
             payload={"number": order.number, "operation": "stored_value_refund", "amount_minor": amount_minor,
                      "currency": order.currency, "from": before, "to": after, "destination": destination},
             store_id=self.store_id)  # fmt: skip


async def set_refund_to(
    session: AsyncSession, store_id: uuid.UUID, destination: str, *, principal: Principal | None
) -> Destination:
    if destination not in DESTINATIONS:
        raise ValidationFailed("Choose where refunds go.", fields={"refund_to": "original or store_credit"})
    await StoreService(session, store_id).set_settings(
        {"stored_value": {"refund_to": destination}}, actor=principal, action="settings.stored_value"
    )
    return "store_credit" if destination == "store_credit" else "original"


def _value_left(hold: Any) -> int:
    """Money a captured spend can still give back (points: in proportion to what was taken back already)."""
    if hold.captured_minor <= 0:
        return 0
    return int(hold.value_minor * (hold.captured_minor - hold.refunded_minor) // hold.captured_minor)


__all__ = [
    "DESTINATIONS",
    "OrderStoredValue",
    "RefundResult",
    "Spend",
    "StoredValueRefunds",
    "refund_to",
    "set_refund_to",
]
