from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from app.core.rbac import Role
from app.stores.commerce import CommerceSettings
from app.stores.models import ApiToken, Store


class StoreOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    slug: str
    currency: str
    timezone: str
    board_delay_minutes: int  # a board card sitting longer than this in one status is marked delayed
    # Refunds over this (minor units) by someone below manager wait for a manager's approval; null: never.
    refund_approval_threshold_minor: int | None

    @classmethod
    def of(cls, store: Store) -> StoreOut:
        return cls(
            id=store.id,
            name=store.name,
            slug=store.slug,
            currency=store.currency,
            timezone=store.timezone,
            board_delay_minutes=CommerceSettings.of(store.settings).board_delay_minutes,
            refund_approval_threshold_minor=CommerceSettings.of(store.settings).refund_approval_threshold_minor,
        )


class StoreUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    timezone: str | None = None
    board_delay_minutes: int | None = None
    # Omit to keep it; null removes the threshold (no approval needed).
    refund_approval_threshold_minor: int | msgspec.UnsetType | None = msgspec.UNSET


class ApiTokenOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    prefix: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> ApiTokenOut:
        return cls(
            id=token.id,
            name=token.name,
            prefix=token.prefix,
            role=Role(token.role),
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )


class ApiTokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: Role = Role.STAFF


class ApiTokenIssued(msgspec.Struct):
    token: ApiTokenOut
    secret: str
    """The bearer secret. Shown this once; Till keeps only its hash."""
