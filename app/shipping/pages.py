"""/staff/settings/shipping (managers and owners): pickup, flat rate, the free-shipping threshold, zones with
weight-priced rates, local delivery by postal code, and a preview of the rates a sample address gets.

The page edits ``stores.settings["shipping"]``, the config the checkout's ``BuiltinShipping`` reads; the
preview runs that same provider on the form's unsaved values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import URLEncodedBody
from litestar.plugins.flash import flash
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.money import amount_text
from app.core.rbac import Role, principal_of, require_role
from app.shipping.addresses import SUPPORTED_COUNTRIES
from app.shipping.form import (
    bracket_rows,
    read_preview,
    shipping_form_values,
    shipping_settings_from_form,
    zone_rows,
)
from app.shipping.providers import ShippingRate
from app.shipping.services import ShippingSettingsService
from app.shipping.settings import preview_shipping, validate_shipping_config
from app.stores.commerce import CommerceSettings
from app.stores.models import Store

FormData = URLEncodedBody[dict[str, str]]
DbSession = NamedDependency[AsyncSession]
PAGE = "/staff/settings/shipping"
MANAGER = {"min_role": Role.MANAGER}


def _preview(
    config: Mapping[str, Any] | None, store: Store, form: Mapping[str, str]
) -> tuple[list[ShippingRate] | None, dict[str, str], dict[str, str]]:
    """(rates or None, the preview's values, its errors) for the sample address and basket in ``form``."""
    inputs, errors = read_preview(form, store.currency, CommerceSettings.of(store.settings).country)
    values = {
        "preview_country": inputs.country,
        "preview_postal_code": inputs.postal_code,
        "preview_weight": str(inputs.weight_grams) if "preview_weight" not in errors else form["preview_weight"],
        "preview_subtotal": amount_text(inputs.subtotal_minor, store.currency)
        if "preview_subtotal" not in errors
        else form["preview_subtotal"],
    }
    if config is None or errors:
        return None, values, errors
    rates = preview_shipping(
        config,
        store.currency,
        country=inputs.country,
        postal_code=inputs.postal_code,
        weight_grams=inputs.weight_grams,
        subtotal_minor=inputs.subtotal_minor,
    )
    return rates, values, errors


class ShippingSettingsController(Controller):
    path = PAGE
    guards = [require_role]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        store: Store,
        *,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        preview_config: Mapping[str, Any] | None,
        status_code: int = 200,
    ) -> Template:
        rates, preview_values, preview_errors = _preview(preview_config, store, values)
        zones = zone_rows(values)
        return Template(
            "shipping/settings.html",
            context={
                "me": principal_of(request),
                "store": store,
                "values": {**values, **preview_values},
                "errors": {**errors, **preview_errors},
                "zones": [(i, bracket_rows(values, i)) for i in zones],
                "supported": sorted(SUPPORTED_COUNTRIES),
                "example": amount_text(490, store.currency),
                "rates": rates,
                "preview_values": preview_values,
            },
            status_code=status_code,
        )

    @get("/", opt=MANAGER)
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        service = ShippingSettingsService(db_session, principal_of(request).store_id)
        store = await service.store()
        current = await service.current()
        try:
            saved: dict[str, Any] | None = validate_shipping_config(current, store.currency)
        except ValidationFailed:
            saved = None  # a config saved before this page checked it: saving shows what to fix
        values = shipping_form_values(current, store.currency)
        return await self._page(request, store, values=values, errors={}, preview_config=saved)

    @post("/", opt=MANAGER, status_code=303, media_type=MediaType.HTML)
    async def save(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Template | Redirect:
        me = principal_of(request)
        service = ShippingSettingsService(db_session, me.store_id)
        try:
            await service.save_form(data, actor=me)
        except ValidationFailed as exc:
            store = await service.store()
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(request, store, values=data, errors=errors, preview_config=None, status_code=422)
        flash(request, "Shipping settings saved. New checkouts offer these options now.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/preview", opt=MANAGER, status_code=200, media_type=MediaType.HTML)
    async def preview(self, request: HTMXRequest, data: FormData, db_session: DbSession) -> Template:
        """The rates for the form's unsaved values: the fragment for htmx, else the whole page."""
        store = await ShippingSettingsService(db_session, principal_of(request).store_id).store()
        errors: dict[str, str] = {}
        config: dict[str, Any] | None = None
        try:
            config = shipping_settings_from_form(data, store.currency)
        except ValidationFailed as exc:
            errors = {"form": "The preview needs valid values: " + exc.detail.lower(), **exc.fields}
        if not request.htmx:
            return await self._page(
                request, store, values=data, errors=errors, preview_config=config, status_code=422 if errors else 200
            )
        rates, preview_values, preview_errors = _preview(config, store, data)
        problems = sorted({v for k, v in {**errors, **preview_errors}.items() if k != "form"})
        return Template(
            "shipping/_preview.html",
            context={"rates": rates, "preview_values": preview_values, "problems": problems},
        )
