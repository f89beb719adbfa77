"""Health, readiness, metrics, correlation ids, OpenAPI, error pages and the storefront home."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.conftest import World, bearer, issue_token


async def test_health_and_ready(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "redis": "ok"}}
    assert "set-cookie" not in ready.headers


async def test_request_id_is_echoed_or_made(client: AsyncTestClient[Litestar]) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    made = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] not in ("", "bad id with spaces")


async def test_metrics_expose_latency_by_route_in_flight_and_errors(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("metrics")
    await client.get("/s/metrics")
    await client.get("/s/no-such-shop")
    body = (await client.get("/metrics")).text
    assert "till_request_duration_seconds_bucket{" in body
    assert 'path="/s/{slug}"' in body
    assert "till_requests_in_progress" in body
    assert "till_requests_error_total" in body or 'status_code="404"' in body
    assert store.slug == "metrics"


async def test_security_headers(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/signin")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_openapi_documents_every_api_route_and_only_those(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/store",
        "/api/v1/api-tokens",
        "/api/v1/api-tokens/{token_id}",
        "/api/v1/checkout/quote",
        "/api/v1/checkout/complete",
        "/api/v1/checkout/carts",
    } <= paths
    assert all(path.startswith("/api/v1/") for path in paths)
    assert set(schema["paths"]["/api/v1/store"]) == {"get", "patch"}


async def test_friendly_404_page_and_problem_json_404(client: AsyncTestClient[Litestar], world: World) -> None:
    page = await client.get("/s/nowhere-at-all")
    assert page.status_code == 404
    assert "No shop at this address." in page.text
    assert "<html" in page.text
    missing = await client.get("/definitely/not/here")
    assert missing.status_code == 404 and "We could not find that page." in missing.text
    store = await world.store()
    api = await client.get(
        "/api/v1/api-tokens/0198a5a0-0000-7000-8000-000000000000",
        headers=bearer(await issue_token(world, store)),
    )
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.json()["detail"] == "No such API token."


async def test_storefront_home_of_the_default_store(client: AsyncTestClient[Litestar], world: World) -> None:
    await world.store("demo")
    root = await client.get("/")
    assert root.status_code == 302 and root.headers["location"] == "/s/demo"
    home = await client.get("/s/demo")
    assert home.status_code == 200
    assert "Welcome to Demo" in home.text
