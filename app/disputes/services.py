"""Disputes: a provider's dispute events kept as one record per dispute, the order's payment axis and the
ledger following them; the staff list.

:func:`apply_dispute_event` is what the webhook pipeline calls for ``charge.dispute.created`` /
``updated`` / ``closed``. It is idempotent and order-independent:

- every event about a payment locks that payment's intent row first, so deliveries of the same dispute
  (duplicates in parallel, or a capture or refund being recorded) queue instead of racing;
- a closed dispute (won, lost, warning_closed, prevented) never reopens; between open statuses the newest
  event (the provider's ``created``) wins, so an older event delivered late changes nothing;
- a lost dispute appends one ``dispute`` ledger row (key ``dispute:<provider id>``, unique in the database);
- the record's own times come from the provider (``opened_at`` is the dispute's ``created``), so closed
  then created, or created then closed, end in the same row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import NotFound
from app.core.outbox import emit
from app.core.tenancy import bind_store
from app.disputes.models import CLOSED_STATUSES, DISPUTE_STATUSES, OPEN_STATUSES, Dispute
from app.orders.models import Order
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.order_money import order_axis_after_card
from app.payments.provider import PaymentProvider, WebhookEvent
from app.payments.services import PaymentLedger
from app.stores.models import Store

__all__ = ["DisputeFacts", "DisputeListing", "DisputeRow", "apply_dispute_event", "dispute_facts", "money_words"]

log = structlog.get_logger(__name__)
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")


@dataclass(frozen=True)
class DisputeFacts:
    """What a Stripe-shaped dispute object says."""

    id: str
    amount_minor: int
    currency: str
    reason: str
    status: str
    created: datetime
    due_by: datetime | None
    payment_ref: str  # the PaymentIntent (pi_..., sb_...), or "" when only the charge is named
    charge_ref: str
    fee_minor: int = 0  # the provider's dispute fees in the dispute's currency (its balance transactions)


def _ref(value: Any) -> str:
    """An id that may come expanded (``{"id": ...}``) or as a string."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int | float) and value > 0 else None


def _fees(balance_transactions: Any, currency: str) -> int:
    """The fees a dispute's balance transactions charged, net of any returned, in the dispute's currency (a fee
    settled in another currency cannot be set against this payment, and is left out)."""
    if not isinstance(balance_transactions, list):
        return 0
    return sum(
        bt["fee"]
        for bt in balance_transactions
        if isinstance(bt, Mapping)
        and isinstance(bt.get("fee"), int)
        and str(bt.get("currency", "")).upper() == currency
    )


def dispute_facts(event: WebhookEvent) -> DisputeFacts:
    """The dispute in ``event.data["object"]``; a ValueError names what is missing (the event is malformed)."""
    obj = event.data.get("object")
    if not isinstance(obj, Mapping):
        raise ValueError("dispute event without an object")
    dispute_id, amount, status = obj.get("id"), obj.get("amount"), obj.get("status")
    if not isinstance(dispute_id, str) or not dispute_id:
        raise ValueError("dispute object without an id")
    if not isinstance(amount, int) or amount < 0:
        raise ValueError(f"dispute {dispute_id}: amount must be a whole number of minor units")
    if status not in DISPUTE_STATUSES:
        raise ValueError(f"dispute {dispute_id}: unknown status {status!r}")
    currency = str(obj.get("currency") or "").upper()
    if len(currency) != 3:
        raise ValueError(f"dispute {dispute_id}: no currency")
    details = obj.get("evidence_details")
    due_by = _time(details.get("due_by")) if isinstance(details, Mapping) else None
    return DisputeFacts(
        id=dispute_id,
        amount_minor=amount,
        currency=currency,
        reason=str(obj.get("reason") or "general")[:40],
        status=str(status),
        created=_time(obj.get("created")) or datetime.fromtimestamp(event.created, UTC),
        due_by=due_by,
        payment_ref=_ref(obj.get("payment_intent")),
        charge_ref=_ref(obj.get("charge")),
        fee_minor=_fees(obj.get("balance_transactions"), currency),
    )


def money_words(amount_minor: int, currency: str) -> str:
    return f"{amount_minor / 100:.2f} {currency}"


async def apply_dispute_event(
    sessions: async_sessionmaker[AsyncSession], store: Store, provider: PaymentProvider, event: WebhookEvent
) -> Dispute | None:
    """Bring the store's record of the dispute in ``event`` up to date, with the order's payment axis, the
    ledger and the outbox; None when the dispute is about no payment of this store (logged, nothing written).

    Idempotent and order-independent (see the module docstring); a malformed object raises ValueError."""
    facts = dispute_facts(event)
    at = datetime.fromtimestamp(event.created, UTC)
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        intent = await _locked_intent(session, provider.name, facts)
        if intent is None:
            log.warning("dispute.unmatched", dispute=facts.id, payment=facts.payment_ref, charge=facts.charge_ref)
            return None
        dispute = await session.scalar(
            select(Dispute).where(Dispute.provider == provider.name, Dispute.provider_dispute_id == facts.id)
        )
        opened = dispute is None
        if dispute is None:
            dispute = Dispute(
                order_id=intent.order_id,
                intent_id=intent.id,
                provider=provider.name,
                provider_dispute_id=facts.id,
                status=facts.status,
                opened_at=facts.created,
                last_event_at=at,
            )
            _take(dispute, facts)
            session.add(dispute)
        was_open = opened or dispute.is_open
        _merge(dispute, facts, at, new=opened)
        closed_now = was_open and not dispute.is_open
        await session.flush()
        await _follow(session, store.id, intent, dispute, opened=opened, closed_now=closed_now)
    return dispute


async def _locked_intent(session: AsyncSession, provider: str, facts: DisputeFacts) -> PaymentIntent | None:
    """The disputed payment, its row locked: by its PaymentIntent, else by the charge its ledger recorded."""
    stmt = select(PaymentIntent).where(PaymentIntent.provider == provider)
    if facts.payment_ref:
        stmt = stmt.where(PaymentIntent.provider_ref == facts.payment_ref)
    elif not facts.charge_ref:
        return None
    else:
        by_charge = (
            select(PaymentTransaction.intent_id)
            .where(func.jsonb_extract_path_text(PaymentTransaction.raw, "latest_charge") == facts.charge_ref)
            .limit(1)
            .scalar_subquery()
        )
        stmt = stmt.where(PaymentIntent.id == by_charge)
    intent: PaymentIntent | None = await session.scalar(stmt.with_for_update())
    return intent


def _take(dispute: Dispute, facts: DisputeFacts) -> None:
    dispute.amount_minor = facts.amount_minor
    dispute.currency = facts.currency
    dispute.fee_minor = facts.fee_minor
    dispute.reason = facts.reason
    if facts.due_by is not None:
        dispute.due_by = facts.due_by


def _merge(dispute: Dispute, facts: DisputeFacts, at: datetime, *, new: bool) -> None:
    """Apply one event: closed never reopens; closing always applies; between open statuses the newest wins."""
    if not new and not dispute.is_open:
        return
    if facts.status in CLOSED_STATUSES:
        _take(dispute, facts)
        dispute.status = facts.status
        dispute.outcome = facts.status
        dispute.closed_at = at
        dispute.last_event_at = max(dispute.last_event_at, at)
        return
    if new or at >= dispute.last_event_at:
        _take(dispute, facts)
        dispute.status = facts.status
        dispute.last_event_at = at


async def _follow(
    session: AsyncSession,
    store_id: uuid.UUID,
    intent: PaymentIntent,
    dispute: Dispute,
    *,
    opened: bool,
    closed_now: bool,
) -> None:
    """The intent's disputed amounts, the ledger row of a lost dispute, the order's payment axis, the events."""
    ledger = PaymentLedger(session, store_id)
    if dispute.status == "lost" and dispute.ledger_tx_id is None:
        tx = ledger.record_dispute_loss(
            intent,
            dispute_ref=dispute.provider_dispute_id,
            amount_minor=dispute.amount_minor,
            currency=dispute.currency,
            raw={"dispute": dispute.provider_dispute_id, "reason": dispute.reason, "outcome": "lost"},
        )
        await session.flush()
        dispute.ledger_tx_id = tx.id
    open_minor, fees_minor = (
        await session.execute(
            select(
                func.coalesce(func.sum(case((Dispute.status.in_(OPEN_STATUSES), Dispute.amount_minor))), 0),
                func.coalesce(func.sum(Dispute.fee_minor), 0),
            ).where(Dispute.intent_id == intent.id)
        )
    ).one()
    ledger.follow_disputes(intent, disputed_minor=int(open_minor), fees_minor=int(fees_minor))
    payload = {
        "dispute_id": str(dispute.id),
        "provider_dispute_id": dispute.provider_dispute_id,
        "status": dispute.status,
        "reason": dispute.reason,
        "amount_minor": dispute.amount_minor,
        "currency": dispute.currency,
    }
    if opened:
        emit(session, "dispute.opened", aggregate_type="dispute", aggregate_id=dispute.id, payload=payload)
    if closed_now:
        emit(session, "dispute.closed", aggregate_type="dispute", aggregate_id=dispute.id, payload=payload)
    if intent.order_id is None:
        return
    order = await session.scalar(select(Order).where(Order.id == intent.order_id).with_for_update())
    if order is None:
        return
    before = order.payment_status
    after = await order_axis_after_card(session, order.store_id, order, intent)  # stored value given back counts
    if before == after:
        return
    order.payment_status = after
    emit(
        session,
        "order.payment_changed",
        aggregate_type="order",
        aggregate_id=order.id,
        payload={
            "number": order.number,
            "operation": "dispute",
            "amount_minor": dispute.amount_minor if dispute.status == "lost" else 0,
            "currency": dispute.currency,
            "from": before,
            "to": after,
            "intent_id": str(intent.id),
            "dispute_id": str(dispute.id),
            "transaction_id": str(dispute.ledger_tx_id) if dispute.ledger_tx_id else None,
        },
    )


# -- the staff list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DisputeRow:
    dispute: Dispute
    order_number: int | None
    email: str


class DisputeListing:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def rows(self, *, status: str = "", limit: int = 200) -> list[DisputeRow]:
        """Open disputes first, the one due soonest on top; then closed ones, the latest first.
        ``status``: one status, or "open" / "closed"."""
        stmt = select(Dispute, Order.number, Order.email).outerjoin(Order, Order.id == Dispute.order_id)
        if status == "open":
            stmt = stmt.where(Dispute.status.in_(OPEN_STATUSES))
        elif status == "closed":
            stmt = stmt.where(Dispute.status.in_(CLOSED_STATUSES))
        elif status in DISPUTE_STATUSES:
            stmt = stmt.where(Dispute.status == status)
        is_closed = case((Dispute.status.in_(CLOSED_STATUSES), 1), else_=0)
        stmt = stmt.order_by(
            is_closed, Dispute.due_by.asc().nulls_last(), Dispute.closed_at.desc(), Dispute.opened_at.desc()
        ).limit(limit)
        return [DisputeRow(d, number, email or "") for d, number, email in (await self.session.execute(stmt)).tuples()]

    async def get(self, dispute_id: uuid.UUID) -> Dispute:
        dispute = await self.session.get(Dispute, dispute_id)
        if dispute is None:
            raise NotFound("No such dispute.")
        return dispute

    async def of_order(self, order_id: uuid.UUID) -> list[Dispute]:
        rows = await self.session.scalars(
            select(Dispute).where(Dispute.order_id == order_id).order_by(Dispute.opened_at.desc())
        )
        return list(rows)
