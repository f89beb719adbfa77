"""Disputes: records, evidence; the intent's disputed and lost amounts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "needs_response",
    "under_review",
    "appeal_needs_response",
    "appeal_under_review",
    "won",
    "lost",
    "warning_closed",
    "prevented",
)


def _audit_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    add = op.add_column
    add("payment_intents", sa.Column("disputed_minor", sa.Integer(), nullable=False, server_default="0"))
    add("payment_intents", sa.Column("dispute_lost_minor", sa.Integer(), nullable=False, server_default="0"))
    op.create_check_constraint(
        op.f("ck_payment_intents_dispute_amounts_not_negative"),
        "payment_intents",
        "disputed_minor >= 0 AND dispute_lost_minor >= 0",
    )
    # A lost dispute takes its money back once: one ledger row per dispute (its key is dispute:<provider id>).
    op.create_index(
        "uq_payment_transactions_dispute_once",
        "payment_transactions",
        ["intent_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("kind = 'dispute'"),
    )

    uuid = postgresql.UUID(as_uuid=True)
    statuses = ", ".join(f"'{s}'" for s in _STATUSES)
    op.create_table(
        "disputes",
        sa.Column("id", uuid, primary_key=True, nullable=False),
        sa.Column("store_id", uuid, sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("order_id", uuid, sa.ForeignKey("orders.id", ondelete="RESTRICT"), nullable=True),
        sa.Column("intent_id", uuid, sa.ForeignKey("payment_intents.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("provider_dispute_id", sa.String(120), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False, server_default="general"),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("due_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence_submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.String(120), nullable=False, server_default=""),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False, server_default=""),
        sa.Column("ledger_tx_id", uuid, nullable=True),
        *_audit_columns(),
        sa.UniqueConstraint("provider", "provider_dispute_id", name=op.f("uq_disputes_provider")),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_disputes_amount_not_negative")),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f("ck_disputes_status_known")),
    )
    op.create_index("ix_disputes_store_status", "disputes", ["store_id", "status", "due_by"])
    op.create_index(op.f("ix_disputes_order_id"), "disputes", ["order_id"])
    op.create_index(op.f("ix_disputes_intent_id"), "disputes", ["intent_id"])

    op.create_table(
        "dispute_evidence",
        sa.Column("id", uuid, primary_key=True, nullable=False),
        sa.Column("store_id", uuid, sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dispute_id", uuid, sa.ForeignKey("disputes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("file_path", sa.String(200), nullable=False, server_default=""),
        sa.Column("original_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("content_type", sa.String(100), nullable=False, server_default=""),
        sa.Column("size_bytes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("added_by", sa.String(120), nullable=False),
        sa.Column("added_by_id", uuid, nullable=True),
        *_audit_columns(),
        sa.CheckConstraint("kind IN ('note', 'file')", name=op.f("ck_dispute_evidence_kind_known")),
        sa.CheckConstraint(
            "(kind = 'note' AND text <> '') OR (kind = 'file' AND file_path <> '' AND size_bytes > 0)",
            name=op.f("ck_dispute_evidence_has_content"),
        ),
    )
    op.create_index(op.f("ix_dispute_evidence_dispute_id"), "dispute_evidence", ["dispute_id"])


def downgrade() -> None:
    op.drop_table("dispute_evidence")
    op.drop_table("disputes")
    op.drop_index("uq_payment_transactions_dispute_once", table_name="payment_transactions")
    op.drop_constraint(op.f("ck_payment_intents_dispute_amounts_not_negative"), "payment_intents", type_="check")
    op.drop_column("payment_intents", "dispute_lost_minor")
    op.drop_column("payment_intents", "disputed_minor")
