"""What an order was paid and what has gone back, in every form: its cards (this domain), the gift cards, store
credit and points that paid part of it (app/stored_value spends), and store credit given as a refund of it.

Two uses, both off the checkout's path (placing an order gives nothing back, so it needs neither):

- **The order's payment badge** (``order_payment_axis``): the card's axis (``order_payment_status``) until stored
  value or store credit has gone back for the order; from then on "refunded" once everything paid, in any form, has
  gone back, else "partially refunded". An open or lost dispute still shows as such.
- **The order's room** (``OrderMoney.room_minor``): its total less everything given back in any form (a card refund
  in flight counted). A card refund and a store-credit refund are both capped by it, each under the order row's
  lock, so card refunds + store credit + stored value given back never exceed the order's total.

``order_money`` reads all of it in one statement.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import Order
from app.payments.models import PaymentIntent
from app.payments.services import order_payment_status
from app.stored_value.models import StoredValueAccount, StoredValueEntry, StoredValueHold

# The badges a card can show whatever stored value did: a dispute is answered on its own page.
_DISPUTE_AXES = ("disputed", "charged_back")


@dataclass(frozen=True)
class OrderMoney:
    """Minor units of the order's currency."""

    total_minor: int  # the order's total
    card_paid_minor: int  # captured on its cards, plus what an open authorisation will still capture
    card_refunded_minor: int  # refunded from its cards (recorded)
    card_refunding_minor: int  # a card refund claimed and not yet recorded (app/payments/operations.py)
    card_charged_back_minor: int  # taken back by lost disputes
    stored_value_paid_minor: int  # what its captured gift card / store credit / points spends paid
    stored_value_back_minor: int  # given back to those spends
    credited_minor: int  # given to the customer's store credit as a refund of this order

    @property
    def paid_minor(self) -> int:
        return self.card_paid_minor + self.stored_value_paid_minor

    @property
    def given_back_minor(self) -> int:
        """Everything gone (or going) back to the customer for this order, in any form."""
        return (
            self.card_refunded_minor
            + self.card_refunding_minor
            + self.card_charged_back_minor
            + self.stored_value_back_minor
            + self.credited_minor
        )

    @property
    def room_minor(self) -> int:
        """At most what may still go back, in any form: the order's total less everything given back already."""
        return max(0, self.total_minor - self.given_back_minor)

    @property
    def outside_card_minor(self) -> int:
        """Given back other than through a card: to gift cards / store credit / points, or as store credit."""
        return self.stored_value_back_minor + self.credited_minor


def order_payment_axis(card_axis: str, money: OrderMoney) -> str:
    """The order's payment badge from its card's axis and what went back outside the card."""
    if money.outside_card_minor <= 0 or card_axis in _DISPUTE_AXES:
        return card_axis
    back = money.card_refunded_minor + money.card_charged_back_minor + money.outside_card_minor
    return "refunded" if back >= money.paid_minor else "partially_refunded"


# The badges an order has once something went back outside its card (``order_payment_axis``): only then can that
# money change the badge a card's change gives, so only then is it read.
_AFTER_OUTSIDE_REFUND = ("partially_refunded", "refunded", *_DISPUTE_AXES)


async def order_axis_after_card(session: AsyncSession, store_id: uuid.UUID, order: Order, intent: PaymentIntent) -> str:
    """The order's payment badge after a change on its card (capture, refund, void, a webhook, a dispute): the
    card's axis, with what went back outside the card counted. An order whose badge is none of the refunded or
    disputed ones has had nothing back outside its card (a stored-value refund sets one), so it costs no
    statement."""
    card = order_payment_status(intent)
    if order.payment_status not in _AFTER_OUTSIDE_REFUND:
        return card
    await session.flush()  # the intent's new totals
    return order_payment_axis(card, await order_money(session, store_id, order.id))


async def order_money(session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> OrderMoney:
    """One statement. Reads committed rows (under READ COMMITTED, fresh after the caller locked the order row)."""
    intents = select(PaymentIntent).where(PaymentIntent.store_id == store_id, PaymentIntent.order_id == order_id)
    card = intents.with_only_columns(
        func.coalesce(
            func.sum(
                PaymentIntent.captured_minor
                + case(
                    (PaymentIntent.status == "authorized", PaymentIntent.amount_minor - PaymentIntent.captured_minor),
                    else_=0,
                )
            ),
            0,
        ),
        func.coalesce(func.sum(PaymentIntent.refunded_minor), 0),
        func.coalesce(
            func.sum(case((PaymentIntent.pending_operation == "refund", PaymentIntent.pending_amount_minor), else_=0)),
            0,
        ),
        func.coalesce(func.sum(PaymentIntent.dispute_lost_minor), 0),
    ).subquery()
    hold = StoredValueHold
    back = hold.value_minor - (
        hold.value_minor * (hold.captured_minor - hold.refunded_minor) // hold.captured_minor
    )  # as app/stored_value/refunds.py's _value_left: points give back in proportion
    spends = (
        select(
            func.coalesce(func.sum(hold.value_minor), 0),
            func.coalesce(func.sum(case((hold.captured_minor > 0, back), else_=0)), 0),
        )
        .where(hold.store_id == store_id, hold.order_id == order_id, hold.status == "captured")
        .subquery()
    )
    credited = (
        select(func.coalesce(func.sum(StoredValueEntry.delta_minor), 0))
        .join(StoredValueAccount, StoredValueAccount.id == StoredValueEntry.account_id)
        .where(
            StoredValueEntry.store_id == store_id,
            StoredValueEntry.order_id == order_id,
            and_(StoredValueEntry.kind == "issue", StoredValueAccount.kind == "store_credit"),
        )
        .scalar_subquery()
    )
    row = (
        await session.execute(
            select(Order.total_minor, *card.c, *spends.c, credited)
            .select_from(Order)
            .join(card, true())  # one row each: no join condition
            .join(spends, true())
            .where(Order.id == order_id, Order.store_id == store_id)
        )
    ).one_or_none()
    if row is None:
        return OrderMoney(0, 0, 0, 0, 0, 0, 0, 0)
    return OrderMoney(*(int(value or 0) for value in row))


__all__ = ["OrderMoney", "order_axis_after_card", "order_money", "order_payment_axis"]
