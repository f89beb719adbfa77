"""Invariant 8: one store can never read or change another's data, whatever the URL says."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select

from app.config import Settings
from app.core.rbac import Role
from app.core.tenancy import TenancyError, bind_store, system_scope
from app.stores.models import ApiToken
from app.stores.services import ApiTokenService
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in


async def _token_of(world: World, store_id: object) -> ApiToken:
    async with world.sessions() as session, session.begin():
        token, _ = await ApiTokenService.for_store(session, store_id).issue(  # type: ignore[arg-type]
            name="Till B integration", role=Role.STAFF, created_by=None
        )
        return token


async def test_staff_of_store_a_gets_404_for_store_b_resources_by_id(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store_a, store_b = await world.store("store-a"), await world.store("store-b")
    owner_a = await world.staff(store_a, Role.OWNER)
    b_token = await _token_of(world, store_b.id)

    # Pages: revoking B's token from A's session is a 404, and B's token stays active.
    await sign_in(client, owner_a.email)
    csrf = csrf_from((await client.get("/staff/api-tokens")).text)
    revoke = await client.post(f"/staff/api-tokens/{b_token.id}/revoke", data={"_csrf_token": csrf})
    assert revoke.status_code == 404
    assert "Till B integration" not in (await client.get("/staff/api-tokens")).text

    # API: A's token cannot read or delete B's token.
    a_secret = await issue_token(world, store_a)
    assert (await client.get(f"/api/v1/api-tokens/{b_token.id}", headers=bearer(a_secret))).status_code == 404
    assert (await client.delete(f"/api/v1/api-tokens/{b_token.id}", headers=bearer(a_secret))).status_code == 404
    listed = (await client.get("/api/v1/api-tokens", headers=bearer(a_secret))).json()
    assert all(t["id"] != str(b_token.id) for t in listed)

    async with world.sessions() as session:
        bind_store(session, store_b.id)
        still = await session.scalar(select(ApiToken).where(ApiToken.id == b_token.id))
    assert still is not None and still.revoked_at is None


async def test_api_store_is_the_tokens_own_store(client: AsyncTestClient[Litestar], world: World) -> None:
    store_a, store_b = await world.store("store-a"), await world.store("store-b")
    secret_b = await issue_token(world, store_b, Role.STAFF)
    body = (await client.get("/api/v1/store", headers=bearer(secret_b))).json()
    assert body["slug"] == "store-b"
    assert body["id"] == str(store_b.id) != str(store_a.id)


async def test_a_tenant_query_without_a_store_fails_closed(world: World) -> None:
    async with world.sessions() as session:
        with pytest.raises(TenancyError):
            await session.scalars(select(ApiToken))


async def test_a_session_cannot_be_rebound_or_write_into_another_store(world: World) -> None:
    store_a, store_b = await world.store("store-a"), await world.store("store-b")
    async with world.sessions() as session:
        bind_store(session, store_a.id)
        with pytest.raises(TenancyError):
            bind_store(session, store_b.id)
        session.add(ApiToken(store_id=store_b.id, name="x", prefix="p", secret_hash="h" * 64, role=Role.STAFF))
        with pytest.raises(TenancyError):
            await session.flush()


async def test_a_store_opened_at_start_sees_nothing_of_another_and_their_ids_are_refused_both_ways(
    client: AsyncTestClient[Litestar], world: World, settings: Settings, redis: Redis
) -> None:
    """A merchant who signs up gets an empty store; neither store's session or token reaches the other's orders,
    products, staff, invitations or settings by id, over the pages and the API."""
    from app.stores.models import Store
    from tests.integration.shop import make_shop, place_order
    from tests.integration.test_onboarding import SIGN_UP

    demo = await make_shop(world, slug="corner")
    demo_owner = await world.staff(demo.store, Role.OWNER)
    demo_order = await place_order(world.sessions, demo, redis, settings)
    demo_token = await issue_token(world, demo.store, Role.OWNER)

    page = await client.get("/start")
    assert (await client.post("/start", data={**SIGN_UP, "_csrf_token": csrf_from(page.text)})).status_code == 303
    csrf = csrf_from((await client.get("/staff")).text)
    async with world.sessions() as session:
        system_scope(session)
        bakery = await session.scalar(select(Store).where(Store.slug == "bakery-nord"))
        assert bakery is not None
    bakery_token = await issue_token(world, bakery, Role.OWNER)
    invited = await client.post(
        "/staff/team/invitations", data={"email": "kim@bakery.se", "role": "cashier", "_csrf_token": csrf}
    )
    assert invited.status_code == 303

    # The new store starts empty.
    assert "Enamel mug" not in (await client.get("/staff/products")).text
    assert f"#{demo_order.number}" not in (await client.get("/staff/orders")).text
    api_team = (await client.get("/api/v1/admin/staff", headers=bearer(bakery_token))).json()
    assert demo_owner.email not in str(api_team)

    # The bakery's owner, by the demo's ids: 404 on every page and route.
    product_id = demo.variants["MUG-1"]
    for path in (f"/staff/orders/{demo_order.id}", f"/staff/orders/{demo_order.id}/audit.csv"):
        assert (await client.get(path)).status_code == 404, path
    for path in (
        f"/staff/team/members/{demo_owner.user.id}/deactivate",
        f"/staff/team/members/{demo_owner.user.id}/password-reset",
    ):
        assert (await client.post(path, data={"_csrf_token": csrf})).status_code == 404, path
    role = {"role": "cashier", "_csrf_token": csrf}
    assert (await client.post(f"/staff/team/members/{demo_owner.user.id}/role", data=role)).status_code == 404
    assert (await client.get(f"/staff/products/{product_id}")).status_code == 404
    for method, path in (
        ("GET", f"/api/v1/orders/{demo_order.id}"),
        ("PATCH", f"/api/v1/admin/staff/{demo_owner.user.id}"),
        ("POST", f"/api/v1/admin/staff/{demo_owner.user.id}/password-reset"),
    ):
        body = {"role": "cashier"} if method == "PATCH" else None
        response = await client.request(method, path, json=body, headers=bearer(bakery_token))
        assert response.status_code == 404, (method, path, response.text)

    # The demo's token, by the bakery's ids: its invitation cannot be withdrawn, its owner not touched.
    team = (await client.get("/api/v1/admin/staff", headers=bearer(bakery_token))).json()
    invitation_id = team["invitations"][0]["id"]
    nora_id = next(m["user_id"] for m in team["members"] if m["email"] == SIGN_UP["email"])
    assert (
        await client.delete(f"/api/v1/admin/staff/invitations/{invitation_id}", headers=bearer(demo_token))
    ).status_code == 404
    patched = await client.patch(f"/api/v1/admin/staff/{nora_id}", json={"active": False}, headers=bearer(demo_token))
    assert patched.status_code == 404
    demo_view = (await client.get("/api/v1/store", headers=bearer(demo_token))).json()
    assert demo_view["slug"] == "corner"
    assert (await client.get("/api/v1/admin/staff", headers=bearer(bakery_token))).json()["invitations"]
