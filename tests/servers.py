"""Test servers: TEST_DATABASE_URL / TEST_REDIS_URL when set, embedded ones otherwise.

Every test run gets a database of its own (created, migrated, dropped at the end)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from alembic import command
from sqlalchemy.engine import make_url

from app.core.db import alembic_config
from app.core.embedded import EmbeddedServers

ROOT = Path(__file__).resolve().parents[1]


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def provision_servers() -> Iterator[tuple[str, str]]:
    """Yield (database_url, redis_url) for one test run."""
    embedded = EmbeddedServers(ROOT / ".till" / "test-servers")
    admin_url = os.environ.get("TEST_DATABASE_URL") or embedded.start_postgres()
    redis_url = os.environ.get("TEST_REDIS_URL") or embedded.start_valkey()
    name = f"till_test_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    database_url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    url = database_url.render_as_string(hide_password=False)
    try:
        command.upgrade(alembic_config(url), "head")
        yield url, redis_url
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not os.environ.get("TEST_DATABASE_URL") or not os.environ.get("TEST_REDIS_URL"):
            embedded.stop()
