"""What the staff page and the API both need about one order's payments: the ledger, fees and the
operations, with the store's provider and settings looked up once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.rbac import principal_of
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.payments.fees import FeeBreakdown, breakdown
from app.payments.models import PaymentIntent, PaymentTransaction, RefundRequest
from app.payments.order_money import order_money
from app.payments.refunds import Refunds
from app.payments.registry import provider_of
from app.payments.services import PaymentLedger
from app.stores.access import caller_store
from app.stores.commerce import CommerceSettings
from app.stores.models import Store


@dataclass(frozen=True)
class IntentView:
    intent: PaymentIntent
    transactions: list[PaymentTransaction]
    fees: FeeBreakdown
    order_room_minor: int | None = None  # what the order has left in any form (app/payments/order_money.py)

    @property
    def refundable_minor(self) -> int:
        """The card's refund limit: its captured amount less its refunds, and never more than the order has left
        after store credit and stored value given back."""
        if self.intent.disputed_minor:  # answered on the dispute page, not by a refund
            return 0
        card = max(0, self.intent.captured_minor - self.intent.refunded_minor - self.intent.dispute_lost_minor)
        return card if self.order_room_minor is None else min(card, self.order_room_minor)

    @property
    def capturable_minor(self) -> int:
        return self.intent.amount_minor - self.intent.captured_minor if self.intent.status == "authorized" else 0

    @property
    def voidable(self) -> bool:
        return self.intent.status in ("authorized", "requires_action", "pending") and not self.intent.captured_minor


def fees_of(intent: PaymentIntent) -> FeeBreakdown:
    return breakdown(
        currency=intent.currency,
        authorized_minor=intent.amount_minor,
        captured_minor=intent.captured_minor,
        refunded_minor=intent.refunded_minor,
        processing_fee_minor=intent.processing_fee_minor,
        platform_fee_minor=intent.application_fee_minor,
        dispute_lost_minor=intent.dispute_lost_minor or 0,
        dispute_fee_minor=intent.dispute_fees_minor or 0,
    )


@dataclass(frozen=True)
class OrderPayments:
    order: Order
    intents: list[IntentView]
    refund_requests: list[RefundRequest]

    def intent(self, intent_id: uuid.UUID) -> IntentView:
        for view in self.intents:
            if view.intent.id == intent_id:
                return view
        raise NotFound("This order has no such payment.")


async def order_payments(session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> OrderPayments:
    bind_store(session, store_id)
    order = await session.get(Order, order_id)
    if order is None:
        raise NotFound("No such order.")
    ledger = await PaymentLedger(session, store_id).of_order(order_id)
    room = (await order_money(session, store_id, order_id)).room_minor if ledger else None
    requests = await session.scalars(
        select(RefundRequest).where(RefundRequest.order_id == order_id).order_by(RefundRequest.created_at.desc())
    )
    return OrderPayments(
        order=order,
        intents=[IntentView(intent, txs, fees_of(intent), room) for intent, txs in ledger],
        refund_requests=list(requests),
    )


async def store_of(request: Request[Any, Any, Any]) -> Store:
    store = caller_store(request.scope)
    if store is not None:
        return store
    async with request.app.state.sessions() as session:
        found = await session.get(Store, principal_of(request).store_id)
    if not isinstance(found, Store):
        raise NotFound("No such store.")
    return found


async def refunds_for(request: Request[Any, Any, Any]) -> Refunds:
    store = await store_of(request)
    state = request.app.state
    return Refunds(
        state.sessions,
        store.id,
        await provider_of(state.sessions, store, state.redis, state.settings),
        approval_threshold_minor=CommerceSettings.of(store.settings).refund_approval_threshold_minor,
    )
