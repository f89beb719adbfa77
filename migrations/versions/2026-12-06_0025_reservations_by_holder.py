"""Issue 20: a holder's active stock reservations found by one index, (holder_id, status).

With the old index on holder_id alone, the planner combined it (BitmapAnd) with the partial index of active
reservations by expiry. That partial index keeps an entry for every reservation that was active when written
until vacuum removes it, so under a crowd each checkout's completion read thousands of them: 13 % of
PostgreSQL's CPU in a 50-shopper run (perf). The composite index answers ``holder_id = … AND status = 'active'``
alone.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_stock_reservations_holder_status", "stock_reservations", ["holder_id", "status"])
    op.drop_index("ix_stock_reservations_holder_id", table_name="stock_reservations")


def downgrade() -> None:
    op.create_index("ix_stock_reservations_holder_id", "stock_reservations", ["holder_id"])
    op.drop_index("ix_stock_reservations_holder_status", table_name="stock_reservations")
