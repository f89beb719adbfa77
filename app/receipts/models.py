"""A receipt (its frozen content) and, per channel, a delivery with its attempts.

A delivery goes pending → sending (an attempt recorded before each send) → sent, or → retrying → … → failed
after the last attempt (app/receipts/delivery.py). ``alerted_at`` is set once a delivery is stuck (3 attempts
without success, or every channel of the fallback order failed): the board shows it until a delivery succeeds.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Sequence, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import UUIDv7AuditBase, metadata
from app.core.tenancy import TenantMixin

receipt_number_seq = Sequence("receipt_number_seq", start=1, metadata=metadata)

DELIVERY_STATUSES = ("pending", "sending", "sent", "retrying", "failed")


class Receipt(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "receipts"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("store_id", "source_key"),  # created from the outbox exactly once
        Index("ix_receipts_store_order", "store_id", "order_id"),
        Index("ix_receipts_store_alerted", "store_id", "alerted_at"),
    )

    number: Mapped[int] = mapped_column(BigInteger, receipt_number_seq, server_default=receipt_number_seq.next_value())
    kind: Mapped[str] = mapped_column(String(10))  # sale | refund | shift
    source_key: Mapped[str] = mapped_column(String(120))  # sale:<order id> | refund:<tx or event> | shift:<id>
    origin: Mapped[str] = mapped_column(String(10), default="web")  # web | pos: which fallback order applies
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), default=None)
    shift_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    register_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    content: Mapped[dict[str, Any]] = mapped_column(JsonB)  # app.receipts.document.ReceiptDocument.as_json()
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    alerted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    alert_reason: Mapped[str] = mapped_column(String(300), default="")

    deliveries: Mapped[list[ReceiptDelivery]] = relationship(
        lazy="selectin", order_by="ReceiptDelivery.created_at", back_populates="receipt"
    )


class ReceiptDelivery(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "receipt_deliveries"
    __store_index__ = False

    receipt_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("receipts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(12))  # email | thermal | whatsapp
    target: Mapped[str] = mapped_column(String(254), default="")  # an address, a printer, a phone number
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    external_ref: Mapped[str] = mapped_column(String(120), default="")  # the e-mail message / WhatsApp message id
    provider_status: Mapped[str] = mapped_column(String(12), default="")  # WhatsApp: sent | delivered | read
    requested_by: Mapped[str] = mapped_column(String(120), default="system")
    fallback: Mapped[bool] = mapped_column(default=True)  # a failure moves on to the next channel of the order
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    receipt: Mapped[Receipt] = relationship(lazy="raise", back_populates="deliveries")
    history: Mapped[list[ReceiptAttempt]] = relationship(lazy="selectin", order_by="ReceiptAttempt.number")


class ReceiptAttempt(TenantMixin, UUIDv7AuditBase):
    """One try of a delivery: recorded before the send, finished after it (append-only apart from that)."""

    __tablename__ = "receipt_attempts"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("delivery_id", "number"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("receipt_deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(12), default="sending")  # sending | sent | failed | superseded
    error: Mapped[str] = mapped_column(String(500), default="")
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class ReceiptPrinter(TenantMixin, UUIDv7AuditBase):
    """The network receipt printer (ESC/POS over TCP 9100) of one register."""

    __tablename__ = "receipt_printers"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "register_id"),)

    register_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registers.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=9100)
    paper_mm: Mapped[int] = mapped_column(Integer, default=80)  # 58 | 80


class WhatsAppStatusEvent(TenantMixin, UUIDv7AuditBase):
    """A status callback from the WhatsApp Cloud API, stored once (unique message + status)."""

    __tablename__ = "receipt_whatsapp_events"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("message_id", "status"),)

    message_id: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(12))
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("receipt_deliveries.id", ondelete="CASCADE"))
