from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class OutboundMessage(TenantMixin, UUIDv7AuditBase):
    """One message to one recipient and its delivery: pending → sending (an attempt recorded before each send) → sent,
    or → retrying → failed after the last try (app/notifications/services.py)."""

    __tablename__ = "outbound_messages"
    __store_index__ = False
    __table_args__ = (Index("ix_outbound_messages_store_created", "store_id", "created_at"),)

    channel: Mapped[str] = mapped_column(String(20), default="email")
    purpose: Mapped[str] = mapped_column(String(40))  # staff_invitation, password_reset, receipt, ...
    reference: Mapped[str] = mapped_column(String(64), default="")  # the invitation / reset / order id
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|sending|sent|retrying|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    transport: Mapped[str] = mapped_column(String(12), default="")  # smtp | outbox (the dev folder)
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
