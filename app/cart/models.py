from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class Cart(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "carts"
    __store_index__ = False

    token: Mapped[str] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | converted

    lines: Mapped[list[CartLine]] = relationship(
        lazy="selectin", order_by="CartLine.created_at", cascade="all, delete-orphan"
    )


class CartLine(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "cart_lines"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("cart_id", "variant_id"),
        CheckConstraint("quantity > 0 AND quantity <= 999", name="quantity_range"),
    )

    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(Integer)
