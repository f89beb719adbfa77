"""Raw asyncpg access for the checkout hot path (ADR 0003).

The ORM stays for everything else. A raw statement costs ~0.09 ms of CPU against ~0.5 ms for an ORM
select (measured in docs/adr/0003), and checkout runs ~20 of them per order.

Rules for raw SQL, since the session-level tenancy filter (ADR 0002) cannot see it:
- every statement on a tenant table names ``store_id = $n`` (tests/integration/test_raw_sql_tenancy.py
  calls each one with another store's id and expects nothing found and nothing changed);
- parameters are ``$n`` placeholders, never formatted into the text;
- JSONB goes in as text (``jsonb()``) and comes back decoded: SQLAlchemy's asyncpg dialect installs
  those codecs on every pooled connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

Connection: TypeAlias = asyncpg.Connection
Record: TypeAlias = asyncpg.Record

__all__ = ["Connection", "Record", "connection", "jsonb", "reader", "transaction", "writer"]


def jsonb(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[Connection]:
    """A pooled connection with no transaction around it: each statement commits on its own."""
    async with engine.connect() as conn:
        yield cast(Connection, (await conn.get_raw_connection()).driver_connection)


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Connection]:
    """A pooled connection inside its own transaction: committed on exit, rolled back on an error."""
    async with engine.connect() as conn:
        driver = cast(Connection, (await conn.get_raw_connection()).driver_connection)
        async with driver.transaction():
            yield driver


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
