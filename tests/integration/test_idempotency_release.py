"""A first request that ends in a 5xx releases its key, so the client's retry runs for real."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar, post
from litestar.middleware import ASGIMiddleware
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.core.db import create_engine
from app.core.idempotency import IdempotencyMiddleware, IdempotencyStore
from app.core.rbac import Principal, Role
from tests.integration.conftest import World


async def test_a_5xx_releases_the_key_and_the_retry_runs(world: World, settings: Settings) -> None:
    store = await world.store()
    principal = Principal(
        kind="token",
        store_id=store.id,
        store_slug=store.slug,
        store_name=store.name,
        currency="EUR",
        timezone="UTC",
        role=Role.OWNER,
        display_name="t",
        token_id=uuid.uuid4(),
    )
    calls: list[int] = []

    class AsPrincipal(ASGIMiddleware):
        async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
            scope["user"] = principal
            await next_app(scope, receive, send)

    @post("/api/v1/flaky", status_code=201)
    async def flaky(data: JSONBody[dict[str, Any]]) -> dict[str, int]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("provider hiccup")
        return {"attempt": len(calls)}

    async def open_store(app: Litestar) -> None:
        # The test client serves the app on its own event loop: its engine must be made there.
        app.state.engine = create_engine(settings.database_url or "", pool_size=2)
        app.state.idempotency = IdempotencyStore(app.state.engine)

    async def close_store(app: Litestar) -> None:
        await app.state.engine.dispose()

    app = Litestar(
        route_handlers=[flaky],
        middleware=[AsPrincipal(), IdempotencyMiddleware()],
        on_startup=[open_store],
        on_shutdown=[close_store],
    )
    async with AsyncTestClient(app=app) as client:
        headers = {"Idempotency-Key": "retry-me"}
        first = await client.post("/api/v1/flaky", json={"x": 1}, headers=headers)
        second = await client.post("/api/v1/flaky", json={"x": 1}, headers=headers)
        third = await client.post("/api/v1/flaky", json={"x": 1}, headers=headers)
    assert first.status_code == 500, first.text
    assert second.status_code != 500, (second.text, len(calls))
    assert second.status_code == 201 and second.json() == {"attempt": 2}
    assert third.status_code == 201 and third.json() == {"attempt": 2}
    assert third.headers["idempotent-replayed"] == "true"
    assert len(calls) == 2
