"""Webhook events: persisted once, processed by workers, dead letters; consumer receipts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True, nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column(
            "store_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("status", sa.String(12), nullable=False, server_default="received"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(300), nullable=False, server_default=""),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("provider", "event_id", name="uq_webhook_events_provider_event_id"),
        sa.CheckConstraint(
            "status IN ('received', 'processing', 'processed', 'failed', 'dead')",
            name=op.f("ck_webhook_events_status_known"),
        ),
    )
    op.create_index("ix_webhook_events_store_received", "webhook_events", ["store_id", "received_at", "id"])
    op.create_index("ix_webhook_events_store_status_received", "webhook_events", ["store_id", "status", "received_at"])
    op.create_index("ix_webhook_events_store_type_received", "webhook_events", ["store_id", "type", "received_at"])
    op.create_index(
        "ix_webhook_events_unfinished",
        "webhook_events",
        ["received_at"],
        postgresql_where=sa.text("status IN ('received', 'processing', 'failed')"),
    )

    op.create_table(
        "consumer_receipts",
        sa.Column("consumer", sa.String(80), primary_key=True, nullable=False),
        sa.Column("event_id", sa.BigInteger(), primary_key=True, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("consumer_receipts")
    op.drop_table("webhook_events")
