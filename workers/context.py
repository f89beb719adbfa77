"""What a task finds in its SAQ ``ctx`` (filled by the worker's startup)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from saq.types import Context
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.idempotency import IdempotencyStore


class TillContext(Context, total=False):
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    idempotency: IdempotencyStore
    loops: list[asyncio.Task[None]]  # the outbox relay, the webhook processor
    settings: Settings
