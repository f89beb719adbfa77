"""A store's public details (address, contact, colour, logo), its currency and country, and going live.

Kept in ``stores.settings``: ``profile`` (address and contact), ``brand`` (colour, the logo's hash), ``country``,
``live``. The logo's bytes live in ``store_logos``. Currency and country are fixed once the first order exists:
totals, tax and every ledger of that order are in them.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.audit import AuditEntry
from app.core.errors import Conflict, ValidationFailed
from app.core.rbac import Principal
from app.orders.services import first_order_number
from app.shipping.addresses import SUPPORTED_COUNTRIES
from app.stores.commerce import CommerceSettings
from app.stores.models import Store, StoreLogo
from app.stores.onboarding import _CURRENCIES
from app.stores.services import StoreService
from app.tax.defaults import prices_include_tax_for, tax_rules_for_country

PROFILE_FIELDS = ("line1", "line2", "postal_code", "city", "email", "phone")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{4,40}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_BRAND_COLOUR = "#0f766e"

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
LOGO_SIZE = 512  # the stored logo fits in 512×512
_LOGO_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF"})


@dataclass(frozen=True)
class Profile:
    line1: str = ""
    line2: str = ""
    postal_code: str = ""
    city: str = ""
    email: str = ""
    phone: str = ""
    brand_colour: str = DEFAULT_BRAND_COLOUR
    logo_sha: str = ""

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Profile:
        profile = settings.get("profile") or {}
        brand = settings.get("brand") or {}
        return cls(
            **{k: str(profile.get(k, "")) for k in PROFILE_FIELDS},
            brand_colour=str(brand.get("colour") or DEFAULT_BRAND_COLOUR),
            logo_sha=str(brand.get("logo_sha") or ""),
        )

    @property
    def complete(self) -> bool:
        """Enough for shoppers to find and reach the shop: street, city and an e-mail."""
        return bool(self.line1 and self.city and self.email)

    @property
    def address_line(self) -> str:
        city = " ".join(p for p in (self.postal_code, self.city) if p)
        return ", ".join(p for p in (self.line1, self.line2, city) if p)


def validate_profile(values: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The profile dict and the brand colour from a form or JSON; ValidationFailed names each bad field."""
    profile = {k: str(values.get(k, "")).strip() for k in PROFILE_FIELDS}
    colour = str(values.get("brand_colour", "") or DEFAULT_BRAND_COLOUR).strip()
    fields: dict[str, str] = {}
    for key in PROFILE_FIELDS:
        if len(profile[key]) > 200:
            fields[key] = "Use at most 200 characters."
    if not profile["line1"]:
        fields["line1"] = "Enter the street address shoppers come to."
    if not profile["city"]:
        fields["city"] = "Enter the city."
    if not _EMAIL.match(profile["email"]):
        fields["email"] = "Enter the e-mail address shoppers can write to."
    if profile["phone"] and not _PHONE.match(profile["phone"]):
        fields["phone"] = "Enter a phone number such as +46 8 123 456, or leave it empty."
    if not _COLOUR.match(colour):
        fields["brand_colour"] = "Choose a colour such as #0f766e."
    if fields:
        raise ValidationFailed("Check the highlighted fields.", fields=fields)
    profile["email"] = profile["email"].lower()
    return profile, colour.lower()


def normalise_logo(data: bytes) -> bytes:
    """The uploaded image as a PNG of at most 512 by 512 pixels, or ValidationFailed saying why it was refused."""
    refuse = "Upload a PNG, JPEG, WebP or GIF image of up to 2 MB."
    if not data:
        raise ValidationFailed("Choose an image file.", fields={"logo": "Choose an image file."})
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationFailed(refuse, fields={"logo": "This file is larger than 2 MB."})
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice that: refuse those too, before decoding anything.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValidationFailed(refuse, fields={"logo": "This image has too many pixels."}) from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ValidationFailed(refuse, fields={"logo": "This file is not an image we can read."}) from None
    try:
        with probe:
            if probe.format not in _LOGO_FORMATS:
                raise ValidationFailed(refuse, fields={"logo": refuse})
            if probe.width * probe.height > LOGO_MAX_PIXELS:
                raise ValidationFailed(refuse, fields={"logo": "This image has too many pixels."})
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            logo = image.convert("RGBA")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        raise ValidationFailed(refuse, fields={"logo": "This file is not an image we can read."}) from None
    logo.thumbnail((LOGO_SIZE, LOGO_SIZE))
    out = io.BytesIO()
    logo.save(out, format="PNG", optimize=True)
    return out.getvalue()


class StoreDetailsService:
    """The signed-in store's details, logo, currency / country and going live."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.stores = StoreService(session, store_id)

    async def save_profile(self, values: Mapping[str, str], *, actor: Principal | None) -> Store:
        profile, colour = validate_profile(values)
        store = await self.stores.get()
        brand = {**(store.settings.get("brand") or {}), "colour": colour}
        return await self.stores.set_settings(
            {"profile": profile, "brand": brand}, actor=actor, action="settings.details"
        )

    async def locked_reason(self) -> str | None:
        """Why currency and country cannot change any more (the first order), or None while they can."""
        number = await first_order_number(self.session)
        if number is None:
            return None
        return f"Currency and country are fixed once the first order exists (#{number})."

    async def set_currency_and_country(self, currency: str, country: str, *, actor: Principal | None) -> Store:
        store = await self.stores.get()
        currency, country = currency.strip().upper(), country.strip().upper()
        current_country = str(store.settings.get("country", "DE"))
        fields: dict[str, str] = {}
        if currency not in _CURRENCIES:
            fields["currency"] = "Choose a currency such as EUR, SEK or USD."
        if country not in SUPPORTED_COUNTRIES:
            fields["country"] = "Choose the country your shop is in."
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        if currency == store.currency and country == current_country:
            return store
        reason = await self.locked_reason()
        if reason:
            changed = "currency" if currency != store.currency else "country"
            raise Conflict(reason, fields={changed: reason})
        changes: dict[str, Any] = {"country": country}
        if country != current_country and not await self._tax_reviewed():
            # Nobody has edited the tax table yet: it follows the country (a reviewed one is the merchant's).
            changes |= {"tax": tax_rules_for_country(country), "prices_include_tax": prices_include_tax_for(country)}
        if currency != store.currency:
            audit.record(
                self.session, actor, "store.currency_changed", target_type="store", target_id=store.id,
                details={"from": store.currency, "to": currency},
            )  # fmt: skip
            store.currency = currency
        return await self.stores.set_settings(changes, actor=actor, action="settings.country")

    async def _tax_reviewed(self) -> bool:
        return bool(
            await self.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "settings.tax").limit(1))
        )

    async def set_logo(self, data: bytes, *, actor: Principal | None) -> Store:
        png = normalise_logo(data)
        sha = hashlib.sha256(png).hexdigest()
        store = await self.stores.get()
        logo = await self.session.scalar(select(StoreLogo))
        if logo is None:
            self.session.add(StoreLogo(content_type="image/png", data=png, sha256=sha))
        else:
            logo.data, logo.sha256, logo.content_type = png, sha, "image/png"
        brand = {**(store.settings.get("brand") or {}), "logo_sha": sha}
        return await self.stores.set_settings({"brand": brand}, actor=actor, action="settings.logo")

    async def remove_logo(self, *, actor: Principal | None) -> Store:
        store = await self.stores.get()
        logo = await self.session.scalar(select(StoreLogo))
        if logo is not None:
            await self.session.delete(logo)
        brand = {k: v for k, v in (store.settings.get("brand") or {}).items() if k != "logo_sha"}
        return await self.stores.set_settings({"brand": brand}, actor=actor, action="settings.logo")

    async def logo(self) -> StoreLogo | None:
        return await self.session.scalar(select(StoreLogo))

    async def go_live(self, missing: list[str], *, actor: Principal | None) -> Store:
        """Open the storefront to shoppers; refused (naming what is missing) until the required steps are done."""
        if missing:
            raise ValidationFailed(
                "Before going live: " + "; ".join(missing) + ".", fields={"live": "; ".join(missing)}
            )
        return await self.stores.set_settings({"live": True}, actor=actor, action="store.went_live")

    async def pause(self, *, actor: Principal | None) -> Store:
        """Close the storefront again ("opening soon"); orders already placed are unaffected."""
        return await self.stores.set_settings({"live": False}, actor=actor, action="store.paused")


def is_live(store: Store) -> bool:
    """Stores made before onboarding existed (no ``live`` key, like the demo) are live."""
    return CommerceSettings.of(store.settings).live
