"""Reconciliation runs, provider call audit and kill switches (issue 18).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _base(table: str, *, store_nullable: bool) -> list[Any]:
    return [
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=store_nullable),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=f"fk_{table}_store_id_stores", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def upgrade() -> None:
    op.create_table(
        "kill_switches",
        sa.Column("switch", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("engaged_by", sa.String(length=160), nullable=False),
        *_base("kill_switches", store_nullable=True),
    )
    op.create_index(
        "uq_kill_switches_switch_store",
        "kill_switches",
        ["switch", "store_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "kill_switch_changes",
        sa.Column("switch", sa.String(length=30), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        *_base("kill_switch_changes", store_nullable=True),
    )
    op.create_index("ix_kill_switch_changes_store_created", "kill_switch_changes", ["store_id", "created_at"])

    op.create_table(
        "provider_calls",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("provider_ref", sa.String(length=120), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=60), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("request", postgresql.JSONB(), nullable=False),
        sa.Column("response", postgresql.JSONB(), nullable=False),
        sa.Column("called_at", DateTimeUTC(timezone=True), nullable=False),
        *_base("provider_calls", store_nullable=False),
    )
    op.create_index("ix_provider_calls_store_called", "provider_calls", ["store_id", "called_at"])
    op.create_index("ix_provider_calls_store_ref", "provider_calls", ["store_id", "provider_ref"])
    op.create_index("ix_provider_calls_called", "provider_calls", ["called_at"])

    op.create_table(
        "reconciliation_runs",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("window_start", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("window_end", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("trigger", sa.String(length=160), nullable=False),
        sa.Column("provider_count", sa.Integer(), nullable=False),
        sa.Column("local_count", sa.Integer(), nullable=False),
        sa.Column("payout_count", sa.Integer(), nullable=False),
        sa.Column("totals", postgresql.JSONB(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=False),
        sa.Column("finished_at", DateTimeUTC(timezone=True), nullable=True),
        *_base("reconciliation_runs", store_nullable=False),
    )
    op.create_index("ix_reconciliation_runs_store_created", "reconciliation_runs", ["store_id", "created_at"])
    op.create_table(
        "reconciliation_drifts",
        sa.Column("run_id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("provider_ref", sa.String(length=120), nullable=False),
        sa.Column("payout_ref", sa.String(length=120), nullable=False),
        sa.Column("intent_id", GUID(length=16), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("local", postgresql.JSONB(), nullable=False),
        sa.Column("remote", postgresql.JSONB(), nullable=False),
        sa.Column("difference_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("resolution", sa.String(length=500), nullable=False),
        sa.Column("resolved_by", sa.String(length=160), nullable=False),
        sa.Column("resolved_at", DateTimeUTC(timezone=True), nullable=True),
        *_base("reconciliation_drifts", store_nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["reconciliation_runs.id"], name="fk_reconciliation_drifts_run_id", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_reconciliation_drifts_store_run", "reconciliation_drifts", ["store_id", "run_id", "kind"])
    # The status poller's read: payments still waiting for their outcome (app/reconciliation/poller.py).
    op.create_index(
        "ix_payment_intents_unsettled",
        "payment_intents",
        ["updated_at"],
        postgresql_where=sa.text("status IN ('pending', 'requires_action')"),
    )


def downgrade() -> None:
    op.drop_index("ix_payment_intents_unsettled", table_name="payment_intents")
    op.drop_table("reconciliation_drifts")
    op.drop_table("reconciliation_runs")
    op.drop_table("provider_calls")
    op.drop_table("kill_switch_changes")
    op.drop_table("kill_switches")
