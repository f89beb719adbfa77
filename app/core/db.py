"""Database wiring: the SQLAlchemy config, the base models, and the migration check."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from advanced_alchemy.base import UUIDv7AuditBase, orm_registry
from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import class_mapper, instrumentation

from app.core.pg import SERVER_SETTINGS, close_pool

__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "UUIDv7AuditBase",
    "alembic_config",
    "create_engine",
    "detached",
    "dispose",
    "make_sqlalchemy_config",
    "metadata",
    "migration_problem",
    "migration_state",
]

metadata = orm_registry.metadata
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
VERSION_TABLE = "alembic_versions"

_Model = TypeVar("_Model")


def detached(model: type[_Model], values: Mapping[str, Any]) -> _Model:
    """A model instance holding ``values`` as a row read by the ORM would, without the instrumented constructor:
    for the hot path's objects made from raw SQL rows or about to be written by raw SQL (ADR 0003). The
    constructor fires an event and records history for every attribute: ~70 µs for a snapshot, this ~4 µs.
    Reading and setting attributes work as usual; unlike the constructor it checks no names (the caller's
    ``values`` are a row's columns), and the object belongs to no session."""
    class_mapper(model)  # configures the mappers first if none has been used yet (the constructor's event would)
    instance: _Model = instrumentation.manager_of_class(model).new_instance()
    instance.__dict__.update(values)
    return instance


def create_engine(database_url: str, *, pool_size: int = 20) -> AsyncEngine:
    # A fixed pool: overflow connections are opened and closed per burst, and connecting costs more than
    # waiting a moment for a pooled one (measured: storefront home 380 → see docs/operations.md).
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        pool_pre_ping=False,
        connect_args={"timeout": 5, "server_settings": SERVER_SETTINGS},
    )


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's pool and the raw-SQL pool that goes with it (app.core.pg)."""
    await close_pool(engine)
    await engine.dispose()


def make_sqlalchemy_config(engine: AsyncEngine) -> SQLAlchemyAsyncConfig:
    """One request = one transaction: 2xx and 3xx (POST → 303) commit, anything else rolls back."""
    return SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        engine_config=EngineConfig(),
        # The literal, not autocommit_handler_maker(...): advanced-alchemy makes the session scope key
        # unique per config, and a handler built by hand keeps the default key, so a second app in one
        # process (tests) would never close its request sessions.
        before_send_handler="autocommit_include_redirects",
        session_dependency_key="db_session",
        create_all=False,
    )


def session_maker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    """Sessions outside a request (middleware lookups, workers, CLI)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(database_url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s_%%(rev)s")
    return cfg


def migration_problem(current: str | None, head: str | None) -> str | None:
    """The one-line complaint about an un-migrated database, or None when it is current."""
    if current == head:
        return None
    return f"the database is at migration {current or 'none'} but this code needs {head}: run `till db upgrade`"


async def migration_state(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """(revision the database is at, head revision of migrations/)."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused/x")).get_current_head()
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": VERSION_TABLE})
        current = await conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}")) if exists else None  # noqa: S608
    return current, head
