"""Enqueueing SAQ jobs: the one place that carries the correlation id into a job (``job.meta``)."""

from __future__ import annotations

from typing import Any

from saq import Job, Queue

from app.core.logging import current_correlation_id


async def enqueue(
    queue: Queue,
    task_name: str,
    *,
    key: str | None = None,
    correlation_id: str | None = None,
    retries: int = 3,
    **kwargs: Any,
) -> Job | None:
    """Enqueue ``task_name``; a job with the same ``key`` already queued or running is not added twice."""
    options: dict[str, Any] = {
        "retries": retries,
        "retry_delay": 1.0,
        "retry_backoff": True,
        "meta": {"correlation_id": correlation_id or current_correlation_id()},
    }
    if key is not None:
        options["key"] = key
    return await queue.enqueue(task_name, **options, **kwargs)
