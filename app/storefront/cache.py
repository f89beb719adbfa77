"""Render once, serve many: the storefront's anonymous pages cached per store, per path and per query.

A cached page is the page as any shopper sees it, with two marks where the per-shopper parts go (the CSRF token
and the cart count). Serving it fills those in (a byte replace), so nothing of one shopper is ever shown to
another. Freshness (docs/scaling.md, "Storefront cache"):

- Prices and the catalog: every entry remembers the store's **catalog version** (a Redis counter) it was built
  under, and each request reads the current version (one Redis GET) before it serves an entry. A transaction
  that emits a catalog event (``product.saved``, ``store.updated``, ...) bumps the counter inside its commit
  call (``after_commit``, before the response goes out), and the outbox relay bumps it again through
  ``app.storefront.jobs`` (for writers outside a web process). A handler reads the version *before* it reads
  the catalog, so an entry can only ever be filed under a version older than the data in it, never newer.
- Stock badges and the opening hours line: an entry is served for at most ``MAX_AGE_S`` (1 s) after it was
  built, so they lag by at most a second. Past ``REFRESH_AGE_S`` the fast lane re-renders it in the background
  while it keeps serving it; requests that find no usable entry wait for one render per key (no stampede).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from litestar.middleware.csrf import generate_csrf_token
from markupsafe import Markup
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

log = structlog.get_logger(__name__)

MAX_AGE_S = 1.0  # no entry is served older than this: the stock badges' lag
REFRESH_AGE_S = 0.5  # from this age one request re-renders while the others still get the entry
MAX_ENTRIES = 1000  # per web process (a page is ~5-40 KB); least recently used first out
CSRF_MARK = "tillcsrf0000mark0000tillcsrf"  # survives HTML escaping; never a real token (those are hex)
COUNT_MARK = "<!--till:cart-count-->"
CSRF_INPUT = f'<input type="hidden" name="_csrf_token" value="{CSRF_MARK}" />'
PAGE_OPT = "storefront_page"  # route handler opt: the middleware may answer this route from the cache
REFRESH_SCOPE_KEY = "till_page_refresh"  # ASGI scope mark of a background re-render (no client can set it)

# Outbox event types that change what a shop page shows (prices, names, images, the store's own details).
CATALOG_EVENTS = frozenset({"product.saved", "product.deleted", "category.saved", "store.updated", "media.uploaded"})


def version_key(store_id: uuid.UUID | str) -> str:
    return f"till:catalog-version:{store_id}"


async def catalog_version(redis: Redis, store_id: uuid.UUID | str) -> int:
    raw = await redis.get(version_key(store_id))
    return int(raw) if raw else 0


class VersionReads:
    """Catalog version reads shared by the requests that arrive together: the first request of a batch schedules
    one ``GET``; every request that arrives before that ``GET`` is sent joins it. The ``GET`` is sent after each
    of them arrived, so each sees a version at least as new as any commit before its arrival (the guarantee a
    ``GET`` of its own gives), at one Redis round trip per batch instead of per request."""

    def __init__(self) -> None:
        self.batches: dict[str, asyncio.Future[int]] = {}
        self.reading: set[asyncio.Task[None]] = set()  # a reference keeps each read alive

    async def get(self, redis: Redis, store_id: uuid.UUID | str) -> int:
        key = version_key(store_id)
        batch = self.batches.get(key)
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self.batches[key] = loop.create_future()
            batch.add_done_callback(_retrieved)
            task = loop.create_task(self._read(redis, key, batch))
            self.reading.add(task)
            task.add_done_callback(self.reading.discard)
        return await asyncio.shield(batch)

    async def _read(self, redis: Redis, key: str, batch: asyncio.Future[int]) -> None:
        del self.batches[key]  # before the GET goes out: later arrivals start the next batch
        try:
            raw = await redis.get(key)
        except Exception as exc:
            batch.set_exception(exc)
        else:
            batch.set_result(int(raw) if raw else 0)


def _retrieved(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()  # a failed read is each waiter's to handle; none left is not an error


async def bump(redis: Redis, store_ids: Iterable[uuid.UUID | str]) -> None:
    pipe = redis.pipeline(transaction=False)
    for store_id in store_ids:
        pipe.incr(version_key(store_id))
    await pipe.execute()


# ---- bump on commit -----------------------------------------------------------------------------------------
# The Redis of each database (by URL), so a committing session finds where to bump: registered by the web app's and
# the worker's startup, with the event loop their client belongs to. By URL, not engine: a script or test session
# on the same database bumps too (on its own short-lived client when its loop has none).
_redis_of_database: dict[str, list[tuple[asyncio.AbstractEventLoop, Redis]]] = {}
_PENDING = "till_catalog_changed"


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def register(engine: AsyncEngine, redis: Redis) -> None:
    """Call from a coroutine (the app's or worker's startup): ``redis`` belongs to the running loop."""
    _redis_of_database.setdefault(_url(engine.sync_engine), []).append((asyncio.get_running_loop(), redis))
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)


def unregister(engine: AsyncEngine, redis: Redis) -> None:
    clients = _redis_of_database.get(_url(engine.sync_engine), [])
    clients[:] = [(loop, client) for loop, client in clients if client is not redis]


async def _bump_from(clients: list[tuple[asyncio.AbstractEventLoop, Redis]], stores: set[uuid.UUID]) -> None:
    loop = asyncio.get_running_loop()
    mine = [client for owner, client in clients if owner is loop]
    if mine:
        await bump(mine[-1], stores)
        return
    pool = clients[-1][1].connection_pool  # another loop's client: the same server, a client of our own
    own = Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs))
    try:
        await bump(own, stores)
    finally:
        await own.aclose(close_connection_pool=True)


def _after_flush(session: Session, _context: Any) -> None:
    from app.core.outbox import OutboxEvent

    for obj in session.new:
        if isinstance(obj, OutboxEvent) and obj.type in CATALOG_EVENTS and obj.store_id is not None:
            session.info.setdefault(_PENDING, set()).add(obj.store_id)


def _after_commit(session: Session) -> None:
    stores = session.info.pop(_PENDING, None)
    if not stores:
        return
    bind = session.get_bind()
    clients = _redis_of_database.get(_url(bind if isinstance(bind, Engine) else bind.engine))
    if not clients:
        return  # no web app or worker on this database here: the outbox relay's bump and MAX_AGE_S cover it
    try:
        # Commit runs inside SQLAlchemy's greenlet (AsyncSession.commit): this awaits the bump before the
        # commit call returns, so the response that follows the commit goes out after the bump.
        await_only(_bump_from(clients, stores))
    except Exception:  # the commit stands; the relay's bump and MAX_AGE_S bound what a shopper sees
        log.warning("storefront.version_bump_failed", stores=[str(s) for s in stores], exc_info=True)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


# ---- entries ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Entry:
    store_id: uuid.UUID
    version: int
    built: float  # time.monotonic()
    body: bytes
    digest: str  # of body
    page: bool  # a whole page (marks inside: private), else a fragment (public)
    refreshing: float = 0.0  # monotonic time a request set out to re-render it

    @classmethod
    def build(cls, store_id: uuid.UUID, version: int, body: str, *, page: bool) -> Entry:
        data = body.encode()
        return cls(store_id, version, time.monotonic(), data, hashlib.blake2b(data, digest_size=12).hexdigest(), page)


class PageCache:
    """One web process's entries (an LRU), keyed by (path, query, htmx target)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.entries: OrderedDict[tuple[str, bytes, str], Entry] = OrderedDict()
        # A render under way per key: requests that find no usable entry wait for it instead of rendering too.
        self.rendering: dict[tuple[str, bytes, str], asyncio.Future[Entry | None]] = {}
        self.versions = VersionReads()
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    @classmethod
    def of(cls, state: Any) -> PageCache:
        cache = state.get("page_cache")
        if cache is None:
            cache = state["page_cache"] = cls()
        assert isinstance(cache, PageCache)
        return cache

    def get(self, key: tuple[str, bytes, str]) -> Entry | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, bytes, str], store_id: uuid.UUID, version: int, body: str, *, page: bool) -> Entry:
        entry = Entry.build(store_id, version, body, page=page)
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        return entry


def usable(entry: Entry, version: int, now: float) -> bool:
    """Whether ``entry`` may be served now: built under the current catalog version, less than ``MAX_AGE_S`` ago."""
    return entry.version == version and now - entry.built < MAX_AGE_S


def wants_refresh(entry: Entry, now: float) -> bool:
    """True once per refresh: the entry is past ``REFRESH_AGE_S`` and nobody is re-rendering it (or that render
    has not come back for a second). The caller re-renders it in the background while the entry is served on."""
    if now - entry.built < REFRESH_AGE_S or (entry.refreshing and now - entry.refreshing < MAX_AGE_S):
        return False
    entry.refreshing = now
    return True


# ---- serving ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Served:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


def serve(entry: Entry, *, csrf_token: str, cart_count: int, if_none_match: str) -> Served:
    """The entry for one shopper: their CSRF token and cart count filled in; 304 when they have it already."""
    if entry.page:
        tag = hashlib.blake2b(f"{csrf_token}:{cart_count}".encode(), digest_size=6).hexdigest()
        etag = f'W/"{entry.digest}-{tag}"'
        cache_control = b"private, no-cache"
    else:
        etag = f'W/"{entry.digest}"'
        cache_control = b"public, no-cache"  # the same for everyone: a CDN may keep it and revalidate
    headers = [
        (b"etag", etag.encode()),
        (b"cache-control", cache_control),
        (b"vary", b"HX-Request, HX-Target, Cookie" if entry.page else b"HX-Request, HX-Target"),
    ]
    if if_none_match and etag in (t.strip() for t in if_none_match.split(",")):
        return Served(304, b"", headers)
    body = entry.body
    if entry.page:
        # escaped as the template would: the token comes from a cookie, which a page must never trust as HTML
        body = body.replace(CSRF_MARK.encode(), html.escape(csrf_token).encode()).replace(
            COUNT_MARK.encode(), str(cart_count).encode()
        )
    headers += [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    return Served(200, body, headers)


def new_csrf_token(secret: str) -> str:
    return generate_csrf_token(secret=secret)


class CountMark:
    """Stands in for the cart in a cached render: its count is the mark the server fills in per shopper."""

    count = Markup(COUNT_MARK)  # noqa: S704 - a constant of ours, no input
    lines: tuple[()] = ()
    cart = None
