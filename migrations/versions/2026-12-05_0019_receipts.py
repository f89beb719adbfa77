"""Receipts and their deliveries per channel (issue 17): receipts (one per paid order, refund and closed shift,
with their frozen content), receipt_deliveries (per channel, with status), receipt_attempts (each try and its
error), receipt_printers (a register's ESC/POS printer), receipt_whatsapp_events (status callbacks, once each).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_columns(table: str) -> list[Any]:
    return [
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
    op.execute("CREATE SEQUENCE receipt_number_seq START WITH 1")
    op.create_table(
        "receipts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("number", sa.BigInteger(), server_default=sa.text("nextval('receipt_number_seq')"), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("source_key", sa.String(length=120), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=True),
        sa.Column("shift_id", GUID(length=16), nullable=True),
        sa.Column("register_id", GUID(length=16), nullable=True),
        sa.Column("content", postgresql.JSONB(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("alerted_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("alert_reason", sa.String(length=300), nullable=False),
        *_tenant_columns("receipts"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_receipts_order_id_orders"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("store_id", "source_key", name=op.f("uq_receipts_store_id")),
    )
    op.create_index("ix_receipts_store_order", "receipts", ["store_id", "order_id"])
    op.create_index("ix_receipts_store_alerted", "receipts", ["store_id", "alerted_at"])
    op.create_table(
        "receipt_deliveries",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("receipt_id", GUID(length=16), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("target", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("external_ref", sa.String(length=120), nullable=False),
        sa.Column("provider_status", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("sent_at", DateTimeUTC(timezone=True), nullable=True),
        *_tenant_columns("receipt_deliveries"),
        sa.ForeignKeyConstraint(
            ["receipt_id"], ["receipts.id"], name=op.f("fk_receipt_deliveries_receipt_id_receipts"), ondelete="CASCADE"
        ),
    )
    op.create_index(op.f("ix_receipt_deliveries_receipt_id"), "receipt_deliveries", ["receipt_id"])
    op.create_table(
        "receipt_attempts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("delivery_id", GUID(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("finished_at", DateTimeUTC(timezone=True), nullable=True),
        *_tenant_columns("receipt_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["receipt_deliveries.id"],
            name=op.f("fk_receipt_attempts_delivery_id_receipt_deliveries"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("delivery_id", "number", name=op.f("uq_receipt_attempts_delivery_id")),
    )
    op.create_table(
        "receipt_printers",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("register_id", GUID(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("paper_mm", sa.Integer(), nullable=False),
        *_tenant_columns("receipt_printers"),
        sa.ForeignKeyConstraint(
            ["register_id"],
            ["registers.id"],
            name=op.f("fk_receipt_printers_register_id_registers"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("store_id", "register_id", name=op.f("uq_receipt_printers_store_id")),
    )
    op.create_table(
        "receipt_whatsapp_events",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("delivery_id", GUID(length=16), nullable=False),
        *_tenant_columns("receipt_whatsapp_events"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["receipt_deliveries.id"],
            name=op.f("fk_receipt_whatsapp_events_delivery_id_receipt_deliveries"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("message_id", "status", name=op.f("uq_receipt_whatsapp_events_message_id")),
    )


def downgrade() -> None:
    op.drop_table("receipt_whatsapp_events")
    op.drop_table("receipt_printers")
    op.drop_table("receipt_attempts")
    op.drop_index(op.f("ix_receipt_deliveries_receipt_id"), table_name="receipt_deliveries")
    op.drop_table("receipt_deliveries")
    op.drop_index("ix_receipts_store_alerted", table_name="receipts")
    op.drop_index("ix_receipts_store_order", table_name="receipts")
    op.drop_table("receipts")
    op.execute("DROP SEQUENCE receipt_number_seq")
