"""Raw asyncpg access for the checkout hot path (ADR 0003).

The ORM stays for everything else. A raw statement costs ~0.09 ms of CPU against ~0.5 ms for an ORM
select (measured; docs/adr/0003), and every checkout runs a dozen of them.

Rules for raw SQL, since the session-level tenancy filter (ADR 0002) cannot see it:
- every statement on a tenant table names ``store_id = $n`` (tests/integration/test_raw_sql_tenancy.py
  calls each one with another store's id and expects nothing found and nothing changed);
- values are always parameters (``$n``, or ``:name`` through ``named()``); only constant SQL fragments
  owned by a domain module are composed into a statement's text;
- JSONB goes in as text (``jsonb()``) and comes back decoded, on this module's pool (``_init_connection``)
  as on SQLAlchemy's connections (its asyncpg dialect installs the same behaviour);
- close the pool with the engine: ``app.core.db.dispose(engine)``.
"""

from __future__ import annotations

import asyncio
import functools
import re
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, cast

import asyncpg
import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

Connection: TypeAlias = asyncpg.Connection
Record: TypeAlias = asyncpg.Record

__all__ = [
    "Connection",
    "Record",
    "close_pool",
    "connection",
    "jsonb",
    "named",
    "pool_for",
    "reader",
    "transaction",
    "writer",
]


_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@functools.lru_cache(maxsize=256)
def _positional(sql: str) -> tuple[str, tuple[str, ...]]:
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


def named(sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``:name`` placeholders to asyncpg's ``$n``: lets a statement be composed of fragments owned by
    different domains (ADR 0003). ``::type`` casts are left alone; a missing parameter is a KeyError."""
    text, names = _positional(sql)
    return text, [params[name] for name in names]


def jsonb(value: Any) -> str:
    return msgspec.json.encode(value).decode()


# Every connection Till opens (both pools). random_page_cost 1.1, not PostgreSQL's 4 (a spinning disk's): on SSD
# or cached data an index probe costs about what a sequential page does, and with 4 the generic plans of the
# checkout's statements updated a store's stock rows through a scan of all of them once the store had a few hundred
# (issue 20; tests/integration/test_checkout_plans.py). PostgreSQL's documentation suggests lowering it for SSDs.
SERVER_SETTINGS = {"application_name": "till", "random_page_cost": "1.1"}

# One asyncpg pool per engine, made on first use: the same database, without SQLAlchemy's connection
# wrapper (checking a connection out of SQLAlchemy's pool and back cost ~0.2 ms of CPU, measured).
_pools: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Task[asyncpg.Pool]] = weakref.WeakKeyDictionary()
POOL_SIZE = 10


async def _init_connection(conn: Connection) -> None:
    for name in ("json", "jsonb"):  # text in (``jsonb()``), decoded out: as on SQLAlchemy's connections
        await conn.set_type_codec(name, encoder=str, decoder=msgspec.json.decode, schema="pg_catalog")


async def _reset(conn: Connection) -> None:
    """On release. asyncpg's default runs a reset query (RESET ALL, UNLISTEN, …): a round trip per checkout
    of a connection. Our raw SQL sets no session state, so only an open transaction needs undoing."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _create_pool(engine: AsyncEngine) -> asyncpg.Pool:
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=POOL_SIZE,
        init=_init_connection,
        reset=_reset,
        timeout=5,
        server_settings=SERVER_SETTINGS,
    )


async def pool_for(engine: AsyncEngine) -> asyncpg.Pool:
    task = _pools.get(engine)
    if task is None:
        task = _pools[engine] = asyncio.ensure_future(_create_pool(engine))
    return await task


async def close_pool(engine: AsyncEngine) -> None:
    task = _pools.pop(engine, None)
    if task is not None:
        await (await task).close()


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[Connection]:
    """A pooled connection with no transaction around it: each statement commits on its own."""
    async with (await pool_for(engine)).acquire() as conn:
        yield conn


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Connection]:
    """A pooled connection inside its own transaction: committed on exit, rolled back on an error."""
    async with (await pool_for(engine)).acquire() as conn, conn.transaction():
        yield conn


async def reader(session: AsyncSession) -> Connection:
    """The session's connection for reads: they see what the session has written but not committed."""
    conn = await session.connection()
    return cast(Connection, (await conn.get_raw_connection()).driver_connection)


async def writer(session: AsyncSession) -> Connection:
    """The session's connection for writes, inside the session's transaction (begun here if needed).

    SQLAlchemy's asyncpg adapter begins the database transaction lazily, on its first statement; a raw
    write sent before that would commit on its own. ``_start_transaction`` is that lazy step, taken early.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if not adapted._started:
        await adapted._start_transaction()
    return cast(Connection, raw.driver_connection)
