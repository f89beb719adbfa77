"""The storefront's fast lane: a cached shop page answered before the session, access and idempotency layers.

Only routes marked ``opt={PAGE_OPT: True}`` (the home grid, the product page) and only ``GET``. The session is
not loaded: nothing on these pages depends on it (the signed-in shopper is not named in the shop's header, a
staff preview of a store that is not live is never cached, and no flow redirects to these pages with a flash
message; the handler renders a page with one uncached). Browsing cached pages does not extend the session's
12-hour lifetime. It runs inside the correlation id and security headers middleware, so those headers are on
every answer. On any doubt (no entry, another catalog version, too old,
Redis unreachable) it hands the request to the handler, which renders and files a new entry.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from typing import Any

import structlog
from litestar.datastructures import Cookie
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from app.cart.services import cart_view
from app.core import pg
from app.storefront.cache import (
    PAGE_OPT,
    REFRESH_SCOPE_KEY,
    PageCache,
    new_csrf_token,
    serve,
    usable,
    wants_refresh,
)

log = structlog.get_logger(__name__)
CSRF_COOKIE = "till_csrf"
_TOKEN = re.compile(r"[0-9a-f]{32,256}")
CART_COOKIE = "till_cart"


def _cookies(raw: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in raw.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            found[name] = value.strip('"')
    return found


def page_key(path: str, query: bytes, hx_request: bool, hx_target: str) -> tuple[str, bytes, str]:
    return (path, query, hx_target if hx_request else "")


async def cart_count(engine: Any, store_id: uuid.UUID, token: str) -> int:
    async with pg.connection(engine) as conn:
        return (await cart_view(conn, store_id, "", token)).count


_refreshes: set[asyncio.Task[None]] = set()  # background re-renders under way (a reference keeps them alive)
_KEPT_HEADERS = (b"host", b"hx-request", b"hx-target")
_REFRESH_COOKIE = b"till_session=" + secrets.token_hex(32).encode()


async def _refresh(app: Any, scope: Scope) -> None:
    """Re-render a cached page in the background: the same GET through the whole app, anonymous (only the headers
    that pick the page), marked so the fast lane passes it on and the handler renders and files a new entry."""
    inner: dict[str, Any] = {
        "type": "http",
        "asgi": scope.get("asgi", {"version": "3.0"}),
        "http_version": "1.1",
        "method": "GET",
        "scheme": scope.get("scheme", "http"),
        "path": scope["path"],
        "raw_path": scope.get("raw_path", scope["path"].encode()),
        "query_string": scope["query_string"],
        "root_path": scope.get("root_path", ""),
        # one throwaway session per process (the session layer stores even an empty one: without a cookie each
        # refresh would leave a new key in Redis for 12 hours)
        "headers": [*((k, v) for k, v in scope["headers"] if k in _KEPT_HEADERS), (b"cookie", _REFRESH_COOKIE)],
        "client": scope.get("client"),
        "server": scope.get("server"),
        "state": {},
        REFRESH_SCOPE_KEY: True,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    try:
        await app(inner, receive, send)
    except Exception:  # the entry simply ages out; the next request renders
        log.warning("storefront.refresh_failed", path=scope["path"], exc_info=True)


class StorefrontCacheMiddleware(ASGIMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        if (
            scope.get("method") != "GET"
            or handler is None
            or not handler.opt.get(PAGE_OPT)
            or scope.get(REFRESH_SCOPE_KEY)
        ):
            await next_app(scope, receive, send)
            return
        cookie_header = if_none_match = hx_target = ""
        hx_request = False
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie_header = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"hx-request":
                hx_request = value == b"true"
            elif name == b"hx-target":
                hx_target = value.decode("latin-1")
        app = scope["litestar_app"]
        config = app.csrf_config
        assert config is not None  # create_app sets it
        cache = PageCache.of(app.state)
        entry = cache.get(page_key(scope["path"], scope["query_string"], hx_request, hx_target))
        if entry is None:
            cache.misses += 1
            await next_app(scope, receive, send)
            return
        try:
            version = await cache.versions.get(app.state.redis, entry.store_id)
        except Exception:  # Redis away: the handler decides (it renders without caching)
            await next_app(scope, receive, send)
            return
        now = time.monotonic()
        if not usable(entry, version, now):
            cache.misses += 1
            await next_app(scope, receive, send)
            return
        cache.hits += 1
        if wants_refresh(entry, now):
            task = asyncio.create_task(_refresh(app, scope))
            _refreshes.add(task)
            task.add_done_callback(_refreshes.discard)
        cookies = _cookies(cookie_header) if cookie_header else {}
        token = cookies.get(CSRF_COOKIE, "")
        if not _TOKEN.fullmatch(token):
            token = ""  # not one of ours (they are hex): a new one replaces it
        new_token = not token and entry.page  # a fragment carries no token; its page set the cookie
        if new_token:
            token = new_csrf_token(config.secret)
        count = 0
        if entry.page and cookies.get(CART_COOKIE):
            count = await cart_count(app.state.engine, entry.store_id, cookies[CART_COOKIE])
        served = serve(entry, csrf_token=token, cart_count=count, if_none_match=if_none_match)
        headers = served.headers
        if new_token:
            cookie = Cookie(
                key=config.cookie_name,
                value=token,
                path=config.cookie_path,
                secure=config.cookie_secure,
                httponly=config.cookie_httponly,
                samesite=config.cookie_samesite,
                domain=config.cookie_domain,
            )
            headers = [*headers, (b"set-cookie", cookie.to_header(header="").encode("latin-1"))]
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": served.status, "headers": headers}
        await send(start)
        body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": served.body, "more_body": False}
        await send(body)
