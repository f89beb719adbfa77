"""Loyalty (issue 15): the program per store, members' tiers, and what each paid order earned. The points live
on the stored-value ledger (migration 0018).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_columns(table: str) -> list[Any]:
    return [
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f(f"fk_{table}_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "loyalty_programs",
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("points_per_unit", sa.Integer(), nullable=False),
        sa.Column("tiers", postgresql.JSONB(), nullable=False),
        sa.Column("expiry_days", sa.Integer(), nullable=True),
        sa.Column("redeem_points", sa.Integer(), nullable=False),
        sa.Column("redeem_value_minor", sa.Integer(), nullable=False),
        sa.Column("min_redeem_points", sa.Integer(), nullable=False),
        *_tenant_columns("loyalty_programs"),
        sa.UniqueConstraint("store_id", name="uq_loyalty_programs_store"),
    )
    op.create_table(
        "loyalty_members",
        sa.Column("customer_id", GUID(length=16), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("qualifying_points", sa.BigInteger(), nullable=False),
        sa.Column("tier_computed_at", DateTimeUTC(timezone=True), nullable=True),
        *_tenant_columns("loyalty_members"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_loyalty_members_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("store_id", "customer_id", name="uq_loyalty_members_customer"),
    )
    op.create_table(
        "loyalty_accruals",
        sa.Column("order_id", GUID(length=16), nullable=False),
        sa.Column("customer_id", GUID(length=16), nullable=False),
        sa.Column("account_id", GUID(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("eligible_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("points_per_unit", sa.Integer(), nullable=False),
        sa.Column("multiplier_bps", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("reversed_points", sa.BigInteger(), nullable=False),
        sa.Column("unrecovered_points", sa.BigInteger(), nullable=False),
        sa.Column("earned_at", DateTimeUTC(timezone=True), nullable=False),
        *_tenant_columns("loyalty_accruals"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_loyalty_accruals_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_loyalty_accruals_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "points >= 0 AND reversed_points >= 0 AND unrecovered_points >= 0",
            name=op.f("ck_loyalty_accruals_points_positive"),
        ),
        sa.CheckConstraint(
            "reversed_points + unrecovered_points <= points", name=op.f("ck_loyalty_accruals_reversal_within_points")
        ),
        sa.UniqueConstraint("order_id", name="uq_loyalty_accruals_order"),
    )
    op.create_index(
        "ix_loyalty_accruals_customer", "loyalty_accruals", ["store_id", "customer_id", "earned_at"], unique=False
    )
    op.create_table(
        "loyalty_integrity_runs",
        sa.Column("accounts_checked", sa.Integer(), nullable=False),
        sa.Column("orders_checked", sa.Integer(), nullable=False),
        sa.Column("drifted_accounts", sa.Integer(), nullable=False),
        sa.Column("drift_points", sa.BigInteger(), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.Column("checked_at", DateTimeUTC(timezone=True), nullable=False),
        *_tenant_columns("loyalty_integrity_runs"),
    )
    op.create_index(
        "ix_loyalty_integrity_runs_store", "loyalty_integrity_runs", ["store_id", "checked_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_loyalty_integrity_runs_store", table_name="loyalty_integrity_runs")
    op.drop_table("loyalty_integrity_runs")
    op.drop_index("ix_loyalty_accruals_customer", table_name="loyalty_accruals")
    op.drop_table("loyalty_accruals")
    op.drop_table("loyalty_members")
    op.drop_table("loyalty_programs")
