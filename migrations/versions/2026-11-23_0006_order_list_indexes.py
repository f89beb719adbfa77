"""Order list indexes: newest first by keyset, on its own or within one status; e-mail prefix search.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_store_placed", "orders", ["store_id", "placed_at", "id"], unique=False)
    op.create_index("ix_orders_store_status_placed", "orders", ["store_id", "status", "placed_at", "id"], unique=False)

    op.create_index(
        "ix_orders_store_email",
        "orders",
        ["store_id", "email"],
        unique=False,
        postgresql_ops={"email": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_orders_store_email", table_name="orders")
    op.drop_index("ix_orders_store_status_placed", table_name="orders")
    op.drop_index("ix_orders_store_placed", table_name="orders")
