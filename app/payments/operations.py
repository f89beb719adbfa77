"""Capture, void and refund a payment, once each, whoever clicks and however the provider answers.

Every operation runs in three steps and never holds a transaction or a row lock across the provider
call (the architecture's "short transactions"):

1. **Claim** (one short transaction, the intent's row locked): check the state and the amount, then
   mark the operation in flight on the intent (``pending_operation``, its amount, the id its ledger row
   will get). A second operation on the same intent now gets a 409 until the first is recorded, and the
   database's CHECKs count the amount in flight against the limits (migration 0008).
2. **Call** the provider with the key ``tx:<ledger row id>``: a retry reaches the same provider result.
3. **Record** (another short transaction): append the ledger row, bring the intent up to the provider's
   answer, clear the claim, and move the order's payment status with its outbox event.

An unknown outcome (a timeout) is resolved by asking the provider (``get_transaction``), never by
guessing: when the money moved it is recorded; when it did not, the same call is repeated with the same
key (the provider applies it at most once); when the provider still cannot say, the claim stays and the
worker's ``settle_payment_operations`` job finishes it later (:meth:`PaymentOperations.settle`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.money import Money
from app.core.outbox import emit
from app.core.tenancy import bind_store, system_scope
from app.orders.models import Order
from app.orders.services import Actor, clean_reason
from app.payments.models import PaymentIntent
from app.payments.order_money import OrderMoney, order_axis_after_card, order_money
from app.payments.provider import (
    CaptureRequest,
    PaymentError,
    PaymentProvider,
    PaymentStatus,
    ProviderResult,
    ProviderTimeout,
    RefundRequest,
    VoidRequest,
)
from app.payments.services import PaymentLedger, order_payment_status

Operation = Literal["capture", "void", "refund"]
# A claim this old is the worker's to finish (its web request died or the provider never answered).
STALE_CLAIM = timedelta(minutes=1)
_VOIDABLE = ("authorized", "requires_action", "pending")


@dataclass(frozen=True)
class Claim:
    store_id: uuid.UUID
    order_id: uuid.UUID
    intent_id: uuid.UUID
    operation: Operation
    amount: Money
    provider_ref: str
    tx_id: uuid.UUID
    captured_before: int
    refunded_before: int
    reason: str
    actor: str

    @property
    def key(self) -> str:
        """The provider's idempotency key, derived from the ledger row this operation will write."""
        return f"tx:{self.tx_id}"


@dataclass(frozen=True)
class Outcome:
    """``done``: recorded (see the intent); ``pending``: the provider could not say yet, the worker finishes it."""

    state: Literal["done", "pending"]
    intent_id: uuid.UUID
    tx_id: uuid.UUID
    payment_status: str


def _money_words(amount: Money) -> str:
    return f"{amount.as_decimal():.2f} {amount.currency}"


class PaymentOperations:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], store_id: uuid.UUID, provider: PaymentProvider
    ) -> None:
        self.sessions = sessions
        self.store_id = store_id
        self.provider = provider

    async def capture(
        self, order_id: uuid.UUID, intent_id: uuid.UUID, *, amount_minor: int | None, actor: Actor
    ) -> Outcome:
        """Capture ``amount_minor`` (all that is left when None) of an authorisation; the provider releases the
        rest, so a payment is captured once."""
        claim = await self._claim(order_id, intent_id, "capture", amount_minor, reason="", actor=actor)
        return await self._run(claim)

    async def void(self, order_id: uuid.UUID, intent_id: uuid.UUID, *, reason: str, actor: Actor) -> Outcome:
        claim = await self._claim(order_id, intent_id, "void", None, reason=reason, actor=actor)
        return await self._run(claim)

    async def refund(
        self, order_id: uuid.UUID, intent_id: uuid.UUID, *, amount_minor: int | None, reason: str, actor: Actor
    ) -> Outcome:
        """Refund part or all (None) of what is captured and not yet refunded; several refunds may follow."""
        claim = await self._claim(order_id, intent_id, "refund", amount_minor, reason=reason, actor=actor)
        return await self._run(claim)

    async def settle(self, intent_id: uuid.UUID) -> Outcome | None:
        """Finish a claim left in flight (the worker's job): ask the provider, record or repeat the call."""
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            intent = await session.get(PaymentIntent, intent_id)
            if intent is None or intent.pending_operation is None or intent.pending_tx_id is None:
                return None
            assert intent.order_id is not None
            claim = Claim(
                store_id=self.store_id,
                order_id=intent.order_id,
                intent_id=intent.id,
                operation=_operation(intent.pending_operation),
                amount=Money(intent.pending_amount_minor, intent.currency),
                provider_ref=intent.provider_ref,
                tx_id=intent.pending_tx_id,
                captured_before=intent.captured_minor,
                refunded_before=intent.refunded_minor,
                reason="",
                actor="system",
            )
        return await self._resolve(claim)

    # -- the three steps -----------------------------------------------------------------------------

    async def _claim(
        self,
        order_id: uuid.UUID,
        intent_id: uuid.UUID,
        operation: Operation,
        amount_minor: int | None,
        *,
        reason: str,
        actor: Actor,
    ) -> Claim:
        reason = clean_reason(reason)
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store_id)
            intent = await session.scalar(
                select(PaymentIntent)
                .where(PaymentIntent.id == intent_id, PaymentIntent.order_id == order_id)
                .with_for_update()
            )
            if intent is None:
                raise NotFound("This order has no such payment.")
            if intent.pending_operation is not None:
                pending = Money(intent.pending_amount_minor, intent.currency)
                raise Conflict(
                    f"A {intent.pending_operation} of {_money_words(pending)} on this payment is still in progress; "
                    "wait for it to finish, then look again."
                )
            money = None
            if operation == "refund":  # the order's room, under the lock the store-credit refund takes too
                await session.scalar(select(Order.id).where(Order.id == order_id).with_for_update())
                money = await order_money(session, self.store_id, order_id)
            amount = _checked_amount(intent, operation, amount_minor, reason, money)
            tx_id = uuid.uuid4()
            intent.pending_operation = operation
            intent.pending_amount_minor = amount
            intent.pending_tx_id = tx_id
            intent.pending_since = datetime.now(UTC)
            claim = Claim(
                store_id=self.store_id,
                order_id=order_id,
                intent_id=intent.id,
                operation=operation,
                amount=Money(amount, intent.currency),
                provider_ref=intent.provider_ref,
                tx_id=tx_id,
                captured_before=intent.captured_minor,
                refunded_before=intent.refunded_minor,
                reason=reason,
                actor=actor.label,
            )
        return claim

    async def _run(self, claim: Claim) -> Outcome:
        try:
            result = await self._call(claim)
        except ProviderTimeout:
            return await self._resolve(claim)
        except PaymentError as exc:
            await self._release(claim, exc)
            raise Conflict(f"The provider refused the {claim.operation}: {exc.message}") from exc
        return await self._record(claim, result)

    async def _resolve(self, claim: Claim) -> Outcome:
        """After a timeout: record what the provider says happened, else repeat the call under the same key."""
        try:
            seen = await self.provider.get_transaction(claim.provider_ref)
            result = seen if _happened(claim, seen) else await self._call(claim)
        except ProviderTimeout:
            return await self._outcome(claim, "pending")
        except PaymentError as exc:
            await self._release(claim, exc)
            raise Conflict(f"The provider refused the {claim.operation}: {exc.message}") from exc
        return await self._record(claim, result)

    async def _call(self, claim: Claim) -> ProviderResult:
        if claim.operation == "capture":
            return await self.provider.capture(CaptureRequest(claim.provider_ref, claim.amount, claim.key))
        if claim.operation == "refund":
            return await self.provider.refund(RefundRequest(claim.provider_ref, claim.amount, claim.key, claim.reason))
        return await self.provider.void(VoidRequest(claim.provider_ref, claim.key))

    async def _record(self, claim: Claim, result: ProviderResult) -> Outcome:
        async with self.sessions() as session, session.begin():
            intent = await self._locked(session, claim)
            if intent is None:  # already recorded (by the worker, or a racing settle)
                return await self._current(session, claim)
            before = order_payment_status(intent)
            PaymentLedger(session, self.store_id).record(
                intent, claim.operation, result, claim.key, tx_id=claim.tx_id, reason=claim.reason, actor=claim.actor
            )
            _clear(intent)
            status = await self._follow_order(session, claim, intent, before)
            return Outcome("done", intent.id, claim.tx_id, status)

    async def _release(self, claim: Claim, error: PaymentError) -> None:
        """The provider refused: record the refusal, free the intent for the next operation."""
        async with self.sessions() as session, session.begin():
            intent = await self._locked(session, claim)
            if intent is None:
                return
            PaymentLedger(session, self.store_id).record_failure(
                intent,
                claim.operation,
                tx_id=claim.tx_id,
                key=claim.key,
                amount_minor=claim.amount.amount_minor,
                code=error.code,
                message=error.message,
                reason=claim.reason,
                actor=claim.actor,
            )
            _clear(intent)

    async def _locked(self, session: AsyncSession, claim: Claim) -> PaymentIntent | None:
        """The intent, locked, if this claim is still the one in flight on it."""
        bind_store(session, self.store_id)
        intent = await session.scalar(
            select(PaymentIntent).where(PaymentIntent.id == claim.intent_id).with_for_update()
        )
        if intent is None or intent.pending_tx_id != claim.tx_id:
            return None
        return intent

    async def _follow_order(self, session: AsyncSession, claim: Claim, intent: PaymentIntent, before: str) -> str:
        """The order's payment axis follows the ledger (and what went back outside the card); its event reaches
        the board and the order pages. Answers the order's new payment status."""
        order = await session.scalar(select(Order).where(Order.id == claim.order_id).with_for_update())
        if order is None:
            return order_payment_status(intent)
        order.payment_status = await order_axis_after_card(session, self.store_id, order, intent)
        moved = {
            "capture": intent.captured_minor - claim.captured_before,
            "refund": intent.refunded_minor - claim.refunded_before,
        }.get(claim.operation, 0)
        emit(
            session,
            "order.payment_changed",
            aggregate_type="order",
            aggregate_id=order.id,
            payload={
                "number": order.number,
                "operation": claim.operation,
                "amount_minor": moved,
                "currency": intent.currency,
                "from": before,
                "to": order.payment_status,
                "intent_id": str(intent.id),
                "transaction_id": str(claim.tx_id),
            },
        )
        return order.payment_status

    async def _current(self, session: AsyncSession, claim: Claim) -> Outcome:
        bind_store(session, self.store_id)
        intent = await session.get(PaymentIntent, claim.intent_id)
        assert intent is not None
        order = await session.get(Order, claim.order_id)
        status = order.payment_status if order is not None else order_payment_status(intent)
        return Outcome("done", intent.id, claim.tx_id, status)

    async def _outcome(self, claim: Claim, state: Literal["done", "pending"]) -> Outcome:
        async with self.sessions() as session:
            current = await self._current(session, claim)
        return Outcome(state, current.intent_id, claim.tx_id, current.payment_status)


def _operation(value: str) -> Operation:
    if value == "capture":
        return "capture"
    if value == "refund":
        return "refund"
    return "void"


def _clear(intent: PaymentIntent) -> None:
    intent.pending_operation = None
    intent.pending_amount_minor = 0
    intent.pending_tx_id = None
    intent.pending_since = None


def _happened(claim: Claim, seen: ProviderResult) -> bool:
    """Whether the provider's current state shows this claim's money moved (only this claim can be in flight)."""
    if claim.operation == "capture":
        return seen.captured.amount_minor > claim.captured_before
    if claim.operation == "refund":
        return seen.refunded.amount_minor >= claim.refunded_before + claim.amount.amount_minor
    return seen.status == PaymentStatus.VOIDED


def _checked_amount(
    intent: PaymentIntent, operation: Operation, amount_minor: int | None, reason: str, money: OrderMoney | None = None
) -> int:
    """The amount the operation will move; a 409 when the payment's state does not allow it, a 422 for the amount.
    A refund is capped by the card (captured less refunded) and by the order (``money``: its total less what went
    back in any form — card refunds, gift cards / store credit / points given back, store credit given)."""
    if operation == "capture":
        if intent.status != "authorized":
            raise Conflict(f"Only an authorised payment can be captured; this one is {_words(intent.status)}.")
        return _within(amount_minor, intent.amount_minor - intent.captured_minor, intent.currency, "capture")
    if operation == "void":
        if intent.status not in _VOIDABLE or intent.captured_minor:
            raise Conflict(
                f"Only an uncaptured payment can be voided; this one is {_words(intent.status)}. Refund it instead."
            )
        return intent.amount_minor
    if intent.disputed_minor:
        raise Conflict("A dispute is open on this payment: answer it on its dispute page instead of refunding.")
    refundable = intent.captured_minor - intent.refunded_minor - intent.dispute_lost_minor  # a lost dispute took it
    if refundable <= 0:
        raise Conflict("Nothing captured on this payment is left to refund.")
    if money is not None and money.room_minor < refundable:
        return _within_order(amount_minor, refundable, money, intent.currency, reason)
    if not reason:
        raise ValidationFailed("Say why the money is refunded.", fields={"reason": "Required for a refund."})
    return _within(amount_minor, refundable, intent.currency, "refund")


def _within_order(amount_minor: int | None, refundable: int, money: OrderMoney, currency: str, reason: str) -> int:
    """A card refund the order's room caps below the card's own limit: 409 when nothing is left, 422 over it."""
    room = money.room_minor
    why = (
        f"(its total {_money_words(Money(money.total_minor, currency))}; "
        f"gone back already: {_gone_back_words(money, currency)})"
    )
    if room <= 0:
        raise Conflict(f"Nothing more can go back on this order {why}.")
    if not reason:
        raise ValidationFailed("Say why the money is refunded.", fields={"reason": "Required for a refund."})
    if amount_minor is not None and amount_minor > room:
        most = _money_words(Money(room, currency))
        raise ValidationFailed(
            f"At most {most} can still go back on this order {why}.", fields={"amount": f"At most {most}."}
        )
    return _within(amount_minor, min(refundable, room), currency, "refund")


def _gone_back_words(money: OrderMoney, currency: str) -> str:
    """What went back, by where: "18.00 EUR as store credit, 4.00 EUR to the gift cards, store credit and points
    that paid"."""
    parts = [
        (money.card_refunded_minor + money.card_refunding_minor, "to the card"),
        (money.card_charged_back_minor, "by a chargeback"),
        (money.stored_value_back_minor, "to the gift cards, store credit and points that paid"),
        (money.credited_minor, "as store credit"),
    ]
    return ", ".join(f"{_money_words(Money(amount, currency))} {where}" for amount, where in parts if amount > 0)


def _within(amount_minor: int | None, limit: int, currency: str, operation: str) -> int:
    if amount_minor is None:
        return limit
    if amount_minor <= 0:
        raise ValidationFailed(f"Enter an amount to {operation}.", fields={"amount": "Must be more than zero."})
    if amount_minor > limit:
        most = _money_words(Money(limit, currency))
        raise ValidationFailed(
            f"At most {most} can be {operation}d on this payment.", fields={"amount": f"At most {most}."}
        )
    return amount_minor


def _words(status: str) -> str:
    return status.replace("_", " ")


async def stale_claims(
    session: AsyncSession, *, older_than: timedelta = STALE_CLAIM
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(store id, intent id) of every operation left in flight longer than ``older_than`` (the worker's list,
    across every store)."""
    system_scope(session)
    rows = await session.execute(
        select(PaymentIntent.store_id, PaymentIntent.id).where(
            PaymentIntent.pending_operation.is_not(None),
            PaymentIntent.pending_since < datetime.now(UTC) - older_than,
        )
    )
    return [(store_id, intent_id) for store_id, intent_id in rows.tuples()]
