"""Authorise a payment for an order that has none in force (its earlier one was declined or voided, or
it arrived unpaid): ``POST /api/v1/checkout/orders/{id}/payments/authorize``.

Like every money step it never holds a transaction across the provider call:

1. lock the order, check it is open and owes ``amount``, and open the intent (status ``pending``). The
   partial unique index "one active intent per order" makes a second, concurrent authorisation a 409;
2. call the provider with the key ``authorize:<intent id>``; a timeout is resolved by asking the
   provider, else by repeating the call under the same key (never a second charge);
3. record the answer on the intent and its ledger row, and move the order's payment status.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.money import Money
from app.core.outbox import emit
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.payments.fees import application_fee, processing_fee
from app.payments.models import PaymentIntent
from app.payments.provider import (
    AuthorizeRequest,
    CardDetails,
    PaymentError,
    PaymentProvider,
    PaymentStatus,
    ProviderResult,
    ProviderTimeout,
)
from app.payments.services import PaymentLedger, order_payment_status
from app.stores.commerce import CommerceSettings
from app.stores.models import Store

_INACTIVE = ("declined", "failed", "voided")


class OrderAuthorization:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: Store, provider: PaymentProvider) -> None:
        self.sessions = sessions
        self.store = store
        self.provider = provider
        self.settings = CommerceSettings.of(store.settings)

    async def authorize(
        self,
        order_id: uuid.UUID,
        *,
        amount_minor: int,
        card: CardDetails | None,
        payment_method_token: str | None,
        return_url: str = "",
    ) -> tuple[PaymentIntent, ProviderResult]:
        if (card is None) == (payment_method_token is None):
            raise ValidationFailed("Give a card or a payment method token.", fields={"card": "One of the two."})
        intent = await self._open(order_id, amount_minor)
        request = AuthorizeRequest(
            amount=Money(intent.amount_minor, intent.currency),
            idempotency_key=f"authorize:{intent.id}",
            card=card,
            payment_method_token=payment_method_token,
            capture=self.settings.capture_policy == "at_checkout",
            return_url=return_url,
            description=f"{self.store.name} order",
            metadata={"order_id": str(order_id)},
        )
        try:
            result = await self._call(request)
        except PaymentError as exc:
            await self._close(intent.id, exc.code)
            if isinstance(exc, ProviderTimeout):
                raise Conflict("The payment could not be confirmed and nothing was charged; try again.") from exc
            raise ValidationFailed(f"The payment was refused: {exc.message}", fields={"card": exc.message}) from exc
        return await self._record(intent.id, result, request.idempotency_key), result

    async def _open(self, order_id: uuid.UUID, amount_minor: int) -> PaymentIntent:
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
            if order is None:
                raise NotFound("No such order.")
            if order.status == "cancelled":
                raise Conflict("This order is cancelled.")
            if order.snapshot_id is None:  # ingested from a sales channel (app/ingestion): paid in its app
                raise Conflict("This order came from a sales channel; it is paid in the channel's app, not here.")
            active = await session.scalar(
                select(PaymentIntent).where(PaymentIntent.order_id == order_id, PaymentIntent.status.not_in(_INACTIVE))
            )
            if active is not None:
                raise Conflict(f"This order already has a payment ({active.status.replace('_', ' ')}).")
            if amount_minor != order.total_minor:
                due = Money(order.total_minor, order.currency)
                raise ValidationFailed(
                    "The amount is not what the order owes.",
                    fields={"amount_minor": f"The order owes {due.amount_minor} ({due.currency})."},
                )
            amount = Money(order.total_minor, order.currency)
            intent = PaymentIntent(
                id=uuid.uuid4(),
                snapshot_id=order.snapshot_id,
                order_id=order.id,
                provider=self.provider.name,
                provider_ref="",
                status="pending",
                capture_method="automatic" if self.settings.capture_policy == "at_checkout" else "manual",
                currency=order.currency,
                amount_minor=order.total_minor,
                captured_minor=0,
                refunded_minor=0,
                processing_fee_minor=processing_fee(self.provider.name, amount).amount_minor,
                application_fee_minor=application_fee(self.settings, amount).amount_minor,
            )
            session.add(intent)
            try:
                await session.flush()
            except IntegrityError as exc:  # a concurrent authorisation opened its intent first
                raise Conflict("This order already has a payment in progress.") from exc
            session.expunge(intent)
            return intent

    async def _call(self, request: AuthorizeRequest) -> ProviderResult:
        try:
            return await self.provider.authorize(request)
        except ProviderTimeout as exc:
            if exc.provider_ref:
                try:
                    return await self.provider.get_transaction(exc.provider_ref)
                except PaymentError:
                    pass
            return await self.provider.authorize(request)  # the same key: at most one charge

    async def _close(self, intent_id: uuid.UUID, code: str) -> None:
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            intent = await session.get(PaymentIntent, intent_id)
            if intent is not None and intent.status == "pending" and not intent.provider_ref:
                intent.status = "failed"

    async def _record(self, intent_id: uuid.UUID, result: ProviderResult, key: str) -> PaymentIntent:
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.id == intent_id).with_for_update())
            assert intent is not None and intent.order_id is not None
            intent.provider_ref = result.provider_ref
            intent.card_brand, intent.card_last4 = result.brand, result.last4
            PaymentLedger(session, self.store.id).record(intent, "authorize", result, key)
            order = await session.scalar(select(Order).where(Order.id == intent.order_id).with_for_update())
            assert order is not None
            before, order.payment_status = order.payment_status, order_payment_status(intent)
            if result.status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED):
                emit(
                    session,
                    "order.payment_changed",
                    aggregate_type="order",
                    aggregate_id=order.id,
                    payload={
                        "number": order.number,
                        "operation": "authorize",
                        "amount_minor": result.captured.amount_minor,
                        "currency": intent.currency,
                        "from": before,
                        "to": order.payment_status,
                        "intent_id": str(intent.id),
                    },
                )
            await session.flush()
            session.expunge(intent)
            return intent
