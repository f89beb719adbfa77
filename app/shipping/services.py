"""Saving a store's shipping settings: ``stores.settings["shipping"]``, the config the checkout's
``BuiltinShipping`` reads, checked by ``validate_shipping_config``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.rbac import Principal
from app.shipping.form import shipping_settings_from_form
from app.shipping.settings import merged_shipping_config, shipping_config_of, validate_shipping_config
from app.stores.models import Store
from app.stores.services import StoreService

AUDIT_ACTION = "settings.shipping"


class ShippingSettingsService:
    """The signed-in store's shipping settings. Writes through ``StoreService.set_settings`` (event + audit)."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.stores = StoreService(session, store_id)

    async def store(self) -> Store:
        return await self.stores.get()

    async def current(self) -> dict[str, Any]:
        """The config the checkout uses now (the built-in default if the store saved none)."""
        return shipping_config_of((await self.store()).settings)

    async def _write(self, store: Store, config: Mapping[str, Any], actor: Principal | None) -> Store:
        merged = merged_shipping_config(shipping_config_of(store.settings), config)
        return await self.stores.set_settings({"shipping": merged}, actor=actor, action=AUDIT_ACTION)

    async def save(self, payload: Mapping[str, Any], *, actor: Principal | None) -> Store:
        """Check and store a config in ``DEFAULT_SHIPPING_CONFIG``'s shape; the next checkout quote uses it."""
        store = await self.store()
        return await self._write(store, validate_shipping_config(payload, store.currency), actor)

    async def save_form(self, form: Mapping[str, str], *, actor: Principal | None) -> Store:
        """The settings page's form (``app/shipping/form.py``); ``ValidationFailed`` fields are its field names."""
        store = await self.store()
        return await self._write(store, shipping_settings_from_form(form, store.currency), actor)
