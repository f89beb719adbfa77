"""``POST /pos/api/refunds``: money (and goods) back on a past POS sale, found by its receipt (order) number.

- What: the lines that come back (restocked, ``return`` movements; their value is their share of what the sale
  charged for them), an amount, or (neither) everything left. Never more than is left of the sale.
- How: ``to: "cash"`` from the shift's drawer (a negative cash tender in the current shift), or ``"original"``:
  back to the cards first (a sale paid by several cards: each gets back at most what is left of its payment, in
  the order they paid), through the payment provider (app/payments/operations.py: the same claim, call and
  record as the staff order page's refund, keyed by the ledger row), then cash for the rest.
- Over the store's refund approval threshold, a cashier or staff member needs a manager's PIN.
- The money moves once (invariant 2): the tablet sends an ``Idempotency-Key``; the refund row is written
  ``pending`` before a card refund (its amount counts against what is left, so two refunds of one sale at once
  cannot give back more than it took), and only once the provider has answered are its tenders, restocking and
  audit row written (``done``) — or ``failed``, with nothing moved.
- A refund left ``pending`` (the process died during the provider call) is finished by the worker
  (``resume_stale_refund``, every minute): once the payments ledger has settled each card's call, the refund is
  ``done`` with the parts the ledger shows went back, or ``failed`` when none did.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import audit
from app.core.errors import Conflict, NotFound, TillError, ValidationFailed
from app.core.money import Money
from app.core.outbox import emit
from app.core.rbac import Principal, Role
from app.core.tenancy import bind_store, system_scope
from app.inventory.services import InventoryService
from app.orders.models import Order
from app.orders.services import Actor
from app.payments.models import PaymentIntent
from app.payments.operations import PaymentOperations
from app.payments.provider import PaymentProvider
from app.pos.models import PosRefund, PosSale, PosTender, Register, Shift
from app.pos.pins import PinService
from app.pos.schemas import RefundIn
from app.stored_value.ledger import Ledger
from app.stored_value.refunds import StoredValueRefunds
from app.stores.commerce import CommerceSettings
from app.stores.models import Store, User

__all__ = ["STALE_REFUND", "PosRefunds", "RefundOutcome", "line_share", "resume_stale_refund", "stale_refunds"]

MAX_REASON = 500
STALE_REFUND = timedelta(minutes=2)  # a refund pending this long lost its process (a provider call takes seconds)
REFUND_TO = ("original", "cash")


def line_share(total_minor: int, quantity: int, returned_before: int, returning: int) -> int:
    """What ``returning`` more of a line's ``quantity`` units is worth when ``returned_before`` came back already:
    the parts of every return of a line add up to its total exactly (no unit is rounded twice)."""
    return total_minor * (returned_before + returning) // quantity - total_minor * returned_before // quantity


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: uuid.UUID
    order_number: int
    amount_minor: int
    tenders: list[dict[str, Any]]  # [{kind, amount_minor}] (negative: given back)

    def as_json(self) -> dict[str, Any]:
        return {
            "refund_id": str(self.refund_id),
            "order_number": self.order_number,
            "amount_minor": self.amount_minor,
            "tenders": self.tenders,
        }


@dataclass(frozen=True)
class _Plan:
    refund_id: uuid.UUID
    order_id: uuid.UUID
    order_number: int
    cards: list[tuple[uuid.UUID, int]]  # (payment intent, amount back on it), in the order the cards paid

    @property
    def card_minor(self) -> int:
        return sum(amount for _, amount in self.cards)


class PosRefunds:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        store: Store,
        principal: Principal,
        provider: Callable[[], Awaitable[PaymentProvider]],
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.store = store
        self.principal = principal
        self.provider = provider

    @property
    def actor(self) -> Actor:
        return Actor(self.principal.role, self.principal.display_name, "pos", self.principal.user_id)

    async def refund(self, body: RefundIn) -> RefundOutcome:
        reason = " ".join(body.reason.split())
        fields: dict[str, str] = {}
        if body.to not in REFUND_TO:
            fields["to"] = "original or cash."
        if not reason:
            fields["reason"] = "Say why it comes back."
        elif len(reason) > MAX_REASON:
            fields["reason"] = f"At most {MAX_REASON} characters."
        if body.amount_minor is not None and body.amount_minor <= 0:
            fields["amount_minor"] = "More than zero."
        if body.lines is not None:
            if not body.lines:
                fields["lines"] = "Name the items that come back, or send null."
            for i, line in enumerate(body.lines):
                if line.quantity < 1:
                    fields[f"lines.{i}.quantity"] = "1 or more."
        if fields:
            raise ValidationFailed("Check the refund; nothing was given back.", fields=fields)
        plan = await self._claim(body, reason)
        if plan.card_minor:
            await self._card(plan, reason)
        return await self._finish(plan.refund_id)

    # -- 1. claim: check, plan, and write the refund (pending when a card is involved) --------------------------

    async def _claim(self, body: RefundIn, reason: str) -> _Plan:
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            shift = await session.get(Shift, body.shift_id, with_for_update={"read": True})
            if shift is None or shift.register_id != body.register_id:
                raise NotFound("No such shift on this register.", fields={"shift_id": "Not a shift of this register."})
            if shift.closed_at is not None:
                raise ValidationFailed("This shift is closed; open a new one.", fields={"shift_id": "Closed."})
            order = await session.scalar(
                select(Order).where(Order.number == body.order_number, Order.channel == "pos").with_for_update()
            )
            sale = await session.scalar(select(PosSale).where(PosSale.order_id == order.id)) if order else None
            if order is None or sale is None:
                raise NotFound("No POS sale has that receipt number.", fields={"order_number": "Not a POS sale here."})
            earlier = list(
                await session.scalars(
                    select(PosRefund).where(PosRefund.order_id == order.id, PosRefund.status != "failed")
                )
            )
            if any(r.status == "pending" for r in earlier):
                raise Conflict("A refund of this sale is still at the payment provider; look again in a moment.")
            left = order.total_minor - sum(r.amount_minor for r in earlier)
            if left <= 0:
                raise Conflict(f"Order #{order.number} has been refunded in full already.")
            returning = self._lines(order, earlier, body)
            lines_value = sum(line["amount_minor"] for line in returning)
            if body.amount_minor is not None:
                amount = body.amount_minor
            elif body.lines is not None:
                amount = lines_value
            else:
                amount = left
            if amount > left:
                raise ValidationFailed(
                    f"At most {left} is left to refund on order #{order.number}.",
                    fields={"amount_minor": f"At most {left}."},
                )
            if amount <= 0:
                raise ValidationFailed("Nothing to refund.", fields={"amount_minor": "More than zero."})
            approved_by = await self._approval(session, amount, body.manager_pin)
            # Gift cards / store credit / points first (app/stored_value: given back when the refund is applied),
            # then the cards, then cash.
            stored = await _stored_value_part(session, self.store.id, order.id, amount, body.to)
            stored_minor = sum(back for _, back in stored)
            cards = await self._card_part(session, order, sale, earlier, amount - stored_minor, body.to)
            card_minor = sum(back for _, back in cards)
            parts = (
                [{"kind": kind, "amount_minor": back} for kind, back in stored]
                + [{"kind": "card", "amount_minor": back, "intent_id": str(intent)} for intent, back in cards]
                + (
                    [{"kind": "cash", "amount_minor": amount - stored_minor - card_minor}]
                    if amount > stored_minor + card_minor
                    else []
                )
            )
            refund = PosRefund(
                order_id=order.id,
                register_id=shift.register_id,
                shift_id=shift.id,
                amount_minor=amount,
                to=body.to,
                lines=returning,
                parts=parts,
                reason=reason,
                status="pending",
                actor_id=self.principal.user_id,
                approved_by_id=approved_by,
            )
            session.add(refund)
            await session.flush()
            if not card_minor:  # all cash: given back from the drawer in this same transaction
                await self._apply(session, refund, order)
            return _Plan(refund.id, order.id, order.number, cards)

    def _lines(self, order: Order, earlier: list[PosRefund], body: RefundIn) -> list[dict[str, Any]]:
        """The order lines that come back, by position: [{position, variant_id, quantity, amount_minor}]. None
        named and no amount: everything not yet returned."""
        returned: dict[int, int] = {}
        for refund in earlier:
            for came_back in refund.lines:
                position = int(came_back["position"])
                returned[position] = returned.get(position, 0) + int(came_back["quantity"])
        wanted: list[tuple[int, uuid.UUID, int]] = []  # (request index, variant, quantity)
        if body.lines is not None:
            wanted = [(i, asked.variant_id, asked.quantity) for i, asked in enumerate(body.lines)]
        elif body.amount_minor is None:
            wanted = [
                (-1, line.variant_id, line.quantity - returned.get(line.position, 0))
                for line in order.lines
                if line.variant_id is not None and line.quantity > returned.get(line.position, 0)
            ]
        out: list[dict[str, Any]] = []
        fields: dict[str, str] = {}
        for index, variant_id, quantity in wanted:
            need = quantity
            for line in order.lines:
                if need == 0 or line.variant_id != variant_id:
                    continue
                back = returned.get(line.position, 0)
                take = min(need, line.quantity - back)
                if take <= 0:
                    continue
                out.append(
                    {
                        "position": line.position,
                        "variant_id": str(variant_id),
                        "quantity": take,
                        "amount_minor": line_share(line.total_minor, line.quantity, back, take),
                    }
                )
                returned[line.position] = back + take
                need -= take
            if need:
                on_receipt = any(line.variant_id == variant_id for line in order.lines)
                fields[f"lines.{index}.quantity" if on_receipt else f"lines.{index}.variant_id"] = (
                    f"Only {quantity - need} of them are left to return." if on_receipt else "Not on this receipt."
                )
        if fields:
            raise ValidationFailed(
                "Some items are not on the receipt to return; nothing was given back.", fields=fields
            )
        return out

    async def _approval(self, session: AsyncSession, amount: int, pin: str | None) -> uuid.UUID | None:
        threshold = CommerceSettings.of(self.store.settings).refund_approval_threshold_minor
        if threshold is None or amount <= threshold or self.principal.can(Role.MANAGER):
            return None
        if not pin:
            raise ValidationFailed(
                "A refund this large needs a manager: they approve it with their PIN.",
                fields={"manager_pin": "A manager's PIN is needed."},
            )
        return await PinService(session, self.store.id).approver(self.redis, pin, asked_by=self.principal.user_id)

    async def _card_part(
        self, session: AsyncSession, order: Order, sale: PosSale, earlier: list[PosRefund], amount: int, to: str
    ) -> list[tuple[uuid.UUID, int]]:
        """What goes back to the cards, to the original tenders first: [(payment intent, amount)], each card at
        most what is left of its payment (captured - refunded), in the order the cards paid; the rest is cash."""
        if to != "original":
            return []
        paid_by_card = await session.scalar(
            select(func.coalesce(func.sum(PosTender.amount_minor), 0)).where(
                PosTender.sale_id == sale.id, PosTender.kind == "card"
            )
        )
        if not paid_by_card:
            return []
        back_on_card = sum(int(p["amount_minor"]) for r in earlier for p in r.parts if p.get("kind") == "card")
        card_minor = min(amount, int(paid_by_card) - back_on_card)
        if card_minor <= 0:
            return []
        intents = list(
            await session.scalars(
                select(PaymentIntent)
                .where(PaymentIntent.order_id == order.id, PaymentIntent.status != "voided")
                .order_by(PaymentIntent.created_at, PaymentIntent.id)
            )
        )
        cards: list[tuple[uuid.UUID, int]] = []
        for intent in intents:
            back = min(card_minor, intent.captured_minor - intent.refunded_minor)
            if back > 0:
                cards.append((intent.id, back))
                card_minor -= back
        if not cards or card_minor > 0:
            raise Conflict("The card payment of this sale is not in the payments ledger: refund it in cash.")
        return cards

    # -- 2. the cards' part through the provider ----------------------------------------------------------------

    async def _card(self, plan: _Plan, reason: str) -> None:
        """Each card's part, one after another. A card the provider refuses fails the refund when nothing went back
        yet; after an earlier card took its part, the refund is kept as what did go back (nothing more is owed
        by it) and the cashier is told how much is left to give back, another way."""
        operations = PaymentOperations(self.sessions, self.store.id, await self.provider())
        done: list[tuple[uuid.UUID, int]] = []
        for intent_id, amount in plan.cards:
            try:
                await operations.refund(plan.order_id, intent_id, amount_minor=amount, reason=reason, actor=self.actor)
            except TillError as exc:
                if not done:
                    await self._fail(plan.refund_id, exc.detail)
                    raise
                await self._shrink(plan.refund_id, done)
                left = plan.card_minor - sum(back for _, back in done)
                raise Conflict(
                    f"{Money(sum(back for _, back in done), self.store.currency)} went back to the first card(s); "
                    f"the next card's refund was refused ({exc.detail}). Give the other "
                    f"{Money(left, self.store.currency)} back with another refund, in cash.",
                    fields={"to": "Refund the rest in cash."},
                ) from exc
            done.append((intent_id, amount))

    async def _shrink(self, refund_id: uuid.UUID, done: list[tuple[uuid.UUID, int]]) -> None:
        """The refund as what went back: the cards that took their part (no cash: the cashier decides that)."""
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            refund = await session.get(PosRefund, refund_id, with_for_update=True)
            if refund is None or refund.status != "pending":
                return
            refund.parts = [{"kind": "card", "amount_minor": back, "intent_id": str(intent)} for intent, back in done]
            refund.amount_minor = sum(back for _, back in done)
            order = await session.scalar(select(Order).where(Order.id == refund.order_id).with_for_update())
            assert order is not None
            await self._apply(session, refund, order)

    async def _fail(self, refund_id: uuid.UUID, message: str) -> None:
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            refund = await session.get(PosRefund, refund_id, with_for_update=True)
            if refund is not None and refund.status == "pending":
                refund.status, refund.message = "failed", message[:300]

    # -- 3. finish: tenders, restock, audit, the order's payment status -----------------------------------------

    async def _finish(self, refund_id: uuid.UUID) -> RefundOutcome:
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            refund = await session.get(PosRefund, refund_id, with_for_update=True)
            assert refund is not None
            order = await session.scalar(select(Order).where(Order.id == refund.order_id).with_for_update())
            assert order is not None
            if refund.status == "pending":
                await self._apply(session, refund, order)
            tenders = [{"kind": p["kind"], "amount_minor": -int(p["amount_minor"])} for p in refund.parts]
            return RefundOutcome(refund.id, order.number, refund.amount_minor, tenders)

    async def _apply(self, session: AsyncSession, refund: PosRefund, order: Order) -> None:
        """The refund done: its negative tenders in the shift, the goods back on the shelf, the audit row, and
        the order's payment status."""
        refund.status = "done"
        stored = sum(int(p["amount_minor"]) for p in refund.parts if p.get("kind") not in ("card", "cash"))
        if stored:  # back to the gift cards / store credit / points that paid (never more than they paid)
            await StoredValueRefunds(session, self.store.id).refund(
                order.id, stored, refund.reason or "POS refund", principal=self.principal, destination="original"
            )
        for part in refund.parts:
            session.add(
                PosTender(refund_id=refund.id, order_id=order.id, shift_id=refund.shift_id, kind=part["kind"],
                          amount_minor=-int(part["amount_minor"]), status="refunded")
            )  # fmt: skip
        register = await session.get(Register, refund.register_id)
        inventory = InventoryService(session, self.store.id)
        for line in refund.lines:
            await inventory.adjust(
                uuid.UUID(line["variant_id"]),
                int(line["quantity"]),
                "return",
                note=f"Returned at {register.name if register else 'the register'}: order #{order.number}",
                actor_id=self.principal.user_id,
            )
        await session.flush()
        await self._follow_order(session, order, refund)
        details = {
            "number": order.number,
            "amount_minor": refund.amount_minor,
            "to": refund.to,
            "parts": refund.parts,
            "lines": refund.lines,
            "reason": refund.reason,
            "approved_by": str(refund.approved_by_id) if refund.approved_by_id else None,
        }
        audit.record(session, self.principal, "pos.refund", target_type="order", target_id=order.id, details=details)

    async def _follow_order(self, session: AsyncSession, order: Order, refund: PosRefund) -> None:
        """The order's payment axis: refunded in full or in part, with its event for the board and order page."""
        given_back = await session.scalar(
            select(func.coalesce(func.sum(PosRefund.amount_minor), 0)).where(
                PosRefund.order_id == order.id, PosRefund.status == "done"
            )
        )
        before = order.payment_status
        order.payment_status = "refunded" if int(given_back or 0) >= order.total_minor else "partially_refunded"
        emit(session, "order.payment_changed", aggregate_type="order", aggregate_id=order.id,
             payload={"number": order.number, "operation": "refund", "amount_minor": refund.amount_minor,
                      "currency": order.currency, "from": before, "to": order.payment_status,
                      "source": "pos"})  # fmt: skip


# -- refunds whose process died during the provider call ---------------------------------------------------------


async def stale_refunds(
    session: AsyncSession, *, older_than: timedelta = STALE_REFUND
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(store id, refund id) of every POS refund still ``pending`` after ``older_than`` (the worker's list)."""
    system_scope(session)
    rows = await session.execute(
        select(PosRefund.store_id, PosRefund.id).where(
            PosRefund.status == "pending", PosRefund.created_at < datetime.now(UTC) - older_than
        )
    )
    return [(store_id, refund_id) for store_id, refund_id in rows.tuples()]


async def resume_stale_refund(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, store: Store, refund_id: uuid.UUID
) -> str:
    """Finish a refund left ``pending``: ``waiting`` while a card's provider call is still in flight in the payments
    ledger (its own worker settles it first), else ``done`` with the card parts the ledger shows went back (each
    card's refunds beyond what the sale's finished refunds took), or ``failed`` when none did. The cash part of a
    refund whose cards did not all go back is dropped: the cashier was told it failed and decides again."""
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        refund = await session.get(PosRefund, refund_id, with_for_update=True)
        if refund is None or refund.status != "pending":
            return "settled"
        order = await session.scalar(select(Order).where(Order.id == refund.order_id).with_for_update())
        assert order is not None
        done = list(
            await session.scalars(select(PosRefund).where(PosRefund.order_id == order.id, PosRefund.status == "done"))
        )
        intents = {
            i.id: i
            for i in await session.scalars(
                select(PaymentIntent)
                .where(PaymentIntent.order_id == order.id, PaymentIntent.status != "voided")
                .order_by(PaymentIntent.created_at, PaymentIntent.id)
            )
        }
        first = next(iter(intents), None)

        def intent_of(part: dict[str, Any]) -> uuid.UUID | None:
            return uuid.UUID(part["intent_id"]) if part.get("intent_id") else first  # before several cards: one

        taken: dict[uuid.UUID | None, int] = {}
        for earlier in done:
            for part in earlier.parts:
                if part.get("kind") == "card":
                    taken[intent_of(part)] = taken.get(intent_of(part), 0) + int(part["amount_minor"])
        went_back: list[dict[str, Any]] = []
        cards = [part for part in refund.parts if part.get("kind") == "card"]
        for part in cards:
            intent = intents.get(intent_of(part))  # type: ignore[arg-type]
            if intent is not None and intent.pending_operation is not None:
                return "waiting"
            key = intent.id if intent else None
            if intent is not None and intent.refunded_minor - taken.get(key, 0) >= int(part["amount_minor"]):
                went_back.append(part)
                taken[key] = taken.get(key, 0) + int(part["amount_minor"])
        if not went_back:
            refund.status, refund.message = "failed", "The provider never took this refund; nothing was given back."
            return "failed"
        if len(went_back) < len(cards):
            refund.parts = went_back
            refund.amount_minor = sum(int(part["amount_minor"]) for part in went_back)
        actor = await session.get(User, refund.actor_id) if refund.actor_id else None
        principal = Principal(
            kind="staff", store_id=store.id, store_slug=store.slug, store_name=store.name, currency=store.currency,
            timezone=store.timezone, role=Role.MANAGER, user_id=refund.actor_id,
            display_name=f"{actor.name if actor else 'Till'} (finished by Till)",
        )  # fmt: skip
        await PosRefunds(sessions, redis, store, principal, _no_provider)._apply(session, refund, order)
        return "done"


async def _no_provider() -> PaymentProvider:
    raise AssertionError("finishing a refund never calls the provider")


async def _stored_value_part(
    session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID, amount: int, to: str
) -> list[tuple[str, int]]:
    """What goes back to the sale's gift cards / store credit / points (refund to the original tenders): each spend
    at most what it paid and has not had back, in the order they paid: [(kind, amount)]."""
    if to != "original":
        return []
    parts: list[tuple[str, int]] = []
    for hold in await Ledger(session, store_id).holds_of_order(order_id):
        if amount <= 0 or hold.status != "captured" or hold.captured_minor <= 0:
            continue
        left = hold.value_minor * (hold.captured_minor - hold.refunded_minor) // hold.captured_minor
        back = min(amount, left)
        if back > 0:
            parts.append((hold.instrument, back))
            amount -= back
    return parts
