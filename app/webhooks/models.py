"""Inbound webhook events (Invariant 5) and the receipts of exactly-once outbox consumers.

``webhook_events`` holds each provider event once (unique provider + event id), written by the intake's
raw INSERT … ON CONFLICT DO NOTHING and moved by the processing job:

    received ──► processing ──► processed
                     │  ▲
                     ▼  │ (SAQ retry, backoff)
                   failed ──► dead (after the last attempt; an admin replays it → received)

``store_id`` is NULL until the event is tied to a store: at intake when the URL names the store
(``/webhooks/stripe/{store_slug}``), else when processing finds the payment or account it is about.
It is not a ``TenantMixin`` table (the column is nullable); every store-facing read filters by it.

``next_attempt_at``: for ``processing`` the end of the worker's lease (after it the sweeper may hand the
event to another job), for ``failed`` when the retry is due.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase

EVENT_STATUSES = ("received", "processing", "processed", "failed", "dead")


class WebhookEventRow(UUIDv7AuditBase):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_webhook_events_provider_event_id"),
        CheckConstraint("status IN ('received', 'processing', 'processed', 'failed', 'dead')", name="status_known"),
        # The admin list: a store's events newest first (keyset on received_at, id), a type or status filtered
        # on the way; the failures an admin looks for have their own small index. Few indexes on purpose: each
        # event is written three times (stored, claimed, processed), and every index is written each time.
        Index("ix_webhook_events_store_received", "store_id", "received_at", "id"),
        Index(
            "ix_webhook_events_store_failures",
            "store_id",
            "received_at",
            postgresql_where=text("status IN ('failed', 'dead')"),
        ),
        # The sweeper: events not finished (small, partial).
        Index(
            "ix_webhook_events_unfinished",
            "received_at",
            postgresql_where=text("status IN ('received', 'processing', 'failed')"),
        ),
    )

    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), default=None)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB)
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(String(12), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(300), default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    processed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class ConsumerReceipt(DefaultBase):
    """One row per (consumer, outbox event) a consumer task has handled: a second delivery is skipped."""

    __tablename__ = "consumer_receipts"

    consumer: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
