"""/staff/settings/tax (managers and owners): prices with or without tax, tax classes, their rates per
jurisdiction, the default and shipping classes, exempt products, and a preview of a sample basket.

The page edits the settings the checkout reads (``stores.settings``: ``tax``, ``prices_include_tax``,
``shipping_tax_class``); the preview runs the checkout's own ``BuiltinTax`` on the form's unsaved values.
"""

from __future__ import annotations

import re
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
from app.core.rbac import Role, principal_of, require_role
from app.stores.commerce import CommerceSettings
from app.stores.models import Store
from app.tax.form import row_indexes, tax_form_values, tax_settings_from_form
from app.tax.services import TaxSettingsService
from app.tax.settings import EXEMPT_CLASS, TaxPreview, preview_tax, sample_amounts, validate_tax_settings

FormData = URLEncodedBody[dict[str, str]]
DbSession = NamedDependency[AsyncSession]
PAGE = "/staff/settings/tax"
MANAGER = {"min_role": Role.MANAGER}
_COUNTRY = re.compile(r"[A-Za-z]{2}")


def _preview(settings: Mapping[str, Any] | None, store: Store, requested: str = "") -> tuple[TaxPreview | None, str]:
    """The sample basket for ``requested`` (two letters) or the store's country; or why there is none."""
    country = requested.strip().upper() if _COUNTRY.fullmatch(requested.strip()) else ""
    country = country or CommerceSettings.of(store.settings).country
    if settings is None:
        return None, country
    return preview_tax(settings, store.currency, country), country


class TaxSettingsController(Controller):
    path = PAGE
    guards = [require_role]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        service: TaxSettingsService,
        *,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        preview_settings: Mapping[str, Any] | None,
        status_code: int = 200,
    ) -> Template:
        store = await service.store()
        preview, country = _preview(preview_settings, store, values.get("preview_country", ""))
        return Template(
            "tax/settings.html",
            context={
                "me": principal_of(request),
                "store": store,
                "values": {**values, "preview_country": country},
                "errors": errors,
                "class_rows": row_indexes(values, "classes"),
                "jurisdiction_rows": row_indexes(values, "jurisdictions"),
                "exempt_products": await service.exempt_products(),
                "exempt": EXEMPT_CLASS,
                "preview": preview,
                "preview_country": country,
                "sample_line": sample_amounts(store.currency)[0],
                "sample_shipping": sample_amounts(store.currency)[1],
            },
            status_code=status_code,
        )

    @get("/", opt=MANAGER)
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        service = TaxSettingsService(db_session, principal_of(request).store_id)
        current = await service.current()
        try:
            saved: dict[str, Any] | None = validate_tax_settings(current)
        except ValidationFailed:
            saved = None  # settings written before this page checked them: the form shows what to fix on save
        return await self._page(request, service, values=tax_form_values(current), errors={}, preview_settings=saved)

    @post("/", opt=MANAGER, status_code=303, media_type=MediaType.HTML)
    async def save(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Template | Redirect:
        me = principal_of(request)
        service = TaxSettingsService(db_session, me.store_id)
        try:
            await service.save_form(data, actor=me)
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(
                request, service, values=data, errors=errors, preview_settings=None, status_code=422
            )
        flash(request, "Tax settings saved. New checkouts use them now.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/preview", opt=MANAGER, status_code=200, media_type=MediaType.HTML)
    async def preview(self, request: HTMXRequest, data: FormData, db_session: DbSession) -> Template:
        """The sample basket for the form's unsaved values: the fragment for htmx, else the whole page."""
        service = TaxSettingsService(db_session, principal_of(request).store_id)
        errors: dict[str, str] = {}
        settings: dict[str, Any] | None = None
        try:
            settings, _ = tax_settings_from_form(data)
        except ValidationFailed as exc:
            errors = {"form": "The preview needs valid values: " + exc.detail.lower(), **exc.fields}
        if not request.htmx:
            return await self._page(
                request,
                service,
                values=data,
                errors=errors,
                preview_settings=settings,
                status_code=422 if errors else 200,
            )
        preview, country = _preview(settings, await service.store(), data.get("preview_country", ""))
        return Template(
            "tax/_preview.html",
            context={
                "preview": preview,
                "preview_country": country,
                "problems": sorted({v for k, v in errors.items() if k != "form"}),
            },
        )
