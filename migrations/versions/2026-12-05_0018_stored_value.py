"""Gift cards, store credit and loyalty on one stored-value ledger (issue 15): accounts with running totals kept
by the ledger's statements, append-only entries, and holds (each spend: open, captured or released).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
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
    op.create_table(
        "stored_value_accounts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=3), nullable=False),
        sa.Column("customer_id", GUID(length=16), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_key_version", sa.Integer(), nullable=False),
        sa.Column("code_last4", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("held_minor", sa.BigInteger(), nullable=False),
        sa.Column("issued_minor", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("source_order_id", GUID(length=16), nullable=True),
        sa.Column("reveal_ciphertext", sa.Text(), nullable=True),
        *_tenant_columns("stored_value_accounts"),
        sa.CheckConstraint("balance_minor >= 0", name=op.f("ck_stored_value_accounts_balance_not_negative")),
        sa.CheckConstraint(
            "held_minor >= 0 AND held_minor <= balance_minor", name=op.f("ck_stored_value_accounts_held_within_balance")
        ),
        sa.CheckConstraint(
            "kind IN ('gift_card', 'store_credit', 'loyalty_points')", name=op.f("ck_stored_value_accounts_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_stored_value_accounts_customer_id_customers"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(
        "uq_stored_value_accounts_code",
        "stored_value_accounts",
        ["store_id", "code_hash"],
        unique=True,
        postgresql_where=sa.text("code_hash IS NOT NULL"),
    )
    op.create_index(
        "uq_stored_value_accounts_customer_kind",
        "stored_value_accounts",
        ["store_id", "customer_id", "kind"],
        unique=True,
        postgresql_where=sa.text("customer_id IS NOT NULL AND kind <> 'gift_card'"),
    )
    op.create_index("ix_stored_value_accounts_store_kind", "stored_value_accounts", ["store_id", "kind", "created_at"])
    op.create_index("ix_stored_value_accounts_last4", "stored_value_accounts", ["store_id", "code_last4"])
    op.create_index(
        "ix_stored_value_accounts_source_order",
        "stored_value_accounts",
        ["source_order_id"],
        postgresql_where=sa.text("source_order_id IS NOT NULL"),
    )
    op.create_table(
        "stored_value_holds",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("account_id", GUID(length=16), nullable=False),
        sa.Column("instrument", sa.String(length=20), nullable=False),
        sa.Column("holder_kind", sa.String(length=10), nullable=False),
        sa.Column("holder_id", GUID(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("captured_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=True),
        *_tenant_columns("stored_value_holds"),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_stored_value_holds_amount_positive")),
        sa.CheckConstraint(
            "captured_minor >= 0 AND captured_minor <= amount_minor AND refunded_minor >= 0 "
            "AND refunded_minor <= captured_minor",
            name=op.f("ck_stored_value_holds_refund_within_capture"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["stored_value_accounts.id"],
            name=op.f("fk_stored_value_holds_account_id_stored_value_accounts"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_stored_value_holds_holder", "stored_value_holds", ["holder_id"])
    op.create_index(
        "ix_stored_value_holds_order",
        "stored_value_holds",
        ["order_id"],
        postgresql_where=sa.text("order_id IS NOT NULL"),
    )
    op.create_index(
        "ix_stored_value_holds_open", "stored_value_holds", ["expires_at"], postgresql_where=sa.text("status = 'open'")
    )
    op.create_index("ix_stored_value_holds_account", "stored_value_holds", ["account_id", "created_at"])
    op.create_table(
        "stored_value_entries",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("account_id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("delta_minor", sa.BigInteger(), nullable=False),
        sa.Column("hold_id", GUID(length=16), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=True),
        sa.Column("attempt_id", GUID(length=16), nullable=True),
        sa.Column("pos_sale_id", GUID(length=16), nullable=True),
        *_tenant_columns("stored_value_entries"),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_stored_value_entries_amount_not_negative")),
        sa.CheckConstraint(
            "kind IN ('issue', 'hold', 'capture', 'release', 'refund', 'expire', 'adjust')",
            name=op.f("ck_stored_value_entries_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["stored_value_accounts.id"],
            name=op.f("fk_stored_value_entries_account_id_stored_value_accounts"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_stored_value_entries_account", "stored_value_entries", ["account_id", "created_at"])
    op.create_index(
        "ix_stored_value_entries_order",
        "stored_value_entries",
        ["order_id"],
        postgresql_where=sa.text("order_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("stored_value_entries")
    op.drop_table("stored_value_holds")
    op.drop_table("stored_value_accounts")
