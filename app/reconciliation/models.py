"""Reconciliation runs and the drifts they found; the audit of every outbound provider call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class ReconciliationRun(TenantMixin, UUIDv7AuditBase):
    """One comparison of a store's ledger with its provider's over a window; ``totals`` counts by kind."""

    __tablename__ = "reconciliation_runs"
    __store_index__ = False
    __table_args__ = (Index("ix_reconciliation_runs_store_created", "store_id", "created_at"),)

    provider: Mapped[str] = mapped_column(String(20))
    window_start: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[str] = mapped_column(String(12), default="running")  # running | succeeded | failed
    trigger: Mapped[str] = mapped_column(String(160), default="nightly")
    provider_count: Mapped[int] = mapped_column(Integer, default=0)
    local_count: Mapped[int] = mapped_column(Integer, default=0)
    payout_count: Mapped[int] = mapped_column(Integer, default=0)
    totals: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    error: Mapped[str] = mapped_column(String(2000), default="")
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class ReconciliationDrift(TenantMixin, UUIDv7AuditBase):
    """One difference between the ledgers: open until re-synced (``cleared``) or ``resolved`` with a reason."""

    __tablename__ = "reconciliation_drifts"
    __store_index__ = False
    __table_args__ = (Index("ix_reconciliation_drifts_store_run", "store_id", "run_id", "kind"),)

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reconciliation_runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    provider_ref: Mapped[str] = mapped_column(String(120), default="")
    payout_ref: Mapped[str] = mapped_column(String(120), default="")
    intent_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    currency: Mapped[str] = mapped_column(String(3), default="")
    local: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    remote: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    difference_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | cleared | resolved
    resolution: Mapped[str] = mapped_column(String(500), default="")
    resolved_by: Mapped[str] = mapped_column(String(160), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class ProviderCall(TenantMixin, UUIDv7AuditBase):
    """One outbound call to a payment provider, redacted (no secrets, no card data); swept after retention."""

    __tablename__ = "provider_calls"
    __store_index__ = False
    __table_args__ = (
        Index("ix_provider_calls_store_called", "store_id", "called_at"),
        Index("ix_provider_calls_store_ref", "store_id", "provider_ref"),
        Index("ix_provider_calls_called", "called_at"),
    )

    provider: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str] = mapped_column(String(255), default="")
    provider_ref: Mapped[str] = mapped_column(String(120), default="")
    outcome: Mapped[str] = mapped_column(String(20))  # ok | declined | refused | timeout | error
    error_code: Mapped[str] = mapped_column(String(60), default="")
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    correlation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    request: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    response: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    called_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
