"""Invariant 2 at the HTTP edge: replay, mismatch, in flight, release on 5xx, expiry sweep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.idempotency import IdempotencyKey, IdempotencyStore, request_hash
from app.core.tenancy import bind_store, system_scope
from app.stores.models import ApiToken
from tests.integration.conftest import World, bearer, issue_token


async def _token_count(sessions: async_sessionmaker[AsyncSession], store_id: object) -> int:
    async with sessions() as session:
        bind_store(session, store_id)  # type: ignore[arg-type]
        return int(await session.scalar(select(func.count()).select_from(ApiToken)) or 0)


async def test_same_key_same_request_replays_the_first_response(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    secret = await issue_token(world, store)
    headers = {**bearer(secret), "Idempotency-Key": "order-42"}
    first = await client.post("/api/v1/api-tokens", json={"name": "POS"}, headers=headers)
    second = await client.post("/api/v1/api-tokens", json={"name": "POS"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _token_count(world.sessions, store.id) == 2  # the test's own token + one POS token


async def test_concurrent_retries_create_exactly_one(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    secret = await issue_token(world, store)
    headers = {**bearer(secret), "Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(client.post("/api/v1/api-tokens", json={"name": "Burst"}, headers=headers) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    bodies = {r.text for r in responses if r.status_code == 201}
    assert len(bodies) == 1
    assert await _token_count(world.sessions, store.id) == 2


async def test_same_key_different_request_is_422(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    secret = await issue_token(world, store)
    headers = {**bearer(secret), "Idempotency-Key": "k1"}
    assert (await client.post("/api/v1/api-tokens", json={"name": "A"}, headers=headers)).status_code == 201
    mismatch = await client.post("/api/v1/api-tokens", json={"name": "B"}, headers=headers)
    assert mismatch.status_code == 422
    assert mismatch.headers["content-type"].startswith("application/problem+json")
    assert mismatch.json()["detail"] == "This Idempotency-Key was used for a different request."
    assert await _token_count(world.sessions, store.id) == 2


async def test_same_key_while_the_first_is_running_is_409(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    store = await world.store()
    secret = await issue_token(world, store)
    body = b'{"name":"Slow"}'
    # The first request has claimed the key and is still running (claimed exactly as the middleware does).
    async with sessions() as session:
        system_scope(session)
        token = await session.scalar(select(ApiToken))
    assert token is not None
    claim = await IdempotencyStore(engine).claim(
        store.id, f"token:{token.id}", "slow-1", request_hash("POST", "/api/v1/api-tokens", b"", body)
    )
    assert claim.outcome == "proceed"
    second = await client.post(
        "/api/v1/api-tokens",
        content=body,
        headers={**bearer(secret), "Idempotency-Key": "slow-1", "content-type": "application/json"},
    )
    assert second.status_code == 409
    assert second.json()["detail"] == "A request with this Idempotency-Key is still running."
    assert await _token_count(world.sessions, store.id) == 1


async def test_a_crashed_claim_is_taken_over_after_its_lease(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    store = await world.store()
    secret = await issue_token(world, store)
    headers = {**bearer(secret), "Idempotency-Key": "crashed"}
    async with sessions() as session:
        system_scope(session)
        token = await session.scalar(select(ApiToken))
    assert token is not None
    body = b'{"name":"After crash"}'
    await IdempotencyStore(engine).claim(
        store.id, f"token:{token.id}", "crashed", request_hash("POST", "/api/v1/api-tokens", b"", body)
    )
    async with sessions() as session, session.begin():
        system_scope(session)
        await session.execute(update(IdempotencyKey).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    retried = await client.post(
        "/api/v1/api-tokens", content=body, headers={**headers, "content-type": "application/json"}
    )
    assert retried.status_code == 201


async def test_errors_are_replayed_but_a_key_is_scoped_to_its_token(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    secret_1, secret_2 = await issue_token(world, store), await issue_token(world, store)
    bad = await client.patch(
        "/api/v1/store", json={"timezone": "No/Where"}, headers={**bearer(secret_1), "Idempotency-Key": "tz"}
    )
    again = await client.patch(
        "/api/v1/store", json={"timezone": "No/Where"}, headers={**bearer(secret_1), "Idempotency-Key": "tz"}
    )
    assert bad.status_code == again.status_code == 422
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.patch(
        "/api/v1/store", json={"timezone": "UTC"}, headers={**bearer(secret_2), "Idempotency-Key": "tz"}
    )
    assert other.status_code == 200


async def test_key_length_is_checked(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    secret = await issue_token(world, store)
    response = await client.post(
        "/api/v1/api-tokens", json={"name": "x"}, headers={**bearer(secret), "Idempotency-Key": "k" * 256}
    )
    assert response.status_code == 400
    assert await _token_count(world.sessions, store.id) == 1


async def test_expiry_sweep_removes_only_expired_keys(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    store = await world.store()
    secret = await issue_token(world, store)
    for key in ("old", "fresh"):
        await client.post("/api/v1/api-tokens", json={"name": key}, headers={**bearer(secret), "Idempotency-Key": key})
    async with sessions() as session, session.begin():
        system_scope(session)
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert await IdempotencyStore(engine).sweep_expired() == 1
    async with sessions() as session:
        system_scope(session)
        assert (await session.scalars(select(IdempotencyKey.key))).all() == ["fresh"]
