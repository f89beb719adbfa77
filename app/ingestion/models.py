"""Ingestion's tables: the store's signing secret, the claim on each client order id, and the attempts log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin

OUTCOMES = ("accepted", "replayed", "rejected")


class IngestionSecret(TenantMixin, UUIDv7AuditBase):
    """A store's HMAC secret for signed order ingestion, AES-GCM encrypted (app/core/encryption.py).

    After a rotation the previous secret keeps verifying until ``previous_valid_until``, so the app can be
    updated without a window of refused orders. Only a hint (``tis_…a1b2``) is ever shown again."""

    __tablename__ = "ingestion_secrets"
    __store_index__ = False  # the unique store_id serves every query
    __table_args__ = (
        UniqueConstraint("store_id"),
        CheckConstraint("key_version >= 1", name="key_version_positive"),
    )

    secret_ciphertext: Mapped[str] = mapped_column(Text)
    previous_ciphertext: Mapped[str | None] = mapped_column(Text, default=None)
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    key_version: Mapped[int] = mapped_column(Integer)
    hint: Mapped[str] = mapped_column(String(40))
    updated_by: Mapped[str] = mapped_column(String(120), default="")
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class IngestedOrder(TenantMixin, UUIDv7AuditBase):
    """The claim on one client order id: at most one order per (store, client_order_id), and the hash of the
    body that made it, so a repeat is told apart from a different order reusing the id."""

    __tablename__ = "ingested_orders"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "client_order_id"),)

    client_order_id: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)


class IngestionAttempt(TenantMixin, UUIDv7AuditBase):
    """One call to POST /webhooks/orders/ingest by an authenticated caller, whatever its answer."""

    __tablename__ = "ingestion_attempts"
    __store_index__ = False
    __table_args__ = (
        Index("ix_ingestion_attempts_store_received", "store_id", "received_at", "id"),
        CheckConstraint("outcome IN ('accepted', 'replayed', 'rejected')", name="outcome_known"),
    )

    client_order_id: Mapped[str] = mapped_column(String(100), default="")
    outcome: Mapped[str] = mapped_column(String(10))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(String(300), default="")
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)  # the lines that differ (prices)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), default=None)
    token_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
