"""The provider's dispute fees: on each dispute as its balance transactions state them, and summed on the payment.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("disputes", sa.Column("fee_minor", sa.Integer(), server_default="0", nullable=False))
    op.add_column("payment_intents", sa.Column("dispute_fees_minor", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("payment_intents", "dispute_fees_minor")
    op.drop_column("disputes", "fee_minor")
