"""Lean tenant indexes: drop lone store_id indexes that a store-leading unique key already covers, or
whose rows are only reached through a parent (docs/adr/0003).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "cart_lines",
    "carts",
    "categories",
    "checkout_attempts",
    "checkout_snapshots",
    "customers",
    "idempotency_keys",
    "order_lines",
    "orders",
    "outbox_events",
    "payment_intents",
    "payment_transactions",
    "products",
    "stock_reservations",
    "variants",
)


def upgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_store_id", table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_store_id", table, ["store_id"], unique=False)
