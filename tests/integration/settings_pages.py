"""Helpers for the tests of settings pages that write ``stores.settings`` (tax, shipping)."""

from __future__ import annotations

import html as html_lib
import uuid
from typing import Any

from sqlalchemy import func, select

from app.core.audit import AuditEntry
from app.core.outbox import OutboxEvent
from app.core.tenancy import system_scope
from app.stores.models import Store
from tests.integration.conftest import World


async def store_settings(world: World, store_id: uuid.UUID) -> dict[str, Any]:
    """The store's ``settings`` as the database has them now."""
    async with world.sessions() as session:
        system_scope(session)
        store = await session.get(Store, store_id)
        assert store is not None
        return dict(store.settings)


async def assert_nothing_written(world: World, store_id: uuid.UUID, before: dict[str, Any]) -> None:
    """The settings are as they were, and no audit row or ``store.updated`` event was written."""
    assert await store_settings(world, store_id) == before
    async with world.sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0
        events = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "store.updated")
        assert await session.scalar(events) == 0


def inline_error(page: str, field: str) -> str:
    """The error text shown next to ``field`` (``<small class="error" id="e-FIELD">…</small>``)."""
    marker = f'id="e-{field}">'
    assert marker in page, f"no error shown for {field}"
    after = page[page.index(marker) + len(marker) :]
    return html_lib.unescape(after[: after.index("</")])
