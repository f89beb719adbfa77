"""Promotions and vouchers: promotions (a code unique per store whatever its case, or automatic), their
redemptions (held by a checkout, used by an order, released, returned), per-shopper use counts for
per-customer limits; orders keep the discounts they were placed with.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "promotions",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("percent_bps", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("buy_quantity", sa.Integer(), nullable=False),
        sa.Column("get_quantity", sa.Integer(), nullable=False),
        sa.Column("applies_to", sa.String(length=12), nullable=False),
        sa.Column("product_ids", postgresql.JSONB(), nullable=False),
        sa.Column("category_ids", postgresql.JSONB(), nullable=False),
        sa.Column("min_subtotal_minor", sa.Integer(), nullable=False),
        sa.Column("first_order_only", sa.Boolean(), nullable=False),
        sa.Column("customers_only", sa.Boolean(), nullable=False),
        sa.Column("starts_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("ends_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("max_discount_minor", sa.Integer(), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("per_customer_limit", sa.Integer(), nullable=True),
        sa.Column("uses_claimed", sa.Integer(), nullable=False),
        sa.Column("combinable", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("deleted_at", DateTimeUTC(timezone=True), nullable=True),
        *_tenant_columns(),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_promotions_amount_not_negative")),
        sa.CheckConstraint("percent_bps BETWEEN 0 AND 10000", name=op.f("ck_promotions_percent_in_range")),
        sa.CheckConstraint("uses_claimed >= 0", name=op.f("ck_promotions_uses_not_negative")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_promotions_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    op.create_index("ix_promotions_store_created", "promotions", ["store_id", "created_at"])
    op.create_index(
        "uq_promotions_store_code",
        "promotions",
        ["store_id", "code"],
        unique=True,
        postgresql_where=sa.text("code IS NOT NULL AND deleted_at IS NULL"),
    )
    op.create_table(
        "promotion_customer_uses",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("promotion_id", GUID(length=16), nullable=False),
        sa.Column("customer_key", sa.String(length=254), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        *_tenant_columns(),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_promotion_customer_uses_uses_not_negative")),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_customer_uses_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_promotion_customer_uses_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_customer_uses")),
        sa.UniqueConstraint("promotion_id", "customer_key", name=op.f("uq_promotion_customer_uses_promotion_id")),
    )
    op.create_table(
        "promotion_redemptions",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("promotion_id", GUID(length=16), nullable=False),
        sa.Column("holder_id", GUID(length=16), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("customer_key", sa.String(length=254), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("discount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        *_tenant_columns(),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_promotion_redemptions_order_id_orders"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_redemptions_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_promotion_redemptions_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_redemptions")),
    )
    op.create_index("ix_promotion_redemptions_holder", "promotion_redemptions", ["holder_id"])
    op.create_index("ix_promotion_redemptions_order", "promotion_redemptions", ["order_id"])
    op.create_index("ix_promotion_redemptions_promotion", "promotion_redemptions", ["promotion_id", "created_at"])
    # Existing orders had no discounts; the default fills them without rewriting the table.
    op.add_column(
        "orders", sa.Column("discounts", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb"))
    )


def downgrade() -> None:
    op.drop_column("orders", "discounts")
    op.drop_index("ix_promotion_redemptions_promotion", table_name="promotion_redemptions")
    op.drop_index("ix_promotion_redemptions_order", table_name="promotion_redemptions")
    op.drop_index("ix_promotion_redemptions_holder", table_name="promotion_redemptions")
    op.drop_table("promotion_redemptions")
    op.drop_table("promotion_customer_uses")
    op.drop_index(
        "uq_promotions_store_code",
        table_name="promotions",
        postgresql_where=sa.text("code IS NOT NULL AND deleted_at IS NULL"),
    )
    op.drop_index("ix_promotions_store_created", table_name="promotions")
    op.drop_table("promotions")
