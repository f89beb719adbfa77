"""The request metrics middleware counts, times and tracks each request once, by route template and status."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.params import FromPath
from litestar.plugins.prometheus import PrometheusConfig
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from app.core.request_metrics import RequestMetricsMiddleware

PREFIX = "unit_request_metrics"


@get("/items/{item_id:int}")
async def item(item_id: FromPath[int]) -> dict[str, int]:
    return {"id": item_id}


@get("/skipped")
async def skipped() -> None:
    return None


@get("/boom")
async def boom() -> None:
    raise RuntimeError("broken")


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"{PREFIX}_{name}", {"app_name": "till", **labels}) or 0.0


async def test_each_request_is_counted_once_by_route_template_and_status() -> None:
    config = PrometheusConfig(
        app_name="till",
        prefix=PREFIX,
        group_path=True,
        exclude=["^/skipped"],
        middleware_class=RequestMetricsMiddleware,
    )
    app = Litestar(route_handlers=[item, boom, skipped], middleware=[config.middleware])
    ok = {"method": "GET", "path": "/items/{item_id}", "status_code": "200"}
    failed = {"method": "GET", "path": "/boom", "status_code": "500"}
    async with AsyncTestClient(app) as client:
        before_ok, before_failed = _value("requests_total", **ok), _value("requests_total", **failed)
        before_errors = _value("requests_error_total", **failed)
        for item_id in (1, 2, 3):
            assert (await client.get(f"/items/{item_id}")).status_code == 200
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/skipped")).status_code == 200
    assert _value("requests_total", **ok) == before_ok + 3
    assert _value("request_duration_seconds_count", **ok) >= 3
    assert _value("request_duration_seconds_sum", **ok) > 0
    assert _value("requests_total", **failed) == before_failed + 1
    assert _value("requests_error_total", **failed) == before_errors + 1
    assert _value("requests_error_total", **ok) == 0  # only 5xx count as errors
    gauge = {"method": "GET", "path": "/items/{item_id}", "status_code": "200"}
    assert _value("requests_in_progress", **gauge) == 0  # every request that started has ended
