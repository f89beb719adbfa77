"""The storefront's outbox consumer (registered in ``workers/settings.py``): a catalog event bumps the store's page
cache version. The committing web process bumps it already (app/storefront/cache.py); this covers writers that
are not a web process (a worker, a script, an import) and a bump lost to a Redis hiccup."""

from __future__ import annotations

from typing import Any

from app.core.outbox import register_consumer
from app.storefront.cache import CATALOG_EVENTS, bump

CONSUMER = "storefront_catalog_changed"


async def storefront_catalog_changed(ctx: Any, *, event: dict[str, Any]) -> str:
    """A catalog, price, image or store detail change: shop pages cached before it are not served again."""
    await bump(ctx["redis"], [event["store_id"]])
    return "bumped"


for _event in sorted(CATALOG_EVENTS):
    register_consumer(_event, CONSUMER)

__all__ = ["storefront_catalog_changed"]
