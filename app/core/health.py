"""/health (process up), /ready (database, Redis and migrations), /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusController
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import migration_state


class HealthController(Controller):
    include_in_schema = False

    @get("/health", cache=False)
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", cache=False)
    async def ready(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        checks: dict[str, str] = {}
        engine: AsyncEngine = request.app.state.engine
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current, head = await migration_state(engine)
            checks["database"] = "ok"
            checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
            checks["migrations"] = "unknown"
        try:
            await request.app.state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


# Run before each scrape, to refresh figures read from the database or Redis (app/media/metrics.py).
SCRAPE_HOOKS: list[Callable[[State], Awaitable[None]]] = []


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False

    @get()
    async def get(self, request: Request[Any, Any, Any]) -> Response[Any]:
        for hook in SCRAPE_HOOKS:
            await hook(request.app.state)
        response: Response[Any] = await PrometheusController.get.fn(self)
        return response
