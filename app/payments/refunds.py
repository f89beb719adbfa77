"""Refunds with a manager's approval above the store's threshold.

Managers and owners refund directly. Anyone else asking for more than
``refund_approval_threshold_minor`` opens a refund request instead; a manager approves it (the refund is
then made, keyed like any other) or rejects it with a note. Each decision is taken once, under the
request's row lock: two managers approving at once refund once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import Conflict, NotFound, PermissionDenied, TillError, ValidationFailed
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.orders.services import Actor, clean_reason
from app.payments.models import PaymentIntent, RefundRequest
from app.payments.operations import Outcome, PaymentOperations
from app.payments.order_money import order_money
from app.payments.provider import PaymentProvider


@dataclass(frozen=True)
class RefundDecision:
    """Either the refund was made (``outcome``) or it waits for a manager (``request``)."""

    outcome: Outcome | None = None
    request: RefundRequest | None = None


def needs_approval(threshold_minor: int | None, amount_minor: int, actor: Actor) -> bool:
    return threshold_minor is not None and amount_minor > threshold_minor and not actor.role.at_least(Role.MANAGER)


class Refunds:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store_id: uuid.UUID,
        provider: PaymentProvider,
        *,
        approval_threshold_minor: int | None,
    ) -> None:
        self.sessions = sessions
        self.store_id = store_id
        self.operations = PaymentOperations(sessions, store_id, provider)
        self.threshold = approval_threshold_minor

    async def refund(
        self, order_id: uuid.UUID, intent_id: uuid.UUID, *, amount_minor: int | None, reason: str, actor: Actor
    ) -> RefundDecision:
        reason = clean_reason(reason)
        if self.threshold is None or actor.role.at_least(Role.MANAGER):
            return RefundDecision(
                outcome=await self.operations.refund(
                    order_id, intent_id, amount_minor=amount_minor, reason=reason, actor=actor
                )
            )
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store_id)
            intent = await session.scalar(
                select(PaymentIntent).where(PaymentIntent.id == intent_id, PaymentIntent.order_id == order_id)
            )
            if intent is None:
                raise NotFound("This order has no such payment.")
            refundable = intent.captured_minor - intent.refunded_minor
            # never more than the order has left after store credit and stored value given back (order_money.py)
            refundable = min(refundable, (await order_money(session, self.store_id, order_id)).room_minor)
            amount = refundable if amount_minor is None else amount_minor
            if needs_approval(self.threshold, amount, actor):
                _check_request(amount, refundable, reason)
                request = RefundRequest(
                    order_id=order_id,
                    intent_id=intent_id,
                    amount_minor=amount,
                    currency=intent.currency,
                    reason=reason,
                    requested_by=actor.label[:120],
                    requested_by_id=actor.id,
                )
                session.add(request)
                await session.flush()
                return RefundDecision(request=request)
        return RefundDecision(
            outcome=await self.operations.refund(order_id, intent_id, amount_minor=amount, reason=reason, actor=actor)
        )

    async def approve(self, request_id: uuid.UUID, *, actor: Actor, note: str = "") -> RefundRequest:
        request = await self._decide(request_id, "approved", actor=actor, note=note)
        try:
            outcome = await self.operations.refund(
                request.order_id,
                request.intent_id,
                amount_minor=request.amount_minor,
                reason=f"{request.reason} (asked by {request.requested_by}, approved by {actor.label})"[:500],
                actor=actor,
            )
        except TillError as exc:
            await self._after(request_id, status="failed", note=exc.detail)
            raise
        return await self._after(request_id, transaction_id=outcome.tx_id)

    async def reject(self, request_id: uuid.UUID, *, actor: Actor, note: str) -> RefundRequest:
        if not note.strip():
            raise ValidationFailed("Say why the refund is rejected.", fields={"note": "Required to reject."})
        return await self._decide(request_id, "rejected", actor=actor, note=note)

    async def of_order(self, order_id: uuid.UUID) -> list[RefundRequest]:
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            rows = await session.scalars(
                select(RefundRequest).where(RefundRequest.order_id == order_id).order_by(RefundRequest.created_at)
            )
            return list(rows)

    async def waiting(self) -> list[RefundRequest]:
        """Every request waiting for a manager, oldest first (the approvals queue)."""
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            rows = await session.scalars(
                select(RefundRequest).where(RefundRequest.status == "pending").order_by(RefundRequest.created_at)
            )
            return list(rows)

    async def _decide(self, request_id: uuid.UUID, status: str, *, actor: Actor, note: str) -> RefundRequest:
        if not actor.role.at_least(Role.MANAGER):
            raise PermissionDenied("Deciding on a refund needs the manager role.")
        note = clean_reason(note)
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store_id)
            request = await session.scalar(
                select(RefundRequest).where(RefundRequest.id == request_id).with_for_update()
            )
            if request is None:
                raise NotFound("No such refund request.")
            if request.status != "pending":
                raise Conflict(f"This refund request was {request.status} already.")
            request.status = status
            request.decided_by = actor.label[:120]
            request.decided_by_id = actor.id
            request.decided_at = datetime.now(UTC)
            request.decision_note = note
            await session.flush()
            session.expunge(request)
            return request

    async def _after(
        self,
        request_id: uuid.UUID,
        *,
        status: str | None = None,
        note: str = "",
        transaction_id: uuid.UUID | None = None,
    ) -> RefundRequest:
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store_id)
            request = await session.scalar(
                select(RefundRequest).where(RefundRequest.id == request_id).with_for_update()
            )
            assert request is not None
            if status is not None:
                request.status = status
                request.decision_note = note[:500]
            request.transaction_id = transaction_id
            await session.flush()
            session.expunge(request)
            return request


def _check_request(amount: int, refundable: int, reason: str) -> None:
    if refundable <= 0:
        raise Conflict("Nothing captured on this payment is left to refund.")
    if not reason:
        raise ValidationFailed("Say why the money is refunded.", fields={"reason": "Required for a refund."})
    if amount <= 0:
        raise ValidationFailed("Enter an amount to refund.", fields={"amount": "Must be more than zero."})
    if amount > refundable:
        raise ValidationFailed("That is more than is left to refund.", fields={"amount": "Too much."})
