"""Earning and giving back points, exactly once (Invariants 3 and 4).

The outbox consumer (``workers`` task ``loyalty_points``) hands each ``order.placed`` / ``order.payment_changed``
event here. In one transaction it claims the event's consumer receipt (``consumer_receipts``: a second delivery
finds it and does nothing), takes a lock on the order's loyalty (events of one order run one at a time, whatever
the order SAQ runs them in), then:

- a paid order (paid, or refunded since) earns once: its ``loyalty_accruals`` row is unique by order, so the
  ``order.placed`` of a POS sale synced twice (one order: the sale claim) or a payment event after it add nothing;
- a refund (``operation == "refund"``) adds its amount to the order's refunded total and takes back
  ``reversal_target(points, refunded, total)`` less what was already taken back — never below what the customer
  still has: points already spent are counted as ``unrecovered_points``.

What points paid for does not earn: the value of the order's loyalty spends is taken off what earns, and off the
total its refunds are measured against (the points themselves go back by the stored-value refund).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit, pg
from app.orders.models import Order, OrderLine
from app.stored_value.ledger import Ledger, Refs
from app.stored_value.loyalty.ledger import EARNED, INSTRUMENT, KIND, REVERSED, points_account
from app.stored_value.loyalty.models import LoyaltyAccrual, LoyaltyMember
from app.stored_value.loyalty.program import Program, eligible_minor, reversal_target
from app.stored_value.loyalty.services import LoyaltyProgramService

log = structlog.get_logger(__name__)

CONSUMER = "loyalty_points"
PAID_ONCE = ("paid", "partially_refunded", "refunded")  # payment statuses of an order that was paid
ACTOR = "system: loyalty"


@dataclass(frozen=True)
class Outcome:
    earned: int = 0
    reversed: int = 0
    unrecovered: int = 0
    note: str = ""

    def __str__(self) -> str:
        if self.note:
            return self.note
        return f"earned {self.earned}, reversed {self.reversed}" + (
            f", unrecovered {self.unrecovered}" if self.unrecovered else ""
        )


async def claim_receipt(session: AsyncSession, consumer: str, event_id: int) -> bool:
    """Record the consumer receipt in the caller's transaction (so it commits with the points, or not at all).
    False: this event was handled already. Same row as ``app.webhooks.receipts.record_handled`` writes."""
    conn = await pg.writer(session)
    inserted = await conn.fetchval(
        "INSERT INTO consumer_receipts (consumer, event_id, processed_at) VALUES ($1, $2, now()) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        consumer,
        event_id,
    )
    return inserted is not None


def refunded_money(event: dict[str, Any]) -> int:
    """The money an event gives back that earned points: a card or POS refund (``order.payment_changed``), or
    what a stored-value refund gave back to gift cards or store credit (``stored_value.refunded``; what went back to
    points never earned)."""
    payload = event.get("payload") or {}
    if event.get("type") == "order.payment_changed" and payload.get("operation") == "refund":
        return max(int(payload.get("amount_minor") or 0), 0)
    if event.get("type") == "stored_value.refunded":
        return sum(
            max(int(value), 0)
            for instrument, value in payload.get("parts") or []
            if instrument not in (INSTRUMENT, KIND)
        )
    return 0


async def points_paid(session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> int:
    """The money an order's loyalty spends paid (points are not money: they earn nothing, and a refund of the
    order's money is measured against the rest)."""
    return sum(
        h.value_minor
        for h in await Ledger(session, store_id).holds_of_order(order_id)
        if h.instrument in (INSTRUMENT, KIND) and h.status == "captured"
    )


async def order_eligible(session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> int:
    """What an order earns on: its lines after their discounts, less what the customer paid with points."""
    rows = (
        await session.execute(
            select(OrderLine.total_minor, OrderLine.discount_minor).where(OrderLine.order_id == order_id)
        )
    ).all()
    paid_with_points = await points_paid(session, store_id, order_id)
    return max(eligible_minor((int(t), int(d)) for t, d in rows) - paid_with_points, 0)


class LoyaltyAccruals:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        self.programs = LoyaltyProgramService(session, store_id)  # binds the session to the store

    async def handle(self, event: dict[str, Any], *, now: datetime | None = None) -> Outcome:
        """One outbox event about an order (see the module's doc). Exactly once per event id."""
        if event.get("id") is not None and not await claim_receipt(self.session, CONSUMER, int(event["id"])):
            return Outcome(note="skipped: handled already")
        order_id = uuid.UUID(str(event["aggregate_id"]))
        refunded = refunded_money(event)
        await self._lock(order_id)
        program = await self.programs.get()
        earned = await self.accrue(order_id, program, now=now)
        if refunded:
            reversed_, unrecovered = await self.reverse(order_id, refunded)
            return Outcome(earned or 0, reversed_, unrecovered)
        return Outcome(earned) if earned is not None else Outcome(note="skipped: nothing to earn")

    async def _lock(self, order_id: uuid.UUID) -> None:
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended('loyalty:' || :order_id, 0))"),
            {"order_id": str(order_id)},
        )

    async def accrue(self, order_id: uuid.UUID, program: Program, *, now: datetime | None = None) -> int | None:
        """Points for a paid order with a customer, once; None when it earns nothing (not paid, no customer,
        the program off, or earned already)."""
        if not program.enabled:
            return None
        order = await self.session.scalar(select(Order).where(Order.id == order_id))
        if order is None or order.customer_id is None or order.payment_status not in PAID_ONCE:
            return None
        if await self.session.scalar(select(LoyaltyAccrual.id).where(LoyaltyAccrual.order_id == order_id)):
            return None
        member = await self._member(order.customer_id, program)
        tier = program.tier_named(member.tier)
        eligible = await order_eligible(self.session, self.store_id, order_id)
        points = program.earn(eligible, order.currency, tier.multiplier_bps)
        account = await points_account(self.session, self.store_id, order.customer_id)
        assert account is not None
        inserted = await self.session.scalar(
            insert(LoyaltyAccrual)
            .values(
                id=uuid.uuid4(),
                store_id=self.store_id,
                order_id=order_id,
                customer_id=order.customer_id,
                account_id=account.id,
                currency=order.currency,
                eligible_minor=eligible,
                total_minor=max(order.total_minor - await points_paid(self.session, self.store_id, order_id), 0),
                points_per_unit=program.points_per_unit,
                multiplier_bps=tier.multiplier_bps,
                tier=tier.name,
                points=points,
                refunded_minor=0,
                reversed_points=0,
                unrecovered_points=0,
                earned_at=now or datetime.now(UTC),
                created_at=func.now(),
                updated_at=func.now(),
            )
            .on_conflict_do_nothing(index_elements=["order_id"])
            .returning(LoyaltyAccrual.id)
        )
        if inserted is None:
            return None
        if points:
            await Ledger(self.session, self.store_id).post(
                account.id, "issue", points, reason=f"{EARNED} #{order.number}", actor=ACTOR, refs=Refs(order_id)
            )
            member.qualifying_points += points
            reached = program.tier_for(member.qualifying_points)
            if reached.threshold > tier.threshold:  # an upgrade shows at once; the nightly run also moves down
                audit.record(
                    self.session, None, "loyalty.tier_changed", target_type="customer", target_id=order.customer_id,
                    details={"from": tier.name, "to": reached.name, "qualifying_points": member.qualifying_points},
                )  # fmt: skip
                member.tier = reached.name
        log.info("loyalty.earned", order_id=str(order_id), customer_id=str(order.customer_id), points=points)
        return points

    async def _member(self, customer_id: uuid.UUID, program: Program) -> LoyaltyMember:
        member = await self.programs.member(customer_id)
        if member is None:
            await self.session.execute(
                insert(LoyaltyMember)
                .values(
                    id=uuid.uuid4(),
                    store_id=self.store_id,
                    customer_id=customer_id,
                    tier=program.tiers[0].name,
                    qualifying_points=0,
                    created_at=func.now(),
                    updated_at=func.now(),
                )
                .on_conflict_do_nothing(index_elements=["store_id", "customer_id"])
            )
            member = await self.programs.member(customer_id)
        assert member is not None
        return member

    async def reverse(self, order_id: uuid.UUID, refunded_minor: int) -> tuple[int, int]:
        """Take back the points of ``refunded_minor`` more of the order's money: (taken back, unrecoverable)."""
        accrual = await self.session.scalar(
            select(LoyaltyAccrual).where(LoyaltyAccrual.order_id == order_id).with_for_update()
        )
        if accrual is None:
            return 0, 0
        accrual.refunded_minor += refunded_minor
        target = reversal_target(accrual.points, accrual.refunded_minor, accrual.total_minor)
        due = target - accrual.reversed_points - accrual.unrecovered_points
        if due <= 0:
            return 0, 0
        ledger = Ledger(self.session, self.store_id)
        take = min(due, max(await ledger.spendable(accrual.account_id), 0))
        if take:
            number = await self.session.scalar(select(Order.number).where(Order.id == order_id))
            await ledger.post(
                accrual.account_id, "adjust", -take, reason=f"{REVERSED} #{number}", actor=ACTOR, refs=Refs(order_id)
            )
        accrual.reversed_points += take
        accrual.unrecovered_points += due - take
        member = await self.programs.member(accrual.customer_id)
        if member is not None:
            member.qualifying_points = max(member.qualifying_points - due, 0)
        await self.session.flush()
        log.info("loyalty.reversed", order_id=str(order_id), points=take, unrecovered=due - take)
        return take, due - take


__all__ = ["CONSUMER", "LoyaltyAccruals", "Outcome", "claim_receipt", "order_eligible", "points_paid"]
