"""Verified bearer tokens kept in the web process for a few seconds (issue 20; ADR 0003's hot path).

Every /api request looked its token up (one raw statement joining ``api_tokens`` and ``stores``): a checkout
(quote + complete) paid two such round trips. Here a verified token's row is kept in the process for at most
:data:`TTL_S` seconds, under the **access version**: a Redis counter that every commit which changes an API token
(revoked) or a store row (its settings, name, currency, ...) bumps inside its commit call, before the response
goes out (``after_commit``, as the storefront cache's catalog version, app/storefront/cache.py). Each request
reads the version first (one ``GET``, shared by the requests that arrive together: ``VersionReads``) and uses
a kept row only when it was read under the same version, so:

- a revocation or a store change made by a web request is honoured by the very next request on every node;
- one made by a worker job likewise (the worker registers too); one made where neither runs (a script, the CLI)
  within :data:`TTL_S` seconds;
- a Redis that lost the counter (flushed, restarted) reads 0: a mismatch, so rows are read again;
- ``last_used_at`` is still stamped at most once a minute: a row is re-read every :data:`TTL_S` seconds anyway.

A kept row builds a fresh ``Store`` and ``Principal`` per request: no ORM object is shared between requests.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from app.core import pg
from app.stores.services import BearerCaller, bearer_row, caller_from_row, token_hash

log = structlog.get_logger(__name__)

VERSION_KEY = "till:api-access-version"
TTL_S = 5.0
MAX_ENTRIES = 10_000


class _VersionReads:
    """The access version read once for the requests that arrive together (the storefront cache's
    ``VersionReads`` pattern): the ``GET`` goes out after each of them arrived, so each sees a version at least as
    new as any commit before its arrival, at one Redis round trip per batch."""

    def __init__(self) -> None:
        self.batch: asyncio.Future[int] | None = None
        self.reading: set[asyncio.Task[None]] = set()  # a reference keeps each read alive

    async def get(self, redis: Redis) -> int:
        batch = self.batch
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self.batch = loop.create_future()
            batch.add_done_callback(_retrieved)
            task = loop.create_task(self._read(redis, batch))
            self.reading.add(task)
            task.add_done_callback(self.reading.discard)
        return await asyncio.shield(batch)

    async def _read(self, redis: Redis, batch: asyncio.Future[int]) -> None:
        self.batch = None  # before the GET goes out: later arrivals start the next batch
        try:
            raw = await redis.get(VERSION_KEY)
        except Exception as exc:
            batch.set_exception(exc)
        else:
            batch.set_result(int(raw) if raw else 0)


def _retrieved(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()  # a failed read is each waiter's to handle


@dataclass(slots=True)
class _Kept:
    version: int
    until: float  # time.monotonic()
    row: dict[str, Any]  # without the store's settings: those are kept encoded
    settings: bytes  # decoded per request, each its own copy (3 µs; a deepcopy took ~25)


class TokenCache:
    """One web process's verified tokens (an LRU keyed by the secret's hash)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.entries: OrderedDict[str, _Kept] = OrderedDict()
        self.versions = _VersionReads()
        self.max_entries = max_entries

    async def caller(self, engine: Any, redis: Redis, raw_token: str) -> BearerCaller | None:
        digest = token_hash(raw_token)
        try:
            version = await self.versions.get(redis)
        except Exception:  # Redis down: no version to trust, so no kept row (the lookup works without Redis)
            log.warning("api_tokens.version_read_failed", exc_info=True)
            version = None
        kept = self.entries.get(digest)
        if kept is not None and version is not None and kept.version == version and kept.until > time.monotonic():
            return caller_from_row({**kept.row, "settings": msgspec.json.decode(kept.settings)})
        async with pg.connection(engine) as conn:
            row = await bearer_row(conn, raw_token)
        if row is None or version is None:
            self.entries.pop(digest, None)
            return caller_from_row(row) if row is not None else None
        self.entries[digest] = _Kept(version, time.monotonic() + TTL_S, row, msgspec.json.encode(row["settings"]))
        self.entries.move_to_end(digest)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        return caller_from_row(row)


# ---- bump on commit ---------------------------------------------------------------------------------------
_clients: list[tuple[asyncio.AbstractEventLoop, Redis]] = []
_PENDING = "till_api_access_changed"


def register(redis: Redis) -> None:
    """Call from the web app's and the worker's startup: commits in this process bump the access version (through
    ``redis`` in its own loop, through a short-lived client of the same server in another)."""
    _clients.append((asyncio.get_running_loop(), redis))
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)


def unregister(redis: Redis) -> None:
    _clients[:] = [(loop, client) for loop, client in _clients if client is not redis]


def _after_flush(session: Session, _context: Any) -> None:
    from app.stores.models import ApiToken, Store

    if any(isinstance(obj, (ApiToken, Store)) for obj in (*session.dirty, *session.deleted)):
        session.info[_PENDING] = True


def _after_commit(session: Session) -> None:
    if not session.info.pop(_PENDING, False):
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # a synchronous session: no loop, no client; TTL_S bounds it
    if not _clients:
        return  # no web app or worker in this process (a script): TTL_S bounds it
    try:
        # Inside SQLAlchemy's greenlet (AsyncSession.commit): the bump is done before the commit call returns.
        await_only(_bump(loop))
    except Exception:  # the commit stands; TTL_S bounds how long a kept token outlives it
        log.warning("api_tokens.version_bump_failed", exc_info=True)


async def _bump(loop: asyncio.AbstractEventLoop) -> None:
    mine = [client for owner, client in _clients if owner is loop]
    if mine:
        await mine[-1].incr(VERSION_KEY)
        return
    pool = _clients[-1][1].connection_pool  # another loop's client: the same server, a client of our own
    own = Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs))
    try:
        await own.incr(VERSION_KEY)
    finally:
        await own.aclose(close_connection_pool=True)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
