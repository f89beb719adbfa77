"""Stock levels leave room on each page for their next version (fillfactor 20).

A popular item's stock row is updated twice per checkout (reserve, sell). With full pages every update
wrote the new version to another page and a new index entry, so lookups walked ever longer chains of
dead entries between autovacuum runs: bench/checkout.py lost a third of its throughput within a minute.
With room on the page the updates are HOT (no index entry) and pruned in place.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Applies to pages written from now on; existing rows move to roomy pages as they are updated.
    op.execute("ALTER TABLE stock_levels SET (fillfactor = 20)")


def downgrade() -> None:
    op.execute("ALTER TABLE stock_levels RESET (fillfactor)")
