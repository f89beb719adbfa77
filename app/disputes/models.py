"""A dispute a cardholder opened against a payment, and the evidence staff gather to answer it."""

from __future__ import annotations

import uuid
from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin

# Stripe's dispute statuses. ``warning_*`` are inquiries (no money withdrawn yet); the closed ones never reopen.
OPEN_STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "needs_response",
    "under_review",
    "appeal_needs_response",
    "appeal_under_review",
)
CLOSED_STATUSES = ("won", "lost", "warning_closed", "prevented")
DISPUTE_STATUSES = OPEN_STATUSES + CLOSED_STATUSES
EVIDENCE_KINDS = ("note", "file")


class Dispute(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "disputes"
    __store_index__ = False  # ix_disputes_store_status serves every listing
    __table_args__ = (
        UniqueConstraint("provider", "provider_dispute_id"),
        Index("ix_disputes_store_status", "store_id", "status", "due_by"),
    )

    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    intent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_intents.id", ondelete="RESTRICT"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_dispute_id: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(40), default="general")
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # The provider's fees for the dispute, as its balance transactions state them (net of any returned).
    fee_minor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(30))
    due_by: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # When the cardholder opened it (the provider's ``created``), and the provider time of the newest event
    # applied: an older event arriving late changes nothing.
    opened_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_event_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    evidence_submitted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    submitted_by: Mapped[str] = mapped_column(String(120), default="")
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    outcome: Mapped[str] = mapped_column(String(20), default="")  # won | lost | warning_closed | prevented
    ledger_tx_id: Mapped[uuid.UUID | None] = mapped_column(default=None)  # the ledger row of a lost dispute

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def can_submit(self) -> bool:
        """Evidence can still be added and sent: open, not yet submitted."""
        return self.is_open and self.evidence_submitted_at is None


class DisputeEvidence(TenantMixin, UUIDv7AuditBase):
    """A note or a file added to a dispute's evidence pack (never changed; gone only with its store)."""

    __tablename__ = "dispute_evidence"
    __store_index__ = False  # reached through its dispute

    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # note | file
    text: Mapped[str] = mapped_column(Text, default="")
    # A file: stored under settings.data_dir / "evidence" / <store id> / <file_path>; the name is ours.
    file_path: Mapped[str] = mapped_column(String(200), default="")
    original_name: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="")
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    added_by: Mapped[str] = mapped_column(String(120))
    added_by_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
