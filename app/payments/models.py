"""Payment intents (one active per order) and the append-only transaction ledger."""

from __future__ import annotations

import uuid
from typing import Any

from advanced_alchemy.types import JsonB
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
            postgresql_where=text("status NOT IN ('declined', 'failed', 'voided')"),
        ),
        CheckConstraint("captured_minor <= amount_minor", name="captured_within_authorized"),
        CheckConstraint("refunded_minor <= captured_minor", name="refunded_within_captured"),
    )

    snapshot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("checkout_snapshots.id", ondelete="RESTRICT"), index=True)
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

    # Optimistic concurrency: an UPDATE that lost a race changes no row and raises StaleDataError.
    __mapper_args__ = {"version_id_col": version}


class PaymentTransaction(TenantMixin, UUIDv7AuditBase):
    """Every provider interaction, recorded once and never changed."""

    __tablename__ = "payment_transactions"
    __store_index__ = False

    intent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_intents.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # authorize | capture | void | refund | action
    status: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    provider_ref: Mapped[str] = mapped_column(String(120))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    error_code: Mapped[str] = mapped_column(String(40), default="")
    raw: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
