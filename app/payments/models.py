"""Payment intents (one active per order) and the append-only transaction ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class PaymentIntent(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "payment_intents"
    __store_index__ = False
    __table_args__ = (
        Index(
            "uq_payment_intents_one_active_per_order",
            "order_id",
            unique=True,
            # A checkout's order has one live payment; a POS sale may be paid by several cards at the reader
            # (no snapshot), each an intent of its own.
            postgresql_where=text("status NOT IN ('declined', 'failed', 'voided') AND snapshot_id IS NOT NULL"),
        ),
        # The status poller's read (app/reconciliation/poller.py): the few payments still waiting, oldest first.
        Index(
            "ix_payment_intents_unsettled",
            "updated_at",
            postgresql_where=text("status IN ('pending', 'requires_action')"),
        ),
        CheckConstraint("captured_minor <= amount_minor", name="captured_within_authorized"),
        CheckConstraint("refunded_minor <= captured_minor", name="refunded_within_captured"),
    )

    # The checkout's frozen quote; None for a card presented at a POS reader (app/pos), which has no quote.
    snapshot_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("checkout_snapshots.id", ondelete="RESTRICT"), index=True
    )
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str] = mapped_column(String(120), index=True)
    status: Mapped[str] = mapped_column(String(20))
    capture_method: Mapped[str] = mapped_column(String(12))  # automatic | manual
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(Integer)
    captured_minor: Mapped[int] = mapped_column(Integer, default=0)
    refunded_minor: Mapped[int] = mapped_column(Integer, default=0)
    card_brand: Mapped[str] = mapped_column(String(20), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    # A capture, void or refund asked of the provider and not yet answered (app/payments/operations.py):
    # it blocks a second one, and its amount counts against the limits (CHECK constraints, migration 0008).
    # ``pending_tx_id`` is the id the ledger row will get; the provider's idempotency key derives from it.
    pending_operation: Mapped[str | None] = mapped_column(String(10), default=None)
    pending_amount_minor: Mapped[int] = mapped_column(Integer, default=0)
    pending_tx_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    pending_since: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Fees (app/payments/fees.py), fixed when the payment is made; Connect's account and transfer.
    application_fee_minor: Mapped[int] = mapped_column(Integer, default=0)
    processing_fee_minor: Mapped[int] = mapped_column(Integer, default=0)
    connected_account: Mapped[str] = mapped_column(String(64), default="")
    transfer_ref: Mapped[str] = mapped_column(String(64), default="")
    # Disputes (app/disputes): the amount under open disputes, and what lost ones took back (the ledger's
    # ``dispute`` rows sum to it). Kept by app.disputes.services under this row's lock.
    disputed_minor: Mapped[int] = mapped_column(Integer, default=0)
    dispute_lost_minor: Mapped[int] = mapped_column(Integer, default=0)
    dispute_fees_minor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # the provider's

    # Optimistic concurrency: an UPDATE that lost a race changes no row and raises StaleDataError.
    __mapper_args__ = {"version_id_col": version}


class PaymentTransaction(TenantMixin, UUIDv7AuditBase):
    """Every provider interaction, recorded once and never changed."""

    __tablename__ = "payment_transactions"
    __store_index__ = False

    intent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_intents.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # authorize | capture | void | refund | action | dispute
    status: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    provider_ref: Mapped[str] = mapped_column(String(120))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    error_code: Mapped[str] = mapped_column(String(40), default="")
    raw: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(120), default="")


class RefundRequest(TenantMixin, UUIDv7AuditBase):
    """A refund over the store's approval threshold, waiting for a manager (pending → approved | rejected;
    ``failed`` when the approved refund could not be made)."""

    __tablename__ = "refund_requests"
    __store_index__ = False

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    intent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_intents.id"))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    requested_by: Mapped[str] = mapped_column(String(120))
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    decided_by: Mapped[str] = mapped_column(String(120), default="")
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    decided_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    decision_note: Mapped[str] = mapped_column(String(500), default="")
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
