from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import system_scope
from tests.integration.conftest import World, csrf_from, sign_in


async def test_bad_settings_show_inline_errors_keep_values_and_write_nothing(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("tidy")
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    token = csrf_from((await client.get("/staff/settings")).text)
    response = await client.post("/staff/settings", data={"name": "", "timezone": "Mars/Olympus", "_csrf_token": token})
    assert response.status_code == 422
    assert "Enter a name of 1 to 120 characters." in response.text
    assert "Choose a time zone such as Europe/Berlin." in response.text
    assert 'value="Mars/Olympus"' in response.text
    async with world.sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


async def test_saved_settings_flash_and_emit_one_event(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store("tidy")
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    token = csrf_from((await client.get("/staff/settings")).text)
    saved = await client.post(
        "/staff/settings", data={"name": "Tidy Deli", "timezone": "Europe/Vienna", "_csrf_token": token}
    )
    assert saved.status_code == 303
    page = await client.get("/staff/settings")
    assert "Settings saved." in page.text
    assert 'value="Tidy Deli"' in page.text
    async with world.sessions() as session:
        system_scope(session)
        events = (await session.scalars(select(OutboxEvent))).all()
    assert [(e.type, e.payload) for e in events] == [
        ("store.updated", {"name": "Tidy Deli", "timezone": "Europe/Vienna"})
    ]
