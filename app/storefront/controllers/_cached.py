"""Shop pages rendered once and served many times (app/storefront/cache.py): the handler's side.

The fast lane (app/storefront/fast.py) answers most requests from a cached entry before they reach a handler;
what gets here renders a new entry (or, for a request with a session, serves the entry with that shopper's
parts). A store in preview and a request with a flash message to show are rendered the ordinary way, uncached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.response import Template
from litestar.utils.scope.state import ScopeState
from sqlalchemy.ext.asyncio import AsyncSession

from app.cart.services import CartService
from app.shipping.providers import BuiltinShipping
from app.storefront.cache import (
    CSRF_INPUT,
    CSRF_MARK,
    REFRESH_SCOPE_KEY,
    CountMark,
    Entry,
    PageCache,
    serve,
    usable,
)
from app.storefront.controllers._common import cart_token, is_htmx, open_status, shop_context
from app.storefront.fast import page_key
from app.stores.details import is_live
from app.stores.models import Store

log = structlog.get_logger(__name__)

PAGE_SIZE = 48


async def _render_entry(
    request: Request[Any, Any, Any],
    store: Store,
    template: str,
    page_context: Callable[[], Awaitable[dict[str, Any]]],
    cache: PageCache,
    key: tuple[str, bytes, str],
    version: int | None,
) -> Entry:
    context = {
        "store": store,
        "cart": CountMark(),
        "customer_id": None,
        "methods": BuiltinShipping.from_settings(store.settings, store.currency),
        "preview": False,
        "open_status": open_status(store),
    }
    context.update(await page_context())
    body = render_anonymous(request, template, context)
    is_page = not template.rsplit("/", 1)[-1].startswith("_")
    if version is None:  # Redis away: serve this render, keep nothing
        return Entry.build(store.id, -1, body, page=is_page)
    return cache.put(key, store.id, version, body, page=is_page)


def render_anonymous(request: Request[Any, Any, Any], template: str, context: dict[str, Any]) -> str:
    """``template`` as any shopper sees it: the CSRF token and cart count are marks, no flash messages."""
    state = ScopeState.from_scope(request.scope)
    token = state.csrf_token
    state.csrf_token = CSRF_MARK
    try:
        engine = request.app.template_engine
        assert engine is not None
        return str(engine.get_template(template).render(**context, request=request, csrf_input=CSRF_INPUT))
    finally:
        state.csrf_token = token


async def cached_page(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    store: Store,
    template: str,
    page_context: Callable[[], Awaitable[dict[str, Any]]],
) -> Response[Any]:
    session = request.scope.get("session")
    flashes = isinstance(session, dict) and bool(session.get("_messages"))
    if not is_live(store) or flashes:  # a staff preview, or a message for this shopper: render it for them alone
        context = await shop_context(request, db_session, store)
        context.update(await page_context())
        return Template(template, context=context, headers={"cache-control": "no-store"})
    redis = request.app.state.redis
    version: int | None
    cache = PageCache.of(request.app.state)
    try:
        version = await cache.versions.get(redis, store.id)  # before reading the catalog (see cache.py)
    except Exception:
        log.warning("storefront.version_unreadable", store_id=str(store.id), exc_info=True)
        version = None
    key = page_key(
        request.scope["path"], request.scope["query_string"], is_htmx(request), request.headers.get("hx-target") or ""
    )
    entry = cache.get(key)
    refresh = bool(request.scope.get(REFRESH_SCOPE_KEY))
    if refresh or entry is None or version is None or not usable(entry, version, time.monotonic()):
        waiting = cache.rendering.get(key) if version is not None and not refresh else None
        found = await asyncio.shield(waiting) if waiting is not None else None
        # a render that began under an older version may hold an older price: render again
        entry = found if found is not None and version is not None and found.version >= version else None
    if entry is None:
        mine: asyncio.Future[Entry | None] = asyncio.get_running_loop().create_future()
        if version is not None:
            cache.rendering[key] = mine
        try:
            entry = await _render_entry(request, store, template, page_context, cache, key, version)
        finally:
            mine.set_result(entry)
            if cache.rendering.get(key) is mine:
                del cache.rendering[key]
    token = ScopeState.from_scope(request.scope).csrf_token
    count = 0
    if entry.page and cart_token(request):
        count = (await CartService(db_session, store.id, store.currency).view(cart_token(request))).count
    served = serve(
        entry,
        csrf_token=token if isinstance(token, str) else "",
        cart_count=count,
        if_none_match=request.headers.get("if-none-match", ""),
    )
    headers = {name.decode(): value.decode() for name, value in served.headers if name != b"content-length"}
    headers.pop("content-type", None)
    return Response(served.body, status_code=served.status, headers=headers, media_type=MediaType.HTML)
