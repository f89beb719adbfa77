from __future__ import annotations

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class Customer(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "customers"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "email"),)

    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)  # None: a guest
    stripe_customer_id: Mapped[str] = mapped_column(String(64), default="")  # Stripe's cus_..., made on first use

    @property
    def has_account(self) -> bool:
        return self.password_hash is not None
