"""Counting every statement the database receives, through SQLAlchemy or raw asyncpg (ADR 0003): the SQL budget
tests of the checkout's completion."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def counted(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The statements sent inside the block, in order."""
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    raw_execute, raw_script = asyncpg.Connection._execute, asyncpg.Connection.execute

    async def counted_execute(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(query)
        return await raw_execute(self, query, *args, **kwargs)

    async def counted_script(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:  # with arguments, execute() goes through _execute, counted above
            statements.append(query)
        return await raw_script(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "_execute", counted_execute)
    monkeypatch.setattr(asyncpg.Connection, "execute", counted_script)
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        monkeypatch.undo()
