"""Fixed-window failure counters in Redis (sign-in lockout)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True)
class FailureLimit:
    """After ``limit`` failures within ``window_s`` seconds, the key is locked until the window ends."""

    name: str
    limit: int
    window_s: int

    def _key(self, subject: str) -> str:
        return f"till:ratelimit:{self.name}:{subject}"

    async def locked_for(self, redis: Redis, subject: str) -> int:
        """Seconds until ``subject`` may try again; 0 when it may try now."""
        key = self._key(subject)
        count = await redis.get(key)
        if count is None or int(count) < self.limit:
            return 0
        ttl = await redis.ttl(key)
        return max(int(ttl), 1)

    async def record_failure(self, redis: Redis, subject: str) -> int:
        key = self._key(subject)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window_s, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def clear(self, redis: Redis, subject: str) -> None:
        await redis.delete(self._key(subject))


SIGNIN_PER_EMAIL = FailureLimit("signin-email", limit=5, window_s=15 * 60)
SIGNIN_PER_IP = FailureLimit("signin-ip", limit=30, window_s=15 * 60)
