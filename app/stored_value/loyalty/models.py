"""Loyalty's own tables. The points themselves are a ``loyalty_points`` account on the stored-value ledger
(``app/stored_value``): these tables hold the program, each member's tier, and one row per order that earned
points (what it earned, at which rate, and how much of it refunds took back) — the integrity job recomputes
every balance from these rows, the orders and the ledger.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class LoyaltyProgram(TenantMixin, UUIDv7AuditBase):
    """A store's program (``program.Program``'s fields); one per store, none until first saved (off)."""

    __tablename__ = "loyalty_programs"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", name="uq_loyalty_programs_store"),)

    enabled: Mapped[bool] = mapped_column(default=False)
    points_per_unit: Mapped[int] = mapped_column(Integer, default=1)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    expiry_days: Mapped[int | None] = mapped_column(Integer, default=None)
    redeem_points: Mapped[int] = mapped_column(Integer, default=100)
    redeem_value_minor: Mapped[int] = mapped_column(Integer, default=100)
    min_redeem_points: Mapped[int] = mapped_column(Integer, default=500)


class LoyaltyMember(TenantMixin, UUIDv7AuditBase):
    """A customer in the program: their tier as last computed (nightly, and at each accrual)."""

    __tablename__ = "loyalty_members"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "customer_id", name="uq_loyalty_members_customer"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    tier: Mapped[str] = mapped_column(String(40))
    qualifying_points: Mapped[int] = mapped_column(BigInteger, default=0)
    tier_computed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class LoyaltyAccrual(TenantMixin, UUIDv7AuditBase):
    """What one paid order earned (once: unique by order) and what its refunds took back.

    ``points = earn_points(eligible_minor, currency, points_per_unit, multiplier_bps)``;
    ``reversed_points + unrecovered_points = reversal_target(points, refunded_minor, total_minor)``, where
    ``unrecovered_points`` are those already spent when the refund came (the balance never goes below 0)."""

    __tablename__ = "loyalty_accruals"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("order_id", name="uq_loyalty_accruals_order"),
        Index("ix_loyalty_accruals_customer", "store_id", "customer_id", "earned_at"),
        CheckConstraint("points >= 0 AND reversed_points >= 0 AND unrecovered_points >= 0", name="points_positive"),
        CheckConstraint("reversed_points + unrecovered_points <= points", name="reversal_within_points"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column()  # the stored-value account the points went to
    currency: Mapped[str] = mapped_column(String(3))
    eligible_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)  # the order's money: its total less what points paid
    points_per_unit: Mapped[int] = mapped_column(Integer)
    multiplier_bps: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(40))
    points: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed_points: Mapped[int] = mapped_column(BigInteger, default=0)
    unrecovered_points: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class LoyaltyIntegrityRun(TenantMixin, UUIDv7AuditBase):
    """One run of the integrity check for one store: what it checked and the drift it found (expected: none)."""

    __tablename__ = "loyalty_integrity_runs"
    __store_index__ = False
    __table_args__ = (Index("ix_loyalty_integrity_runs_store", "store_id", "checked_at"),)

    accounts_checked: Mapped[int] = mapped_column(Integer)
    orders_checked: Mapped[int] = mapped_column(Integer)
    drifted_accounts: Mapped[int] = mapped_column(Integer)
    drift_points: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    checked_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


__all__ = ["LoyaltyAccrual", "LoyaltyIntegrityRun", "LoyaltyMember", "LoyaltyProgram"]
