from __future__ import annotations

import uuid
from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class Location(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("store_id", "code"),)

    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    is_default: Mapped[bool] = mapped_column(default=False)


class StockLevel(TenantMixin, UUIDv7AuditBase):
    """available = on_hand - reserved; the database refuses to over-reserve."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("variant_id", "location_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
    )  # fillfactor 20, set by migration 0004: room on each page keeps the hot rows' updates HOT

    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"))
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class Reservation(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "stock_reservations"
    __store_index__ = False
    __table_args__ = (
        # the reservations in flight, by holder (completing a checkout) and expiry (the sweeper reads them all):
        # the only index of active ones, so the planner cannot walk one while looking for a holder (migration 0025)
        Index("ix_stock_reservations_active", "holder_id", "expires_at", postgresql_where=text("status = 'active'")),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    holder_id: Mapped[uuid.UUID] = mapped_column()  # the checkout attempt holding it
    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | committed | released
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class StockMovement(TenantMixin, UUIDv7AuditBase):
    """Append-only record of every change to on-hand stock, with its reason."""

    __tablename__ = "stock_movements"

    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))  # received | count | damaged | sale | return | correction
    note: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    reference: Mapped[str] = mapped_column(String(80), default="")
