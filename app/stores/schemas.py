from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from app.core.rbac import Role
from app.shipping.providers import DEFAULT_SHIPPING_CONFIG
from app.stores.commerce import CommerceSettings
from app.stores.details import DEFAULT_BRAND_COLOUR, Profile
from app.stores.models import ApiToken, Store
from app.tax.settings import tax_payload_of


class StoreDetails(msgspec.Struct, forbid_unknown_fields=True):
    """What shoppers see: the shop's address and contact, and the storefront's colour (``#rrggbb``)."""

    line1: str
    city: str
    email: str
    line2: str = ""
    postal_code: str = ""
    phone: str = ""
    brand_colour: str = DEFAULT_BRAND_COLOUR


class StoreOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    slug: str
    currency: str  # ISO-4217; fixed once the first order exists
    country: str  # ISO-3166 alpha-2; fixed once the first order exists
    timezone: str
    live: bool  # false: the storefront says "opening soon" and no quote is given
    board_delay_minutes: int  # a board card sitting longer than this in one status is marked delayed
    # Refunds over this (minor units) by someone below manager wait for a manager's approval; null: never.
    refund_approval_threshold_minor: int | None
    details: StoreDetails | None  # null until set
    # {"prices_include_tax": bool, "shipping_tax_class": str, "rules": {"default_class": str, "classes": [str],
    #  "jurisdictions": [{"country": "SE", "region": "", "name": "Moms", "rates": {"standard": 2500}}]}}
    # rates in basis points (2500 = 25 %); the class "exempt" is never taxed.
    tax: dict[str, Any]
    # {"pickup": {...}, "flat": {...}, "free_over_minor": int|null, "zones": [...], "local_delivery": {...}}
    shipping: dict[str, Any]
    # {"weekly": {"mon": [["08:00", "18:00"]], ...}, "closed_dates": ["2026-12-24"],
    #  "pickup": {"lead_minutes": 30, "interval_minutes": 15, "days_ahead": 7}}; null: always open
    hours: dict[str, Any] | None

    @classmethod
    def of(cls, store: Store) -> StoreOut:
        commerce = CommerceSettings.of(store.settings)
        profile = Profile.of(store.settings)
        return cls(
            id=store.id,
            name=store.name,
            slug=store.slug,
            currency=store.currency,
            country=commerce.country,
            timezone=store.timezone,
            live=commerce.live,
            board_delay_minutes=commerce.board_delay_minutes,
            refund_approval_threshold_minor=commerce.refund_approval_threshold_minor,
            details=StoreDetails(
                line1=profile.line1,
                line2=profile.line2,
                postal_code=profile.postal_code,
                city=profile.city,
                email=profile.email,
                phone=profile.phone,
                brand_colour=profile.brand_colour,
            )
            if profile.complete
            else None,
            tax=tax_payload_of(store.settings),
            shipping=dict(store.settings.get("shipping", DEFAULT_SHIPPING_CONFIG)),
            hours=store.settings.get("hours"),
        )


class StoreUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Every field is optional: what is omitted stays. Currency, country and live need the owner role."""

    name: str | None = None
    timezone: str | None = None
    board_delay_minutes: int | None = None
    # Omit to keep it; null removes the threshold (no approval needed).
    refund_approval_threshold_minor: int | msgspec.UnsetType | None = msgspec.UNSET
    details: StoreDetails | None = None
    currency: str | None = None
    country: str | None = None
    tax: dict[str, Any] | None = None  # the shape StoreOut.tax shows
    shipping: dict[str, Any] | None = None  # the shape StoreOut.shipping shows; amounts in minor units
    hours: dict[str, Any] | None = None  # the shape StoreOut.hours shows
    live: bool | None = None  # true opens the storefront (refused until details and a product exist)


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
