from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.core.rbac import Role
from tests.integration.conftest import World, csrf_from, sign_in


async def test_form_post_without_csrf_token_is_rejected(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    owner = await world.staff(store)
    await client.get("/signin")  # sets the CSRF cookie
    response = await client.post("/signin", data={"email": owner.email, "password": "whatever-it-is"})
    assert response.status_code == 403
    assert (await client.get("/staff")).status_code == 303


async def test_forged_csrf_token_is_rejected_and_changes_nothing(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("csrf-shop")
    owner = await world.staff(store)
    await sign_in(client, owner.email)
    response = await client.post(
        "/staff/settings", data={"name": "Hijacked", "timezone": "UTC", "_csrf_token": "forged" * 10}
    )
    assert response.status_code == 403
    page = await client.get("/staff/settings")
    assert 'value="Csrf-Shop"' in page.text


async def test_htmx_header_token_is_accepted(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.MANAGER)
    await sign_in(client, owner.email)
    token = csrf_from((await client.get("/staff/settings")).text)
    response = await client.post(
        "/staff/settings",
        data={"name": "Renamed Shop", "timezone": "Europe/Paris"},
        headers={"x-csrftoken": token, "hx-request": "true"},
    )
    assert response.status_code == 303
    assert 'value="Renamed Shop"' in (await client.get("/staff/settings")).text


async def test_api_is_exempt_from_csrf_because_it_takes_no_cookies(client: AsyncTestClient[Litestar]) -> None:
    response = await client.patch("/api/v1/store", json={"name": "x"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
