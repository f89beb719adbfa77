"""Invariant 8: one store can never read or change another's data, whatever the URL says."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.core.rbac import Role
from app.core.tenancy import TenancyError, bind_store
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
