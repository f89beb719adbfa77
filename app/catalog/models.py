from __future__ import annotations

import uuid
from typing import Any

from advanced_alchemy.types import JsonB
from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class Category(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "categories"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "slug"),)

    slug: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


class Product(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "products"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "slug"),)

    slug: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id", ondelete="SET NULL"), index=True)
    tax_class: Mapped[str] = mapped_column(String(40), default="standard")
    image: Mapped[str] = mapped_column(String(500), default="")
    is_active: Mapped[bool] = mapped_column(default=True)

    category: Mapped[Category | None] = relationship(lazy="joined")
    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", lazy="selectin", order_by="Variant.position", cascade="all, delete-orphan"
    )


class Variant(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "variants"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("store_id", "sku"),
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
        CheckConstraint("compare_at_minor IS NULL OR compare_at_minor > price_minor", name="compare_at_above_price"),
        CheckConstraint("weight_grams >= 0", name="weight_not_negative"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    price_minor: Mapped[int] = mapped_column(Integer)
    compare_at_minor: Mapped[int | None] = mapped_column(Integer, default=None)
    weight_grams: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)

    product: Mapped[Product] = relationship(back_populates="variants", lazy="raise")

    @property
    def title(self) -> str:
        return " / ".join(str(v) for v in self.options.values()) or "Default"
