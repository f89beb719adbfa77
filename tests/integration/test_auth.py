from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.core.rbac import Role
from tests.integration.conftest import PASSWORD, World, csrf_from, sign_in


async def test_sign_in_shows_staff_home_and_sign_out_ends_the_session(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("alpha")
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)

    home = await client.get("/staff")
    assert home.status_code == 200
    assert "Owner Person" in home.text
    assert "API tokens" in home.text and "Store settings" in home.text

    signout = await client.post("/signout", data={"_csrf_token": csrf_from(home.text)})
    assert signout.status_code == 303
    after = await client.get("/staff")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/signin")


async def test_wrong_password_is_an_inline_error_and_keeps_the_email(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    owner = await world.staff(store)
    page = await client.get("/signin")
    response = await client.post(
        "/signin",
        data={"email": owner.email, "password": "nope-nope-nope", "_csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 422
    assert "Wrong e-mail or password." in response.text
    assert f'value="{owner.email}"' in response.text
    assert (await client.get("/staff")).status_code == 303


async def test_empty_sign_in_form_names_both_fields(client: AsyncTestClient[Litestar]) -> None:
    page = await client.get("/signin")
    response = await client.post("/signin", data={"email": "", "password": "", "_csrf_token": csrf_from(page.text)})
    assert response.status_code == 422
    assert "Enter your e-mail address." in response.text
    assert "Enter your password." in response.text


async def test_login_rate_limit_locks_out_even_the_right_password(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    owner = await world.staff(store)
    token = csrf_from((await client.get("/signin")).text)
    for _ in range(5):
        bad = await client.post(
            "/signin", data={"email": owner.email, "password": "wrong-guess!", "_csrf_token": token}
        )
        assert bad.status_code == 422
    locked = await client.post("/signin", data={"email": owner.email, "password": PASSWORD, "_csrf_token": token})
    assert locked.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.text
    assert (await client.get("/staff")).status_code == 303


async def test_a_member_of_no_store_cannot_sign_in(client: AsyncTestClient[Litestar], world: World) -> None:
    from app.stores.services import UserService

    async with world.sessions() as session, session.begin():
        await UserService(session).create_user(email="lonely@example.com", name="Lonely", password=PASSWORD)
    token = csrf_from((await client.get("/signin")).text)
    response = await client.post(
        "/signin", data={"email": "lonely@example.com", "password": PASSWORD, "_csrf_token": token}
    )
    assert response.status_code == 422
    assert "no store yet" in response.text


async def test_roles_guard_pages(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    cashier = await world.staff(store, Role.CASHIER)
    await sign_in(client, cashier.email)
    home = await client.get("/staff")
    assert "API tokens" not in home.text
    forbidden = await client.get("/staff/settings")
    assert forbidden.status_code == 403
    assert "manager role or higher" in forbidden.text


async def test_next_parameter_only_allows_local_paths(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    owner = await world.staff(store)
    token = csrf_from((await client.get("/signin")).text)
    response = await client.post(
        "/signin",
        data={"email": owner.email, "password": PASSWORD, "_csrf_token": token, "next": "//evil.example/x"},
    )
    assert response.headers["location"] == "/staff"


async def test_anonymous_staff_page_redirects_to_sign_in_with_next(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/staff/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/staff/settings"


async def test_store_switch_only_to_own_stores(client: AsyncTestClient[Litestar], world: World) -> None:
    first, second, foreign = (
        await world.store("first"),
        await world.store("second"),
        await world.store("foreign"),
    )
    member = await world.staff(first, Role.OWNER, email="multi@example.com")
    async with world.sessions() as session, session.begin():
        from app.stores.services import UserService

        await UserService(session).add_member(second, member.user, Role.CASHIER)
    await sign_in(client, member.email)
    home = await client.get("/staff")
    token = csrf_from(home.text)
    switched = await client.post(f"/staff/stores/{second.id}/switch", data={"_csrf_token": token})
    assert switched.status_code == 303
    home = await client.get("/staff")
    assert "Second" in home.text and "cashier" in home.text
    refused = await client.post(f"/staff/stores/{foreign.id}/switch", data={"_csrf_token": token})
    assert refused.status_code == 303
    assert "Second" in (await client.get("/staff")).text
