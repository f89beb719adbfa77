"""A media asset: one uploaded file of a product and what the workers made of it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin

# pending: negotiated, bytes not confirmed yet · queued: uploaded and checked, waiting for a worker (or paused)
# processing: a worker has it · ready: derivatives stored · failed: refused or given up, with a reason
STATUSES = ("pending", "queued", "processing", "ready", "failed")
KINDS = ("image", "video")


class MediaAsset(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "media_assets"
    __store_index__ = False
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="media_status_known"),
        CheckConstraint(f"kind IN {KINDS!r}", name="media_kind_known"),
        Index("ix_media_assets_store_product", "store_id", "product_id", "position"),
        Index("ix_media_assets_waiting", "status", postgresql_where=text("status IN ('queued', 'processing')")),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(60), default="")
    declared_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # The original's size and sha256 (kept after the original itself is deleted), and what is stored now.
    original_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    checksum: Mapped[str] = mapped_column(String(64), default="")
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_primary: Mapped[bool] = mapped_column(default=False)
    alt_text: Mapped[str] = mapped_column(String(300), default="")
    # name → {"key", "width", "height", "bytes", "content_type"}; names: thumb|card|full .webp/.jpg, poster, hls, mp4
    derivatives: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    processing_started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    ready_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    @property
    def original_key(self) -> str:
        return f"{self.store_id}/{self.id}/original"


class MediaQuota(TenantMixin, UUIDv7AuditBase):
    """A store's own media limits; a store without a row has the platform's defaults (MEDIA_QUOTA_*)."""

    __tablename__ = "media_quotas"
    __store_index__ = False
    __table_args__ = (
        Index("uq_media_quotas_store", "store_id", unique=True),
        CheckConstraint("max_bytes >= 0 AND max_count >= 0", name="media_quota_not_negative"),
    )

    max_bytes: Mapped[int] = mapped_column(BigInteger)
    max_count: Mapped[int] = mapped_column(Integer)
