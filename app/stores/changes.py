"""``PATCH /api/v1/store``: one call changes any of the store's settings through the same rules as the pages.

Each section is checked by its own domain (tax, shipping, hours, details); every problem of every section is
answered at once, with the section's name in front of the field (``tax.rules.jurisdictions.0.country``), and
nothing is written unless all of it is right (the request is one transaction)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import PermissionDenied, TillError, ValidationFailed
from app.core.rbac import Principal, Role
from app.shipping.settings import validate_shipping_config
from app.stores.details import StoreDetailsService
from app.stores.hours import parse_hours
from app.stores.models import Store
from app.stores.schemas import StoreUpdate
from app.stores.services import StoreService
from app.stores.setup import checklist, missing_to_go_live
from app.tax.settings import validate_tax_settings


def _threshold_change(value: int | msgspec.UnsetType | None) -> int | str | None:
    """The API's field for the service: omitted → keep (None), null → remove (""), a number → set."""
    if isinstance(value, msgspec.UnsetType):
        return None
    return "" if value is None else value


async def apply_store_changes(session: AsyncSession, me: Principal, data: StoreUpdate) -> Store:
    stores = StoreService(session, me.store_id)
    details = StoreDetailsService(session, me.store_id)
    store = await stores.get()
    owner_only = [
        name for name in ("currency", "country", "live") if getattr(data, name) is not None
    ]  # money and opening the shop are the owner's
    if owner_only and not me.can(Role.OWNER):
        raise PermissionDenied(f"Changing {', '.join(owner_only)} needs the owner role.")
    errors: dict[str, str] = {}
    first: list[TillError] = []

    async def section(prefix: str, change: Callable[[], Awaitable[Any]]) -> None:
        try:
            await change()
        except ValidationFailed as exc:
            fields = exc.fields or {"": exc.detail}
            errors.update({(f"{prefix}.{k}" if prefix and k else prefix or k): v for k, v in fields.items()})
        except TillError as exc:
            first.append(exc)

    async def general() -> None:
        await stores.update(
            name=data.name,
            timezone=data.timezone,
            board_delay_minutes=data.board_delay_minutes,
            refund_approval_threshold=_threshold_change(data.refund_approval_threshold_minor),
        )

    await section("", general)
    if data.details is not None:
        profile = msgspec.structs.asdict(data.details)
        await section("details", lambda: details.save_profile(profile, actor=me))
    if data.currency is not None or data.country is not None:
        currency = data.currency if data.currency is not None else store.currency
        country = data.country if data.country is not None else str(store.settings.get("country", "DE"))
        await section("", lambda: details.set_currency_and_country(currency, country, actor=me))
    if data.tax is not None:
        tax = data.tax

        async def save_tax() -> None:
            await stores.set_settings(validate_tax_settings(tax), actor=me, action="settings.tax")

        await section("tax", save_tax)
    if data.shipping is not None:
        shipping = data.shipping

        async def save_shipping() -> None:
            config = validate_shipping_config(shipping, store.currency)
            await stores.set_settings({"shipping": config}, actor=me, action="settings.shipping")

        await section("shipping", save_shipping)
    if data.hours is not None:
        hours = data.hours

        async def save_hours() -> None:
            await stores.set_settings({"hours": parse_hours(hours)}, actor=me, action="settings.hours")

        await section("hours", save_hours)
    if first:
        raise first[0]
    if errors:
        raise ValidationFailed("Check the highlighted fields.", fields=errors)
    if data.live is True:
        missing = missing_to_go_live(await checklist(session, await stores.get()))
        await details.go_live(missing, actor=me)
    elif data.live is False:
        await details.pause(actor=me)
    return await stores.get()
