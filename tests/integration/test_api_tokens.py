from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.core.rbac import Role
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in


async def test_owner_issues_a_token_on_the_page_shown_once_usable_then_revoked(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("tokens")
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    csrf = csrf_from((await client.get("/staff/api-tokens")).text)
    created = await client.post(
        "/staff/api-tokens", data={"name": "Delivery app", "role": "staff", "_csrf_token": csrf}
    )
    assert created.status_code == 303
    shown = await client.get("/staff/api-tokens")
    secret = shown.text.split('<code class="secret">')[1].split("</code>")[0]
    assert secret.startswith("till_")

    listing = await client.get("/staff/api-tokens")
    assert "Delivery app" in listing.text and secret not in listing.text

    me = await client.get("/api/v1/store", headers=bearer(secret))
    assert me.status_code == 200 and me.json()["slug"] == "tokens"

    tokens = (await client.get("/api/v1/api-tokens", headers=bearer(await issue_token(world, store)))).json()
    token_id = next(t["id"] for t in tokens if t["name"] == "Delivery app")
    revoked = await client.post(f"/staff/api-tokens/{token_id}/revoke", data={"_csrf_token": csrf})
    assert revoked.status_code == 303
    assert (await client.get("/api/v1/store", headers=bearer(secret))).status_code == 401


async def test_token_form_errors_are_inline(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    csrf = csrf_from((await client.get("/staff/api-tokens")).text)
    bad = await client.post("/staff/api-tokens", data={"name": " ", "role": "emperor", "_csrf_token": csrf})
    assert bad.status_code == 422
    assert "Enter a name of 1 to 80 characters." in bad.text
    assert "Choose one of: cashier, staff, manager, owner." in bad.text
    assert "No API tokens yet." in bad.text


async def test_manager_sees_tokens_but_only_owner_issues(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get("/staff/api-tokens")
    assert page.status_code == 200 and "New token" not in page.text
    denied = await client.post(
        "/staff/api-tokens", data={"name": "x", "role": "staff", "_csrf_token": csrf_from(page.text)}
    )
    assert denied.status_code == 403


async def test_api_problem_json_for_bad_input_unknown_token_and_low_role(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    owner_secret = await issue_token(world, store, Role.OWNER)
    staff_secret = await issue_token(world, store, Role.STAFF)

    missing = await client.get("/api/v1/store", headers=bearer("till_nope_nope"))
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")

    low = await client.post("/api/v1/api-tokens", json={"name": "x"}, headers=bearer(staff_secret))
    assert low.status_code == 403
    assert low.json()["detail"] == "This needs the owner role or higher."

    bad = await client.patch("/api/v1/store", json={"timezone": "Nowhere/Land"}, headers=bearer(owner_secret))
    assert bad.status_code == 422
    assert bad.json()["fields"] == {"timezone": "Choose a time zone such as Europe/Berlin."}

    unknown_field = await client.patch("/api/v1/store", json={"slug": "elsewhere"}, headers=bearer(owner_secret))
    assert unknown_field.status_code == 400
    assert unknown_field.headers["content-type"].startswith("application/problem+json")

    issued = await client.post(
        "/api/v1/api-tokens", json={"name": "CI", "role": "manager"}, headers=bearer(owner_secret)
    )
    assert issued.status_code == 201
    assert issued.json()["secret"].startswith("till_")
    assert issued.json()["token"]["role"] == "manager"
