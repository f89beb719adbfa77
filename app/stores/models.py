from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import CheckConstraint, Enum, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import UUIDv7AuditBase
from app.core.rbac import Role
from app.core.tenancy import TenantMixin


def _role_column() -> Any:
    return Enum(Role, native_enum=False, length=16, values_callable=lambda roles: [r.value for r in roles])


class Store(UUIDv7AuditBase):
    __tablename__ = "stores"
    __table_args__ = (
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="slug_format"),
    )

    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    settings: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)


class User(UUIDv7AuditBase):
    """A staff person. One user may work in several stores (see Membership)."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_signed_in_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class Membership(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("store_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_role_column())
    # Set when an owner deactivates this person in this store: their sessions and API tokens stop at once.
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # A manager's POS PIN (argon2 hash): approves a discount over a cashier's limit at the till. None: not set.
    pos_pin_hash: Mapped[str | None] = mapped_column(String(255), default=None)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    store: Mapped[Store] = relationship(lazy="joined", innerjoin=True)


class ApiToken(TenantMixin, UUIDv7AuditBase):
    """An integration's bearer token. Only a SHA-256 of the secret is kept."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_role_column())
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class StaffInvitation(TenantMixin, UUIDv7AuditBase):
    """An owner's invitation to join the store. The link carries a secret; only its SHA-256 is kept.
    Single use (``accepted_at``), expiring (``expires_at``), withdrawable (``revoked_at``)."""

    __tablename__ = "staff_invitations"

    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(_role_column())
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    accepted_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class PasswordReset(TenantMixin, UUIDv7AuditBase):
    """A password-reset link an owner sent a member of their store. Single use, expiring; only a hash kept."""

    __tablename__ = "password_resets"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class StoreLogo(TenantMixin, UUIDv7AuditBase):
    """The store's logo, re-encoded as PNG by Pillow (the storefront header and receipts show it)."""

    __tablename__ = "store_logos"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id"),)

    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
