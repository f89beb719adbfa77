"""A worker loop that drains a table on PostgreSQL NOTIFY, with a poll as the fallback.

The outbox relay (app/core/outbox.py) and the webhook processor (app/webhooks/processing.py) both wait on
a channel a trigger notifies (delivered on commit only) and drain what is there; the poll catches what a
lost listen connection or a time-based condition (a retry falling due) would otherwise leave.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

log = structlog.get_logger(__name__)


async def drain_on_notify(
    listen_dsn: str,
    channel: str,
    drain: Callable[[], Awaitable[int]],
    *,
    poll_interval: float = 1.0,
    gather_for: float = 0.0,
) -> None:
    """Call ``drain`` on every NOTIFY on ``channel`` and every ``poll_interval`` seconds. Runs until cancelled;
    a failing drain is logged and tried again on the next wake. With ``gather_for``, a NOTIFY is followed by
    that many seconds' wait before draining, so that a burst is drained in a few batches, not one per row."""
    wake = asyncio.Event()
    conn: asyncpg.Connection | None = None
    try:
        conn = await asyncpg.connect(listen_dsn)
        await conn.add_listener(channel, lambda *_: wake.set())
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("listen.failed", channel=channel, error=str(exc))
    try:
        while True:
            wake.clear()
            try:
                await drain()
            except Exception:
                log.exception("listen.drain_failed", channel=channel)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=poll_interval)
                if gather_for:
                    await asyncio.sleep(gather_for)
    finally:
        if conn is not None:
            await conn.close()
