"""Verified bearer tokens kept in the web process (app/stores/token_cache.py): a kept token is used without a
lookup, and a revocation or a store change committed anywhere with an app running is honoured by the very next
request, on this node and on another."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.config import Settings
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.main import create_app
from app.stores.models import ApiToken, Store
from app.stores.services import ApiTokenService, token_hash
from app.stores.token_cache import TokenCache
from tests.integration.conftest import World, bearer, issue_token


@pytest.fixture
async def other_node(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as other:
        yield other


def kept(client: AsyncTestClient[Litestar]) -> TokenCache:
    cache = client.app.state.token_cache
    assert isinstance(cache, TokenCache)
    return cache


async def test_a_kept_token_is_used_until_revoked_on_any_node(
    client: AsyncTestClient[Litestar], other_node: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("kept")
    secret = await issue_token(world, store, Role.MANAGER)
    for node in (client, other_node):
        first = await node.get("/api/v1/checkout/pickup-times", headers=bearer(secret))
        assert first.status_code == 200 and first.json()["timezone"] == "Europe/Berlin"
        assert token_hash(secret) in kept(node).entries

    # A store change through the API on one node: the next request on either node sees it.
    changed = await client.patch("/api/v1/store", json={"timezone": "America/New_York"}, headers=bearer(secret))
    assert changed.status_code == 200, changed.text
    for node in (client, other_node):
        again = await node.get("/api/v1/checkout/pickup-times", headers=bearer(secret))
        assert again.json()["timezone"] == "America/New_York"

    # A store change committed elsewhere (a session of its own, as a worker or script would).
    async with world.sessions() as session, session.begin():
        bind_store(session, store.id)
        row = await session.scalar(select(Store).where(Store.id == store.id))
        assert row is not None
        row.timezone = "Asia/Tokyo"
    for node in (client, other_node):
        assert (await node.get("/api/v1/checkout/pickup-times", headers=bearer(secret))).json()["timezone"] == (
            "Asia/Tokyo"
        )

    # Revoked: refused at once on both nodes, though both kept it a moment ago.
    async with world.sessions() as session, session.begin():
        bind_store(session, store.id)
        token_id = await session.scalar(select(ApiToken.id).where(ApiToken.secret_hash == token_hash(secret)))
        assert token_id is not None
        await ApiTokenService.for_store(session, store.id).revoke(token_id)
    for node in (client, other_node):
        assert (await node.get("/api/v1/store", headers=bearer(secret))).status_code == 401
        assert (await node.get("/api/v1/checkout/pickup-times", headers=bearer(secret))).status_code == 401


async def test_a_wrong_token_is_never_kept(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    secret = await issue_token(world, store)
    wrong = secret[:-2] + ("aa" if not secret.endswith("aa") else "bb")
    assert (await client.get("/api/v1/store", headers=bearer(wrong))).status_code == 401
    assert token_hash(wrong) not in kept(client).entries
    assert (await client.get("/api/v1/store", headers=bearer(secret))).status_code == 200
