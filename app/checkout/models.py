from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class CheckoutSnapshot(TenantMixin, UUIDv7AuditBase):
    """A frozen quote: lines, discounts, tax, shipping and totals, valid until ``expires_at``."""

    __tablename__ = "checkout_snapshots"
    __store_index__ = False

    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(40), default="")
    currency: Mapped[str] = mapped_column(String(3))
    prices_include_tax: Mapped[bool] = mapped_column()
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JsonB)
    discounts: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    tax_lines: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    shipping: Mapped[dict[str, Any]] = mapped_column(JsonB)
    address: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=None)
    subtotal_minor: Mapped[int] = mapped_column(Integer)
    discount_minor: Mapped[int] = mapped_column(Integer, default=0)
    shipping_minor: Mapped[int] = mapped_column(Integer)
    tax_minor: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | completed


class CheckoutAttempt(TenantMixin, UUIDv7AuditBase):
    """One run of the placing-the-order saga; its ``state`` says which steps are done."""

    __tablename__ = "checkout_attempts"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("store_id", "idempotency_key"),
        # One live attempt per quote: a second key for the same snapshot joins the first attempt.
        Index(
            "uq_checkout_attempts_live_snapshot", "snapshot_id", unique=True, postgresql_where=text("state <> 'failed'")
        ),
        Index("ix_checkout_attempts_open", "updated_at", postgresql_where=text("state NOT IN ('completed', 'failed')")),
    )

    snapshot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("checkout_snapshots.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    # started → reserved → awaiting_action | authorized → placed → completed; or failed (compensated)
    state: Mapped[str] = mapped_column(String(20), default="started")
    amount_minor: Mapped[int] = mapped_column(Integer)
    card_brand: Mapped[str] = mapped_column(String(20), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    payment_intent_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    order_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    error_code: Mapped[str] = mapped_column(String(40), default="")
    error_message: Mapped[str] = mapped_column(String(300), default="")
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
