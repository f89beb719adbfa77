"""Channel order ingestion: per-store ingestion secrets, attempts log, client order ids.

Orders a sales channel sends (app/ingestion) have no checkout snapshot, so ``orders.snapshot_id`` becomes
nullable (the unique constraint still holds for checkout orders: NULLs are distinct). The claim on a
client order id lives in its own table, ``ingested_orders``, unique per store, with the hash of the body
that made the order.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _audit_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.alter_column("orders", "snapshot_id", existing_type=GUID(length=16), nullable=True)

    op.create_table(
        "ingestion_secrets",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("previous_ciphertext", sa.Text(), nullable=True),
        sa.Column("previous_valid_until", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("hint", sa.String(length=40), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.Column("updated_by_id", GUID(length=16), nullable=True),
        *_audit_columns(),
        sa.CheckConstraint("key_version >= 1", name=op.f("ck_ingestion_secrets_key_version_positive")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_ingestion_secrets_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_ingestion_secrets_updated_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_secrets")),
        sa.UniqueConstraint("store_id", name=op.f("uq_ingestion_secrets_store_id")),
    )

    op.create_table(
        "ingested_orders",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("client_order_id", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=False),
        *_audit_columns(),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_ingested_orders_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_ingested_orders_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingested_orders")),
        sa.UniqueConstraint("store_id", "client_order_id", name=op.f("uq_ingested_orders_store_id")),
        sa.UniqueConstraint("order_id", name=op.f("uq_ingested_orders_order_id")),
    )

    op.create_table(
        "ingestion_attempts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("client_order_id", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("lines", postgresql.JSONB(), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=True),
        sa.Column("token_id", GUID(length=16), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("received_at", DateTimeUTC(timezone=True), nullable=False),
        *_audit_columns(),
        sa.CheckConstraint(
            "outcome IN ('accepted', 'replayed', 'rejected')", name=op.f("ck_ingestion_attempts_outcome_known")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_ingestion_attempts_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_ingestion_attempts_order_id_orders"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_attempts")),
    )
    op.create_index(
        "ix_ingestion_attempts_store_received", "ingestion_attempts", ["store_id", "received_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ingestion_attempts_store_received", table_name="ingestion_attempts")
    op.drop_table("ingestion_attempts")
    op.drop_table("ingested_orders")
    op.drop_table("ingestion_secrets")
    # Refused by the database while ingested orders exist (they have no snapshot): never deletes orders.
    op.alter_column("orders", "snapshot_id", existing_type=GUID(length=16), nullable=False)
