"""Order search by the start of the recipient's name (delivery orders carry it in their address).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_orders_store_recipient ON orders (store_id, lower(address ->> 'name') text_pattern_ops)"
    )


def downgrade() -> None:
    op.drop_index("ix_orders_store_recipient", table_name="orders")
