"""Bring a payment intent up to what the provider says now (webhooks; anything that changed outside Till).

A provider event is a hint, not a fact to apply: whatever its type, :func:`sync_intent` re-reads the payment
(``get_transaction``) and appends ledger rows for the differences: a capture made in the Stripe dashboard, a
refund made there, a cancellation. So events in any order, or twice, end in the same state: the second
finds nothing left to record.

- Under the intent's row lock (one short transaction after the provider call, never across it).
- An intent with an operation in flight (``pending_operation``) is left alone: :class:`PaymentBusy` asks the
  caller to try again later (the operation records its own answer; the retry records what is left).
- A payment a checkout is still waiting for (a delayed success, a 3-D Secure challenge) is the saga's to
  finish: it is resumed (:meth:`CheckoutSaga.resume`), which places the order or compensates.
- The order's payment status follows, with its ``order.payment_changed`` event (as operations.py does).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Literal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.money import Money
from app.core.outbox import emit
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.payments.models import PaymentIntent
from app.payments.order_money import order_axis_after_card
from app.payments.provider import PaymentProvider, PaymentStatus, ProviderResult
from app.payments.services import PaymentLedger, TxKind, order_payment_status

log = structlog.get_logger(__name__)

SYNC_ACTOR = "provider"
SYNC_REASON = "changed at the provider"


class PaymentBusy(Exception):
    """An operation on this payment is in flight: sync again once it is recorded."""


@dataclass(frozen=True)
class SyncOutcome:
    state: Literal["synced", "unchanged", "resumed", "unknown"]
    detail: str
    intent_id: uuid.UUID | None = None
    payment_status: str = ""


def sync_steps(intent: PaymentIntent, result: ProviderResult) -> list[tuple[TxKind, ProviderResult]]:
    """The ledger rows that bring ``intent`` up to ``result``: a capture, then a refund, for the money that
    moved; else one row for a status change alone (a void, a failure, an action). Totals never go down."""
    currency = result.amount.currency
    steps: list[tuple[TxKind, ProviderResult]] = []
    captured, refunded = result.captured.amount_minor, result.refunded.amount_minor
    refund_follows = refunded > intent.refunded_minor
    if captured > intent.captured_minor:
        # the capture as it stood before the refund that follows it (if any)
        interim = (
            dataclasses.replace(result, status=PaymentStatus.CAPTURED, refunded=Money(intent.refunded_minor, currency))
            if refund_follows
            else result
        )
        steps.append(("capture", interim))
    if refund_follows and captured >= refunded:
        steps.append(("refund", result))
    if not steps and str(result.status) != intent.status:
        steps.append(("void" if result.status == PaymentStatus.VOIDED else "action", result))
    return steps


async def sync_intent(
    sessions: async_sessionmaker[AsyncSession],
    store_id: uuid.UUID,
    provider: PaymentProvider,
    provider_ref: str,
    *,
    actor: str = SYNC_ACTOR,
) -> SyncOutcome:
    """Record what changed on the provider's side of one payment. Idempotent; see the module docstring.
    ``actor`` names who noticed (``provider``: a webhook; ``poller``, ``reconciliation``) on the ledger rows and
    the order's event."""
    async with sessions() as session:
        bind_store(session, store_id)
        intent = await _intent(session, provider.name, provider_ref)
        if intent is None:
            return SyncOutcome("unknown", f"no {provider.name} payment {provider_ref} in this store")
        intent_id, order_id = intent.id, intent.order_id
        waiting = await _waiting_attempt(session, intent.id) if order_id is None else None
    if waiting is not None:
        return await _resume(sessions, store_id, provider, waiting, intent_id)

    result = await provider.get_transaction(provider_ref)  # no transaction open across the call

    async with sessions() as session, session.begin():
        bind_store(session, store_id)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.id == intent_id).with_for_update())
        assert intent is not None
        if intent.pending_operation is not None:
            raise PaymentBusy(f"a {intent.pending_operation} of payment {provider_ref} is in flight")
        steps = sync_steps(intent, result)
        if not steps:
            return SyncOutcome(
                "unchanged", f"payment {provider_ref} already {intent.status}", intent.id, order_payment_status(intent)
            )
        before = order_payment_status(intent)
        captured_before, refunded_before = intent.captured_minor, intent.refunded_minor
        ledger = PaymentLedger(session, store_id)
        last_tx = None
        for kind, step in steps:
            total = step.refunded if kind == "refund" else step.captured
            key = f"sync:{provider_ref}:{kind}:{total.amount_minor if kind in ('capture', 'refund') else step.status}"
            last_tx = ledger.record(intent, kind, step, key, reason=SYNC_REASON, actor=actor)
        await session.flush()
        kinds = "+".join(kind for kind, _ in steps)
        if intent.order_id is not None and last_tx is not None:
            await _follow_order(
                session,
                intent,
                before,
                operation=kinds,
                moved=(intent.captured_minor - captured_before) or (intent.refunded_minor - refunded_before),
                transaction_id=last_tx.id,
                source=actor,
            )
        log.info(
            "payments.synced",
            store_id=str(store_id),
            payment_intent_id=str(intent.id),
            steps=kinds,
            status=intent.status,
        )
        return SyncOutcome(
            "synced",
            f"recorded {kinds}: payment {provider_ref} is {intent.status}",
            intent.id,
            order_payment_status(intent),
        )


async def _intent(session: AsyncSession, provider: str, provider_ref: str) -> PaymentIntent | None:
    intent: PaymentIntent | None = await session.scalar(
        select(PaymentIntent)
        .where(PaymentIntent.provider == provider, PaymentIntent.provider_ref == provider_ref)
        .order_by(PaymentIntent.created_at.desc())
        .limit(1)
    )
    return intent


async def _waiting_attempt(session: AsyncSession, intent_id: uuid.UUID) -> uuid.UUID | None:
    from app.checkout.models import CheckoutAttempt
    from app.checkout.saga import TERMINAL

    attempt_id: uuid.UUID | None = await session.scalar(
        select(CheckoutAttempt.id).where(
            CheckoutAttempt.payment_intent_id == intent_id, CheckoutAttempt.state.not_in(TERMINAL)
        )
    )
    return attempt_id


async def _resume(
    sessions: async_sessionmaker[AsyncSession],
    store_id: uuid.UUID,
    provider: PaymentProvider,
    attempt_id: uuid.UUID,
    intent_id: uuid.UUID,
) -> SyncOutcome:
    """The checkout waits for this payment: let its saga finish (it records the payment and places the order)."""
    from app.checkout.saga import CheckoutSaga  # checkout depends on payments, not the other way at import
    from app.stores.models import Store

    async with sessions() as session:
        store = await session.get(Store, store_id)
    assert store is not None
    outcome = await CheckoutSaga(sessions, store, provider).resume(attempt_id)
    log.info("payments.checkout_resumed", store_id=str(store_id), attempt_id=str(attempt_id), state=outcome.state)
    return SyncOutcome("resumed", f"checkout attempt {attempt_id} is {outcome.state}", intent_id)


async def _follow_order(
    session: AsyncSession,
    intent: PaymentIntent,
    before: str,
    *,
    operation: str,
    moved: int,
    transaction_id: uuid.UUID,
    source: str = SYNC_ACTOR,
) -> None:
    order = await session.scalar(select(Order).where(Order.id == intent.order_id).with_for_update())
    if order is None:
        return
    order.payment_status = await order_axis_after_card(session, order.store_id, order, intent)
    emit(
        session,
        "order.payment_changed",
        aggregate_type="order",
        aggregate_id=order.id,
        payload={
            "number": order.number,
            "operation": operation,
            "amount_minor": moved,
            "currency": intent.currency,
            "from": before,
            "to": order.payment_status,
            "intent_id": str(intent.id),
            "transaction_id": str(transaction_id),
            "source": source,
        },
    )
