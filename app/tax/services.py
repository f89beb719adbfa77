"""Saving a store's tax settings: the keys the checkout reads (``tax``, ``prices_include_tax``,
``shipping_tax_class``), checked by ``validate_tax_settings`` and against the store's products."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Product
from app.catalog.services import CatalogService
from app.core.errors import ValidationFailed
from app.core.rbac import Principal
from app.stores.models import Store
from app.stores.services import StoreService
from app.tax.form import read_tax_form
from app.tax.settings import CHECK_FIELDS, EXEMPT_CLASS, tax_classes_of, tax_payload_of, validate_tax_settings

AUDIT_ACTION = "settings.tax"
NAMED_PRODUCTS = 5  # an error names this many products, then "and N more"


def _products_named(products: list[Product]) -> str:
    names = [f"“{p.name}”" for p in products[:NAMED_PRODUCTS]]
    more = len(products) - NAMED_PRODUCTS
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


class TaxSettingsService:
    """The signed-in store's tax settings. Writes through ``StoreService.set_settings`` (event + audit)."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.stores = StoreService(session, store_id)
        self.catalog = CatalogService(session, store_id)

    async def store(self) -> Store:
        return await self.stores.get()

    async def current(self) -> dict[str, Any]:
        """The store's tax settings in ``validate_tax_settings``'s shape (the built-in defaults if none saved)."""
        return tax_payload_of((await self.store()).settings)

    async def exempt_products(self) -> list[Product]:
        return await self.catalog.products_with_tax_class([EXEMPT_CLASS])

    async def check(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``validate_tax_settings`` plus the products: a class still used by a product can't go away.
        Every problem at once, as ``ValidationFailed`` fields by dotted path (``rules.classes.reduced``)."""
        fields: dict[str, str] = {}
        settings: dict[str, Any] | None = None
        try:
            settings = validate_tax_settings(payload)
        except ValidationFailed as exc:
            fields.update(exc.fields)
        rules = payload.get("rules") if isinstance(payload, Mapping) else None
        kept = settings["tax"]["classes"] if settings else tax_classes_of(rules) if isinstance(rules, Mapping) else []
        current = tax_classes_of(tax_payload_of((await self.store()).settings)["rules"])
        for tax_class in [c for c in current if c not in kept]:
            if products := await self.catalog.products_with_tax_class([tax_class]):
                fields[f"rules.classes.{tax_class}"] = (
                    f"“{tax_class}” is used by {_products_named(products)}. Give "
                    f"{'them' if len(products) > 1 else 'it'} another class first."
                )
        if fields or settings is None:
            raise ValidationFailed(CHECK_FIELDS, fields=fields)
        return settings

    async def save(self, payload: Mapping[str, Any], *, actor: Principal | None) -> Store:
        """Check and store the settings (``validate_tax_settings``'s shape); the next checkout quote uses them."""
        settings = await self.check(payload)
        return await self.stores.set_settings(settings, actor=actor, action=AUDIT_ACTION)

    async def save_form(self, form: Mapping[str, str], *, actor: Principal | None) -> Store:
        """The settings page's form (``app/tax/form.py``); ``ValidationFailed`` fields are its field names."""
        reading = read_tax_form(form)
        try:
            settings = await self.check(reading.payload)
        except ValidationFailed as exc:
            raise ValidationFailed(CHECK_FIELDS, fields=reading.form_errors(exc.fields)) from exc
        if reading.errors:
            raise ValidationFailed(CHECK_FIELDS, fields=reading.errors)
        return await self.stores.set_settings(settings, actor=actor, action=AUDIT_ACTION)
