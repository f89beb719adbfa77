"""Request metrics at /metrics: Litestar's Prometheus middleware, with each label set's series looked up once.

The metrics are Litestar's own (``till_requests_total``, ``till_request_duration_seconds``,
``till_requests_in_progress``, ``till_requests_error_total``; labels method, path template, status code, app
name). Its middleware builds a Request, a label dict, a ``functools.wraps`` of ``send`` and four
``Metric.labels()`` lookups (each under a lock) per request: about 6 % of a web process's CPU under a crowd of
checkouts (issue 20, measured with cProfile). Here a route's series are found once per (method, path template,
status) and kept; what is counted and observed is unchanged.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Message, Receive, Scope, Send

_Series = tuple[Any, Any, Any | None]  # the request counter's, the duration histogram's, the error counter's


class RequestMetricsMiddleware(PrometheusMiddleware):
    """Set as ``PrometheusConfig(middleware_class=...)``. Config options that need the Request per request
    (callable ``labels``, ``exemplars``, ``excluded_http_methods``) take Litestar's own path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_progress: dict[tuple[str, str], Any] = {}
        self._series: dict[tuple[str, str, int], _Series] = {}

    def _labels(self, method: str, path: str, status: int) -> dict[str, str | int | float]:
        return {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}

    def _gauge(self, method: str, path: str) -> Any:
        gauge = self._in_progress.get((method, path))
        if gauge is None:
            labels = self._labels(method, path, 200)  # the gauge's status label stays 200, as Litestar's does
            gauge = self._in_progress[(method, path)] = self.requests_in_progress(labels).labels(*labels.values())
        return gauge

    def _done(self, method: str, path: str, status: int) -> _Series:
        series = self._series.get((method, path, status))
        if series is None:
            labels = self._labels(method, path, status)
            values = [*labels.values()]
            errors = (
                self.requests_error_count(labels).labels(*values) if status >= HTTP_500_INTERNAL_SERVER_ERROR else None
            )
            series = (self.request_count(labels).labels(*values), self.request_time(labels).labels(*values), errors)
            self._series[(method, path, status)] = series
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self._config
        if config.labels or config.exemplars or config.excluded_http_methods:
            await super().__call__(scope, receive, send)
            return
        method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        path = scope["path_template"] if config.group_path else scope["path"]
        started = time.perf_counter()
        status = 200
        duration = 0.0

        async def timed_send(message: Message) -> None:
            nonlocal status, duration
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        gauge = self._gauge(method, path)
        gauge.inc()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            gauge.dec()
            count, histogram, errors = self._done(method, path, status)
            if errors is not None:
                errors.inc()
            count.inc()
            histogram.observe(duration)
