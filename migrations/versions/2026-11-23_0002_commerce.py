"""commerce: catalog, inventory, carts, customers, checkout, orders, payments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 05:37:59.666722
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("order_number_seq", start=1001)))
    op.create_table(
        "categories",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_categories_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("store_id", "slug", name=op.f("uq_categories_store_id")),
    )
    op.create_index(op.f("ix_categories_store_id"), "categories", ["store_id"], unique=False)
    op.create_table(
        "customers",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_customers_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("store_id", "email", name=op.f("uq_customers_store_id")),
    )
    op.create_index(op.f("ix_customers_store_id"), "customers", ["store_id"], unique=False)
    op.create_table(
        "locations",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_locations_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("store_id", "code", name=op.f("uq_locations_store_id")),
    )
    op.create_index(op.f("ix_locations_store_id"), "locations", ["store_id"], unique=False)
    op.create_table(
        "carts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_id", GUID(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_carts_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_carts_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carts")),
        sa.UniqueConstraint("token", name=op.f("uq_carts_token")),
    )
    op.create_index(op.f("ix_carts_store_id"), "carts", ["store_id"], unique=False)
    op.create_table(
        "orders",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("number", sa.BigInteger(), server_default=sa.text("nextval('order_number_seq')"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("payment_status", sa.String(length=20), nullable=False),
        sa.Column("fulfilment_status", sa.String(length=20), nullable=False),
        sa.Column("fulfilment_method", sa.String(length=20), nullable=False),
        sa.Column("customer_id", GUID(length=16), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal_minor", sa.Integer(), nullable=False),
        sa.Column("discount_minor", sa.Integer(), nullable=False),
        sa.Column("shipping_minor", sa.Integer(), nullable=False),
        sa.Column("tax_minor", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.Integer(), nullable=False),
        sa.Column("prices_include_tax", sa.Boolean(), nullable=False),
        sa.Column("shipping", postgresql.JSONB(), nullable=False),
        sa.Column("address", postgresql.JSONB(), nullable=True),
        sa.Column("snapshot_id", GUID(length=16), nullable=False),
        sa.Column("access_token", sa.String(length=64), nullable=False),
        sa.Column("placed_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_orders_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_orders_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("snapshot_id", name=op.f("uq_orders_snapshot_id")),
        sa.UniqueConstraint("store_id", "number", name=op.f("uq_orders_store_id")),
    )
    op.create_index(op.f("ix_orders_customer_id"), "orders", ["customer_id"], unique=False)
    op.create_index(op.f("ix_orders_store_id"), "orders", ["store_id"], unique=False)
    op.create_table(
        "products",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category_id", GUID(length=16), nullable=True),
        sa.Column("tax_class", sa.String(length=40), nullable=False),
        sa.Column("image", sa.String(length=500), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_products_category_id_categories"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_products_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("store_id", "slug", name=op.f("uq_products_store_id")),
    )
    op.create_index(op.f("ix_products_category_id"), "products", ["category_id"], unique=False)
    op.create_index(op.f("ix_products_store_id"), "products", ["store_id"], unique=False)
    op.create_table(
        "checkout_snapshots",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("cart_id", GUID(length=16), nullable=False),
        sa.Column("customer_id", GUID(length=16), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("prices_include_tax", sa.Boolean(), nullable=False),
        sa.Column("lines", postgresql.JSONB(), nullable=False),
        sa.Column("discounts", postgresql.JSONB(), nullable=False),
        sa.Column("tax_lines", postgresql.JSONB(), nullable=False),
        sa.Column("shipping", postgresql.JSONB(), nullable=False),
        sa.Column("address", postgresql.JSONB(), nullable=True),
        sa.Column("subtotal_minor", sa.Integer(), nullable=False),
        sa.Column("discount_minor", sa.Integer(), nullable=False),
        sa.Column("shipping_minor", sa.Integer(), nullable=False),
        sa.Column("tax_minor", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_checkout_snapshots_cart_id_carts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_checkout_snapshots_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_checkout_snapshots_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_snapshots")),
    )
    op.create_index(op.f("ix_checkout_snapshots_cart_id"), "checkout_snapshots", ["cart_id"], unique=False)
    op.create_index(op.f("ix_checkout_snapshots_store_id"), "checkout_snapshots", ["store_id"], unique=False)
    op.create_table(
        "variants",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("product_id", GUID(length=16), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("options", postgresql.JSONB(), nullable=False),
        sa.Column("price_minor", sa.Integer(), nullable=False),
        sa.Column("compare_at_minor", sa.Integer(), nullable=True),
        sa.Column("weight_grams", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "compare_at_minor IS NULL OR compare_at_minor > price_minor",
            name=op.f("ck_variants_compare_at_above_price"),
        ),
        sa.CheckConstraint("price_minor >= 0", name=op.f("ck_variants_price_not_negative")),
        sa.CheckConstraint("weight_grams >= 0", name=op.f("ck_variants_weight_not_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_variants_product_id_products"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_variants_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variants")),
        sa.UniqueConstraint("store_id", "sku", name=op.f("uq_variants_store_id")),
    )
    op.create_index(op.f("ix_variants_product_id"), "variants", ["product_id"], unique=False)
    op.create_index(op.f("ix_variants_store_id"), "variants", ["store_id"], unique=False)
    op.create_table(
        "cart_lines",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("cart_id", GUID(length=16), nullable=False),
        sa.Column("variant_id", GUID(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0 AND quantity <= 999", name=op.f("ck_cart_lines_quantity_range")),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_cart_lines_cart_id_carts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_cart_lines_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variants.id"], name=op.f("fk_cart_lines_variant_id_variants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cart_lines")),
        sa.UniqueConstraint("cart_id", "variant_id", name=op.f("uq_cart_lines_cart_id")),
    )
    op.create_index(op.f("ix_cart_lines_cart_id"), "cart_lines", ["cart_id"], unique=False)
    op.create_index(op.f("ix_cart_lines_store_id"), "cart_lines", ["store_id"], unique=False)
    op.create_table(
        "checkout_attempts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("snapshot_id", GUID(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("card_brand", sa.String(length=20), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("payment_intent_id", GUID(length=16), nullable=True),
        sa.Column("order_id", GUID(length=16), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=False),
        sa.Column("error_message", sa.String(length=300), nullable=False),
        sa.Column("steps", postgresql.JSONB(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["checkout_snapshots.id"],
            name=op.f("fk_checkout_attempts_snapshot_id_checkout_snapshots"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_checkout_attempts_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_attempts")),
        sa.UniqueConstraint("store_id", "idempotency_key", name=op.f("uq_checkout_attempts_store_id")),
    )
    op.create_index(
        "ix_checkout_attempts_open",
        "checkout_attempts",
        ["updated_at"],
        unique=False,
        postgresql_where=sa.text("state NOT IN ('completed', 'failed')"),
    )
    op.create_index(op.f("ix_checkout_attempts_store_id"), "checkout_attempts", ["store_id"], unique=False)
    op.create_index(
        "uq_checkout_attempts_live_snapshot",
        "checkout_attempts",
        ["snapshot_id"],
        unique=True,
        postgresql_where=sa.text("state <> 'failed'"),
    )
    op.create_table(
        "order_lines",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("variant_id", GUID(length=16), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.Integer(), nullable=False),
        sa.Column("discount_minor", sa.Integer(), nullable=False),
        sa.Column("tax_minor", sa.Integer(), nullable=False),
        sa.Column("tax_rate_bps", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.Integer(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_order_lines_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variants.id"], name=op.f("fk_order_lines_variant_id_variants"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    op.create_index(op.f("ix_order_lines_order_id"), "order_lines", ["order_id"], unique=False)
    op.create_index(op.f("ix_order_lines_store_id"), "order_lines", ["store_id"], unique=False)
    op.create_table(
        "payment_intents",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("snapshot_id", GUID(length=16), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_ref", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("capture_method", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("captured_minor", sa.Integer(), nullable=False),
        sa.Column("refunded_minor", sa.Integer(), nullable=False),
        sa.Column("card_brand", sa.String(length=20), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "captured_minor <= amount_minor", name=op.f("ck_payment_intents_captured_within_authorized")
        ),
        sa.CheckConstraint(
            "refunded_minor <= captured_minor", name=op.f("ck_payment_intents_refunded_within_captured")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_payment_intents_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["checkout_snapshots.id"],
            name=op.f("fk_payment_intents_snapshot_id_checkout_snapshots"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_payment_intents_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_intents")),
    )
    op.create_index(op.f("ix_payment_intents_provider_ref"), "payment_intents", ["provider_ref"], unique=False)
    op.create_index(op.f("ix_payment_intents_snapshot_id"), "payment_intents", ["snapshot_id"], unique=False)
    op.create_index(op.f("ix_payment_intents_store_id"), "payment_intents", ["store_id"], unique=False)
    op.create_index(
        "uq_payment_intents_one_active_per_order",
        "payment_intents",
        ["order_id"],
        unique=True,
        postgresql_where=sa.text("status NOT IN ('declined', 'failed', 'voided')"),
    )
    op.create_table(
        "stock_levels",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("variant_id", GUID(length=16), nullable=False),
        sa.Column("location_id", GUID(length=16), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_levels_on_hand_not_negative")),
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= on_hand", name=op.f("ck_stock_levels_reserved_within_on_hand")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_stock_levels_location_id_locations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_stock_levels_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variants.id"], name=op.f("fk_stock_levels_variant_id_variants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_levels")),
        sa.UniqueConstraint("variant_id", "location_id", name=op.f("uq_stock_levels_variant_id")),
    )
    op.create_index(op.f("ix_stock_levels_store_id"), "stock_levels", ["store_id"], unique=False)
    op.create_index(op.f("ix_stock_levels_variant_id"), "stock_levels", ["variant_id"], unique=False)
    op.create_table(
        "stock_movements",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("variant_id", GUID(length=16), nullable=False),
        sa.Column("location_id", GUID(length=16), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("actor_id", GUID(length=16), nullable=True),
        sa.Column("reference", sa.String(length=80), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_stock_movements_location_id_locations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_stock_movements_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variants.id"], name=op.f("fk_stock_movements_variant_id_variants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    op.create_index(op.f("ix_stock_movements_store_id"), "stock_movements", ["store_id"], unique=False)
    op.create_index(op.f("ix_stock_movements_variant_id"), "stock_movements", ["variant_id"], unique=False)
    op.create_table(
        "stock_reservations",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("holder_id", GUID(length=16), nullable=False),
        sa.Column("variant_id", GUID(length=16), nullable=False),
        sa.Column("location_id", GUID(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_stock_reservations_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_stock_reservations_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_stock_reservations_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variants.id"], name=op.f("fk_stock_reservations_variant_id_variants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_reservations")),
    )
    op.create_index(
        "ix_stock_reservations_active_expiry",
        "stock_reservations",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(op.f("ix_stock_reservations_holder_id"), "stock_reservations", ["holder_id"], unique=False)
    op.create_index(op.f("ix_stock_reservations_store_id"), "stock_reservations", ["store_id"], unique=False)
    op.create_table(
        "payment_transactions",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("intent_id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("provider_ref", sa.String(length=120), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("error_code", sa.String(length=40), nullable=False),
        sa.Column("raw", postgresql.JSONB(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"],
            ["payment_intents.id"],
            name=op.f("fk_payment_transactions_intent_id_payment_intents"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_payment_transactions_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_transactions")),
    )
    op.create_index(op.f("ix_payment_transactions_intent_id"), "payment_transactions", ["intent_id"], unique=False)
    op.create_index(op.f("ix_payment_transactions_store_id"), "payment_transactions", ["store_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_payment_transactions_store_id"), table_name="payment_transactions")
    op.drop_index(op.f("ix_payment_transactions_intent_id"), table_name="payment_transactions")
    op.drop_table("payment_transactions")
    op.drop_index(op.f("ix_stock_reservations_store_id"), table_name="stock_reservations")
    op.drop_index(op.f("ix_stock_reservations_holder_id"), table_name="stock_reservations")
    op.drop_index(
        "ix_stock_reservations_active_expiry",
        table_name="stock_reservations",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("stock_reservations")
    op.drop_index(op.f("ix_stock_movements_variant_id"), table_name="stock_movements")
    op.drop_index(op.f("ix_stock_movements_store_id"), table_name="stock_movements")
    op.drop_table("stock_movements")
    op.drop_index(op.f("ix_stock_levels_variant_id"), table_name="stock_levels")
    op.drop_index(op.f("ix_stock_levels_store_id"), table_name="stock_levels")
    op.drop_table("stock_levels")
    op.drop_index(
        "uq_payment_intents_one_active_per_order",
        table_name="payment_intents",
        postgresql_where=sa.text("status NOT IN ('declined', 'failed', 'voided')"),
    )
    op.drop_index(op.f("ix_payment_intents_store_id"), table_name="payment_intents")
    op.drop_index(op.f("ix_payment_intents_snapshot_id"), table_name="payment_intents")
    op.drop_index(op.f("ix_payment_intents_provider_ref"), table_name="payment_intents")
    op.drop_table("payment_intents")
    op.drop_index(op.f("ix_order_lines_store_id"), table_name="order_lines")
    op.drop_index(op.f("ix_order_lines_order_id"), table_name="order_lines")
    op.drop_table("order_lines")
    op.drop_index(
        "uq_checkout_attempts_live_snapshot",
        table_name="checkout_attempts",
        postgresql_where=sa.text("state <> 'failed'"),
    )
    op.drop_index(op.f("ix_checkout_attempts_store_id"), table_name="checkout_attempts")
    op.drop_index(
        "ix_checkout_attempts_open",
        table_name="checkout_attempts",
        postgresql_where=sa.text("state NOT IN ('completed', 'failed')"),
    )
    op.drop_table("checkout_attempts")
    op.drop_index(op.f("ix_cart_lines_store_id"), table_name="cart_lines")
    op.drop_index(op.f("ix_cart_lines_cart_id"), table_name="cart_lines")
    op.drop_table("cart_lines")
    op.drop_index(op.f("ix_variants_store_id"), table_name="variants")
    op.drop_index(op.f("ix_variants_product_id"), table_name="variants")
    op.drop_table("variants")
    op.drop_index(op.f("ix_checkout_snapshots_store_id"), table_name="checkout_snapshots")
    op.drop_index(op.f("ix_checkout_snapshots_cart_id"), table_name="checkout_snapshots")
    op.drop_table("checkout_snapshots")
    op.drop_index(op.f("ix_products_store_id"), table_name="products")
    op.drop_index(op.f("ix_products_category_id"), table_name="products")
    op.drop_table("products")
    op.drop_index(op.f("ix_orders_store_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_customer_id"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_carts_store_id"), table_name="carts")
    op.drop_table("carts")
    op.drop_index(op.f("ix_locations_store_id"), table_name="locations")
    op.drop_table("locations")
    op.drop_index(op.f("ix_customers_store_id"), table_name="customers")
    op.drop_table("customers")
    op.drop_index(op.f("ix_categories_store_id"), table_name="categories")
    op.drop_table("categories")
    op.execute(sa.schema.DropSequence(sa.Sequence("order_number_seq")))
