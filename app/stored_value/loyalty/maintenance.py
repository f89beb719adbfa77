"""Loyalty's nightly work and its integrity check.

- ``recompute_tiers``: every member's qualifying points (earned in the last ``QUALIFYING_DAYS`` days, less what
  refunds took back) and the tier they reach; members whose tier changes are audited.
- ``expire_points``: points earned more than ``expiry_days`` ago and not used (oldest used first) expire — one
  ``expire`` entry per account, never more than the account can give.
- ``check_integrity``: every points balance recomputed from the orders and the ledger. For each paid order that
  earned: the points again from the order's lines at the rate it was earned at, and the share its refunds took
  back; against them, the ledger's entries about the order; and every account's running balance against the sum
  of its entries. ``drift`` is the points that disagree (expected: 0). Each run is recorded
  (``loyalty_integrity_runs``) and sets the gauges ``till_loyalty_drift_points`` /
  ``till_loyalty_drifted_accounts``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit, pg
from app.stored_value.ledger import Ledger
from app.stored_value.loyalty.ledger import EARNED, EXPIRED, INSTRUMENT, KIND, REVERSED
from app.stored_value.loyalty.models import LoyaltyAccrual, LoyaltyIntegrityRun, LoyaltyMember
from app.stored_value.loyalty.program import (
    QUALIFYING_DAYS,
    earn_points,
    eligible_minor,
    expiring,
    reversal_target,
)
from app.stored_value.loyalty.services import LoyaltyProgramService

log = structlog.get_logger(__name__)

DRIFT_POINTS = Gauge(
    "till_loyalty_drift_points", "Loyalty points that disagree between orders and ledger at the last check", ["store"]
)
DRIFTED_ACCOUNTS = Gauge(
    "till_loyalty_drifted_accounts", "Loyalty accounts with drift at the last integrity check", ["store"]
)
CHECKS = Counter("till_loyalty_integrity_checks_total", "Loyalty integrity checks run", ["outcome"])
DETAILS_KEPT = 50  # drifted accounts named in a run's details

_ACCOUNTS = """
    SELECT id, customer_id, balance_minor, held_minor,
           (SELECT COALESCE(sum(delta_minor), 0) FROM stored_value_entries e
            WHERE e.account_id = a.id AND e.store_id = $1)::bigint AS entries_sum
    FROM stored_value_accounts a WHERE a.store_id = $1 AND a.kind = $2
"""
# Loyalty's own entries about orders (earned, reversed), per account and order.
_ORDER_ENTRIES = """
    SELECT account_id, order_id, sum(delta_minor)::bigint AS net
    FROM stored_value_entries
    WHERE store_id = $1 AND order_id IS NOT NULL AND (reason LIKE $2 OR reason LIKE $3)
      AND account_id IN (SELECT id FROM stored_value_accounts WHERE store_id = $1 AND kind = $4)
    GROUP BY account_id, order_id
"""
# Every order that earned, with what it earns on today: its lines after discounts, and what points paid of it.
_ACCRUALS = """
    SELECT a.order_id, a.account_id, a.currency, a.points_per_unit, a.multiplier_bps, a.points, a.refunded_minor,
           a.total_minor, a.reversed_points, a.unrecovered_points,
           (SELECT COALESCE(sum(l.total_minor - l.discount_minor), 0) FROM order_lines l
            WHERE l.order_id = a.order_id AND l.store_id = $1)::bigint AS lines_minor,
           (SELECT COALESCE(sum(h.value_minor), 0) FROM stored_value_holds h
            WHERE h.order_id = a.order_id AND h.store_id = $1 AND h.status = 'captured'
              AND h.instrument = ANY($2::text[]))::bigint AS points_paid_minor
    FROM loyalty_accruals a WHERE a.store_id = $1
"""
_LOTS = """
    SELECT account_id, created_at, delta_minor FROM stored_value_entries
    WHERE store_id = $1 AND account_id IN (SELECT id FROM stored_value_accounts WHERE store_id = $1 AND kind = $2)
      AND kind NOT IN ('hold', 'release')
    ORDER BY account_id, created_at
"""


@dataclass
class Drift:
    account_id: uuid.UUID
    customer_id: uuid.UUID | None
    points: int
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": str(self.account_id),
            "customer_id": str(self.customer_id) if self.customer_id else None,
            "points": self.points,
            "reasons": self.reasons[:10],
        }


@dataclass(frozen=True)
class IntegrityReport:
    store_id: uuid.UUID
    accounts: int
    orders: int
    drifts: list[Drift]

    @property
    def drift_points(self) -> int:
        return sum(d.points for d in self.drifts)


class LoyaltyMaintenance:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        self.programs = LoyaltyProgramService(session, store_id)

    # -- tiers --------------------------------------------------------------------------------------------------

    async def recompute_tiers(self, *, now: datetime | None = None) -> int:
        """Every member's qualifying points and tier; returns how many changed tier."""
        now = now or datetime.now(UTC)
        program = await self.programs.get()
        since = now - timedelta(days=QUALIFYING_DAYS)
        rows = await self.session.execute(
            select(
                LoyaltyAccrual.customer_id,
                LoyaltyAccrual.points,
                LoyaltyAccrual.reversed_points,
                LoyaltyAccrual.unrecovered_points,
            ).where(LoyaltyAccrual.earned_at > since)
        )
        qualifying: dict[uuid.UUID, int] = defaultdict(int)
        for customer_id, points, reversed_, unrecovered in rows:
            qualifying[customer_id] += points - reversed_ - unrecovered
        changed = 0
        for member in await self.session.scalars(select(LoyaltyMember).with_for_update()):
            points = qualifying.get(member.customer_id, 0)
            tier = program.tier_for(points).name
            if tier != member.tier:
                audit.record(
                    self.session,
                    None,
                    "loyalty.tier_changed",
                    target_type="customer",
                    target_id=member.customer_id,
                    details={"from": member.tier, "to": tier, "qualifying_points": points},
                )
                changed += 1
            member.tier, member.qualifying_points, member.tier_computed_at = tier, points, now
        await self.session.flush()
        return changed

    # -- expiry -------------------------------------------------------------------------------------------------

    async def expire_points(self, *, now: datetime | None = None) -> int:
        """Expire what is due on every account; returns the points expired."""
        now = now or datetime.now(UTC)
        program = await self.programs.get()
        if program.expiry_days is None:
            return 0
        conn = await pg.writer(self.session)
        lots: dict[uuid.UUID, list[tuple[datetime, int]]] = defaultdict(list)
        debited: dict[uuid.UUID, int] = defaultdict(int)
        for row in await conn.fetch(_LOTS, self.store_id, KIND):
            if row["delta_minor"] > 0:
                lots[row["account_id"]].append((row["created_at"], row["delta_minor"]))
            else:
                debited[row["account_id"]] -= row["delta_minor"]
        ledger = Ledger(self.session, self.store_id)
        total = 0
        for account_id, account_lots in lots.items():
            due = expiring(account_lots, debited[account_id], now, program.expiry_days)
            due = min(due, await ledger.spendable(account_id))  # points held by a paying checkout stay
            if due > 0:
                await ledger.post(account_id, "expire", due, reason=EXPIRED, actor="system: loyalty")
                total += due
        return total

    # -- integrity ----------------------------------------------------------------------------------------------

    async def check_integrity(self, *, record: bool = True) -> IntegrityReport:
        conn = await pg.writer(self.session)
        accounts = {r["id"]: r for r in await conn.fetch(_ACCOUNTS, self.store_id, KIND)}
        ledger_net: dict[tuple[uuid.UUID, uuid.UUID], int] = {
            (r["account_id"], r["order_id"]): int(r["net"])
            for r in await conn.fetch(_ORDER_ENTRIES, self.store_id, f"{EARNED}%", f"{REVERSED}%", KIND)
        }
        drifts: dict[uuid.UUID, Drift] = {}

        def drift(account_id: uuid.UUID, points: int, reason: str) -> None:
            if not points:
                return
            row = accounts.get(account_id)
            d = drifts.setdefault(account_id, Drift(account_id, row["customer_id"] if row else None, 0))
            d.points += abs(points)
            d.reasons.append(reason)

        for account_id, row in accounts.items():
            drift(account_id, row["balance_minor"] - row["entries_sum"], "balance differs from the sum of entries")
        accruals = await conn.fetch(_ACCRUALS, self.store_id, [INSTRUMENT, KIND])
        for a in accruals:
            eligible = max(eligible_minor([(a["lines_minor"], 0)]) - a["points_paid_minor"], 0)
            order, account, earned = a["order_id"], a["account_id"], a["points"]
            taken = a["reversed_points"] + a["unrecovered_points"]
            points = earn_points(eligible, a["currency"], a["points_per_unit"], a["multiplier_bps"])
            drift(account, points - earned, f"order {order}: the order earns {points}, {earned} recorded")
            back = reversal_target(earned, a["refunded_minor"], a["total_minor"])
            drift(account, back - taken, f"order {order}: refunds take back {back}, {taken} recorded")
            net = ledger_net.pop((account, order), 0)
            kept = earned - a["reversed_points"]
            drift(account, net - kept, f"order {order}: the ledger holds {net}, {kept} earned")
        for (account_id, order_id), net in ledger_net.items():  # loyalty entries about an order that never earned
            drift(account_id, net, f"order {order_id}: {net} in the ledger without an accrual")
        report = IntegrityReport(self.store_id, len(accounts), len(accruals), list(drifts.values()))
        store = str(self.store_id)
        DRIFT_POINTS.labels(store).set(report.drift_points)
        DRIFTED_ACCOUNTS.labels(store).set(len(report.drifts))
        CHECKS.labels("drift" if report.drifts else "clean").inc()
        if report.drifts:
            log.warning("loyalty.drift", store_id=store, accounts=len(report.drifts), points=report.drift_points)
        if record:
            self.session.add(
                LoyaltyIntegrityRun(
                    accounts_checked=report.accounts,
                    orders_checked=report.orders,
                    drifted_accounts=len(report.drifts),
                    drift_points=report.drift_points,
                    details=[d.as_dict() for d in report.drifts[:DETAILS_KEPT]],
                    checked_at=datetime.now(UTC),
                )
            )
            await self.session.flush()
        return report

    async def last_run(self) -> LoyaltyIntegrityRun | None:
        run: LoyaltyIntegrityRun | None = await self.session.scalar(
            select(LoyaltyIntegrityRun).order_by(LoyaltyIntegrityRun.checked_at.desc()).limit(1)
        )
        return run


__all__ = ["Drift", "IntegrityReport", "LoyaltyMaintenance"]
