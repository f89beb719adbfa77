"""Payment lifecycle: operations in flight guarded on the intent, fees, Connect, refund approvals,
a customer's provider id, and an append-only ledger enforced by the database.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IN_FLIGHT = "CASE WHEN pending_operation = '{op}' THEN pending_amount_minor ELSE 0 END"


def upgrade() -> None:
    add = op.add_column
    add("payment_intents", sa.Column("pending_operation", sa.String(10), nullable=True))
    add("payment_intents", sa.Column("pending_amount_minor", sa.Integer(), nullable=False, server_default="0"))
    add("payment_intents", sa.Column("pending_tx_id", postgresql.UUID(as_uuid=True), nullable=True))
    add("payment_intents", sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True))
    add("payment_intents", sa.Column("application_fee_minor", sa.Integer(), nullable=False, server_default="0"))
    add("payment_intents", sa.Column("processing_fee_minor", sa.Integer(), nullable=False, server_default="0"))
    add("payment_intents", sa.Column("connected_account", sa.String(64), nullable=False, server_default=""))
    add("payment_intents", sa.Column("transfer_ref", sa.String(64), nullable=False, server_default=""))
    op.create_check_constraint(
        op.f("ck_payment_intents_pending_operation_known"),
        "payment_intents",
        "pending_operation IS NULL OR pending_operation IN ('capture', 'void', 'refund')",
    )
    # Money in flight counts against the limits: a capture or refund being asked for cannot overshoot.
    op.create_check_constraint(
        op.f("ck_payment_intents_capture_in_flight_within_authorized"),
        "payment_intents",
        f"captured_minor + {_IN_FLIGHT.format(op='capture')} <= amount_minor",
    )
    op.create_check_constraint(
        op.f("ck_payment_intents_refund_in_flight_within_captured"),
        "payment_intents",
        f"refunded_minor + {_IN_FLIGHT.format(op='refund')} <= captured_minor",
    )
    op.create_index(
        "ix_payment_intents_pending",
        "payment_intents",
        ["pending_since"],
        postgresql_where=sa.text("pending_operation IS NOT NULL"),
    )
    op.create_index("ix_payment_intents_store_created", "payment_intents", ["store_id", "created_at", "id"])

    add("payment_transactions", sa.Column("reason", sa.String(500), nullable=False, server_default=""))
    add("payment_transactions", sa.Column("actor", sa.String(120), nullable=False, server_default=""))
    # Invariant 3 in the database: a ledger row, once written, is never changed or removed.
    op.execute(
        """
        CREATE FUNCTION payment_transactions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'payment_transactions is append-only (% refused)', TG_OP
                USING ERRCODE = 'restrict_violation';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER payment_transactions_append_only BEFORE UPDATE OR DELETE ON payment_transactions "
        "FOR EACH ROW EXECUTE FUNCTION payment_transactions_append_only()"
    )

    add("customers", sa.Column("stripe_customer_id", sa.String(64), nullable=False, server_default=""))

    op.create_table(
        "refund_requests",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True, nullable=False),
        sa.Column(
            "store_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "order_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("intent_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("payment_intents.id"), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("requested_by", sa.String(120), nullable=False),
        sa.Column("requested_by_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("decided_by", sa.String(120), nullable=False, server_default=""),
        sa.Column("decided_by_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(500), nullable=False, server_default=""),
        sa.Column("transaction_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_refund_requests_amount_positive")),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'failed')", name=op.f("ck_refund_requests_status_known")
        ),
    )
    op.create_index("ix_refund_requests_store_status", "refund_requests", ["store_id", "status", "created_at"])
    op.create_index("ix_refund_requests_order", "refund_requests", ["order_id"])


def downgrade() -> None:
    op.drop_table("refund_requests")
    op.drop_column("customers", "stripe_customer_id")
    op.execute("DROP TRIGGER payment_transactions_append_only ON payment_transactions")
    op.execute("DROP FUNCTION payment_transactions_append_only()")
    for column in ("actor", "reason"):
        op.drop_column("payment_transactions", column)
    op.drop_index("ix_payment_intents_store_created", table_name="payment_intents")
    op.drop_index("ix_payment_intents_pending", table_name="payment_intents")
    for name in ("refund_in_flight_within_captured", "capture_in_flight_within_authorized", "pending_operation_known"):
        op.drop_constraint(op.f(f"ck_payment_intents_{name}"), "payment_intents", type_="check")
    for column in (
        "transfer_ref",
        "connected_account",
        "processing_fee_minor",
        "application_fee_minor",
        "pending_since",
        "pending_tx_id",
        "pending_amount_minor",
        "pending_operation",
    ):
        op.drop_column("payment_intents", column)
