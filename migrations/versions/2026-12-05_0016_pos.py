"""The point of sale: registers, shifts, cash movements, the sales claim, tenders, card readers and their
payments; a manager's POS PIN; a payment intent without a checkout quote (a card at a POS reader).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registers",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("printer_host", sa.String(length=120), nullable=False),
        sa.Column("printer_width_mm", sa.Integer(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_registers_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registers")),
        sa.UniqueConstraint("store_id", "name", name=op.f("uq_registers_store_id")),
    )
    op.create_table(
        "card_readers",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_reader_id", sa.String(length=80), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("register_id", GUID(length=16), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["register_id"], ["registers.id"], name=op.f("fk_card_readers_register_id_registers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_card_readers_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_readers")),
        sa.UniqueConstraint("register_id", name=op.f("uq_card_readers_register_id")),
        sa.UniqueConstraint("store_id", "provider", "provider_reader_id", name=op.f("uq_card_readers_store_id")),
    )
    op.create_table(
        "shifts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("register_id", GUID(length=16), nullable=False),
        sa.Column("opened_by_id", GUID(length=16), nullable=True),
        sa.Column("opened_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("opening_float_minor", sa.Integer(), nullable=False),
        sa.Column("closed_by_id", GUID(length=16), nullable=True),
        sa.Column("closed_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("counted_cash_minor", sa.Integer(), nullable=True),
        sa.Column("expected_cash_minor", sa.Integer(), nullable=True),
        sa.Column("over_short_minor", sa.Integer(), nullable=True),
        sa.Column("close_note", sa.String(length=500), nullable=False),
        sa.Column("offline_key_ciphertext", sa.Text(), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("opening_float_minor >= 0", name=op.f("ck_shifts_float_not_negative")),
        sa.ForeignKeyConstraint(
            ["closed_by_id"], ["users.id"], name=op.f("fk_shifts_closed_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["opened_by_id"], ["users.id"], name=op.f("fk_shifts_opened_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["register_id"], ["registers.id"], name=op.f("fk_shifts_register_id_registers"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_shifts_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shifts")),
    )
    op.create_index("ix_shifts_store_opened", "shifts", ["store_id", "opened_at"], unique=False)
    op.create_index(
        "uq_shifts_one_open_per_register",
        "shifts",
        ["register_id"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "cash_movements",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("shift_id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor_id", GUID(length=16), nullable=True),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_cash_movements_amount_positive")),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_cash_movements_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"], ["shifts.id"], name=op.f("fk_cash_movements_shift_id_shifts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_cash_movements_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_movements")),
    )
    op.create_index(op.f("ix_cash_movements_shift_id"), "cash_movements", ["shift_id"], unique=False)
    op.create_table(
        "pos_sales",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("register_id", GUID(length=16), nullable=False),
        sa.Column("shift_id", GUID(length=16), nullable=False),
        sa.Column("client_sale_id", GUID(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=False),
        sa.Column("cashier_id", GUID(length=16), nullable=True),
        sa.Column("sold_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("conflicts", postgresql.JSONB(), nullable=False),
        sa.Column("review_status", sa.String(length=10), nullable=False),
        sa.Column("reviewed_by_id", GUID(length=16), nullable=True),
        sa.Column("reviewed_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=500), nullable=False),
        sa.Column("discount_approved_by_id", GUID(length=16), nullable=True),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cashier_id"], ["users.id"], name=op.f("fk_pos_sales_cashier_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["discount_approved_by_id"],
            ["users.id"],
            name=op.f("fk_pos_sales_discount_approved_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_pos_sales_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["register_id"], ["registers.id"], name=op.f("fk_pos_sales_register_id_registers"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"], ["users.id"], name=op.f("fk_pos_sales_reviewed_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"], ["shifts.id"], name=op.f("fk_pos_sales_shift_id_shifts"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_pos_sales_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pos_sales")),
        sa.UniqueConstraint("order_id", name=op.f("uq_pos_sales_order_id")),
        sa.UniqueConstraint("store_id", "register_id", "client_sale_id", name=op.f("uq_pos_sales_store_id")),
    )
    op.create_index(
        "ix_pos_sales_review",
        "pos_sales",
        ["store_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("review_status = 'open'"),
    )
    op.create_index("ix_pos_sales_shift", "pos_sales", ["shift_id"], unique=False)
    op.create_index("ix_pos_sales_register_sold", "pos_sales", ["store_id", "register_id", "sold_at"], unique=False)
    op.create_table(
        "pos_refunds",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("order_id", GUID(length=16), nullable=False),
        sa.Column("register_id", GUID(length=16), nullable=False),
        sa.Column("shift_id", GUID(length=16), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("to", sa.String(length=10), nullable=False),
        sa.Column("lines", postgresql.JSONB(), nullable=False),
        sa.Column("parts", postgresql.JSONB(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("actor_id", GUID(length=16), nullable=True),
        sa.Column("approved_by_id", GUID(length=16), nullable=True),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_pos_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_pos_refunds_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["users.id"], name=op.f("fk_pos_refunds_approved_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_pos_refunds_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["register_id"], ["registers.id"], name=op.f("fk_pos_refunds_register_id_registers"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"], ["shifts.id"], name=op.f("fk_pos_refunds_shift_id_shifts"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_pos_refunds_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pos_refunds")),
    )
    op.create_index("ix_pos_refunds_order", "pos_refunds", ["store_id", "order_id"], unique=False)
    op.create_index("ix_pos_refunds_shift", "pos_refunds", ["shift_id"], unique=False)
    op.create_table(
        "reader_payments",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("reader_id", GUID(length=16), nullable=False),
        sa.Column("register_id", GUID(length=16), nullable=False),
        sa.Column("client_sale_id", GUID(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("provider_ref", sa.String(length=120), nullable=False),
        sa.Column("card_brand", sa.String(length=20), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("payment_intent_id", GUID(length=16), nullable=True),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_intent_id"],
            ["payment_intents.id"],
            name=op.f("fk_reader_payments_payment_intent_id_payment_intents"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["card_readers.id"],
            name=op.f("fk_reader_payments_reader_id_card_readers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["register_id"],
            ["registers.id"],
            name=op.f("fk_reader_payments_register_id_registers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_reader_payments_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reader_payments")),
        sa.UniqueConstraint("store_id", "idempotency_key", name=op.f("uq_reader_payments_store_id")),
    )
    op.create_index("ix_reader_payments_reader_status", "reader_payments", ["reader_id", "status"], unique=False)
    op.create_index(
        "uq_reader_payments_one_waiting_per_reader",
        "reader_payments",
        ["reader_id"],
        unique=True,
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.create_table(
        "pos_tenders",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("sale_id", GUID(length=16), nullable=True),
        sa.Column("refund_id", GUID(length=16), nullable=True),
        sa.Column("order_id", GUID(length=16), nullable=False),
        sa.Column("shift_id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("tendered_minor", sa.Integer(), nullable=False),
        sa.Column("change_minor", sa.Integer(), nullable=False),
        sa.Column("reader_payment_id", GUID(length=16), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_pos_tenders_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["reader_payment_id"],
            ["reader_payments.id"],
            name=op.f("fk_pos_tenders_reader_payment_id_reader_payments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["pos_sales.id"], name=op.f("fk_pos_tenders_sale_id_pos_sales"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["pos_refunds.id"], name=op.f("fk_pos_tenders_refund_id_pos_refunds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"], ["shifts.id"], name=op.f("fk_pos_tenders_shift_id_shifts"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_pos_tenders_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pos_tenders")),
        sa.UniqueConstraint("reader_payment_id", name=op.f("uq_pos_tenders_reader_payment_id")),
    )
    op.create_index(op.f("ix_pos_tenders_order_id"), "pos_tenders", ["order_id"], unique=False)
    op.create_index(op.f("ix_pos_tenders_sale_id"), "pos_tenders", ["sale_id"], unique=False)
    op.create_index(op.f("ix_pos_tenders_refund_id"), "pos_tenders", ["refund_id"], unique=False)
    op.create_index("ix_pos_tenders_shift", "pos_tenders", ["shift_id", "kind"], unique=False)
    op.add_column("memberships", sa.Column("pos_pin_hash", sa.String(length=255), nullable=True))
    op.alter_column("payment_intents", "snapshot_id", existing_type=sa.UUID(), nullable=True)


def downgrade() -> None:
    op.alter_column("payment_intents", "snapshot_id", existing_type=sa.UUID(), nullable=False)
    op.drop_column("memberships", "pos_pin_hash")
    op.drop_index("ix_pos_tenders_shift", table_name="pos_tenders")
    op.drop_index(op.f("ix_pos_tenders_refund_id"), table_name="pos_tenders")
    op.drop_index(op.f("ix_pos_tenders_sale_id"), table_name="pos_tenders")
    op.drop_index(op.f("ix_pos_tenders_order_id"), table_name="pos_tenders")
    op.drop_table("pos_tenders")
    op.drop_index(
        "uq_reader_payments_one_waiting_per_reader",
        table_name="reader_payments",
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.drop_index("ix_reader_payments_reader_status", table_name="reader_payments")
    op.drop_table("reader_payments")
    op.drop_index("ix_pos_refunds_shift", table_name="pos_refunds")
    op.drop_index("ix_pos_refunds_order", table_name="pos_refunds")
    op.drop_table("pos_refunds")
    op.drop_index("ix_pos_sales_register_sold", table_name="pos_sales")
    op.drop_index("ix_pos_sales_shift", table_name="pos_sales")
    op.drop_index("ix_pos_sales_review", table_name="pos_sales", postgresql_where=sa.text("review_status = 'open'"))
    op.drop_table("pos_sales")
    op.drop_index(op.f("ix_cash_movements_shift_id"), table_name="cash_movements")
    op.drop_table("cash_movements")
    op.drop_index("uq_shifts_one_open_per_register", table_name="shifts", postgresql_where=sa.text("closed_at IS NULL"))
    op.drop_index("ix_shifts_store_opened", table_name="shifts")
    op.drop_table("shifts")
    op.drop_table("card_readers")
    op.drop_table("registers")
