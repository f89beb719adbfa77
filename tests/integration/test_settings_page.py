from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import system_scope
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in


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


async def test_the_boards_delay_is_a_whole_number_of_minutes_on_the_page_and_the_api(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("tidy")
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get("/staff/settings")
    assert 'name="board_delay_minutes" type="number" value="10"' in page.text  # the default
    fields = {"name": store.name, "timezone": store.timezone, "_csrf_token": csrf_from(page.text)}
    for bad in ("0", "abc", "1441", ""):
        refused = await client.post("/staff/settings", data={**fields, "board_delay_minutes": bad})
        assert refused.status_code == 422 and "Enter whole minutes from 1 to 1440." in refused.text
    saved = await client.post("/staff/settings", data={**fields, "board_delay_minutes": "25"})
    assert saved.status_code == 303
    assert 'value="25"' in (await client.get("/staff/settings")).text

    auth = bearer(await issue_token(world, store, Role.MANAGER))
    assert (await client.get("/api/v1/store", headers=auth)).json()["board_delay_minutes"] == 25
    assert (await client.patch("/api/v1/store", json={"board_delay_minutes": 0}, headers=auth)).status_code == 422
    changed = await client.patch("/api/v1/store", json={"board_delay_minutes": 5}, headers=auth)
    assert changed.status_code == 200 and changed.json()["board_delay_minutes"] == 5
    async with world.sessions() as session:
        system_scope(session)
        events = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    updates = [e.payload for e in events if e.type == "store.updated"]
    assert updates == [{"board_delay_minutes": 25}, {"board_delay_minutes": 5}]


async def test_the_refund_approval_limit_is_set_on_the_page_and_the_api(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("limits")
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get("/staff/settings")
    assert 'name="refund_approval_threshold"' in page.text
    fields = {"name": store.name, "timezone": store.timezone, "board_delay_minutes": "10"}
    for bad in ("abc", "-5", "1.234"):
        refused = await client.post(
            "/staff/settings",
            data={**fields, "refund_approval_threshold": bad, "_csrf_token": csrf_from(page.text)},
        )
        assert refused.status_code == 422 and "Enter an amount such as 50.00, or leave it empty." in refused.text
    saved = await client.post(
        "/staff/settings", data={**fields, "refund_approval_threshold": "50.00", "_csrf_token": csrf_from(page.text)}
    )
    assert saved.status_code == 303
    assert 'value="50.00"' in (await client.get("/staff/settings")).text
    auth = bearer(await issue_token(world, store, Role.MANAGER))
    assert (await client.get("/api/v1/store", headers=auth)).json()["refund_approval_threshold_minor"] == 5000
    kept = await client.patch("/api/v1/store", json={"name": "Limits & Co"}, headers=auth)
    assert kept.json()["refund_approval_threshold_minor"] == 5000  # omitted: kept
    negative = await client.patch("/api/v1/store", json={"refund_approval_threshold_minor": -1}, headers=auth)
    assert negative.status_code == 422 and "refund_approval_threshold" in negative.text
    removed = await client.patch("/api/v1/store", json={"refund_approval_threshold_minor": None}, headers=auth)
    assert removed.json()["refund_approval_threshold_minor"] is None
    staff = bearer(await issue_token(world, store, Role.STAFF))
    assert (
        await client.patch("/api/v1/store", json={"refund_approval_threshold_minor": 1}, headers=staff)
    ).status_code == 403
