"""Looking a gift card up by its code (the shopper's balance-check page, the POS, checkout), guarded against guessing.

Refused lookups (no such code) are counted per client address and per store in Redis (``FailureLimit``): past
``PER_IP`` in the window an address gets 429 for every lookup, a right code included (or the limiter would still
tell a guesser when they hit); past ``PER_STORE`` the whole store's lookups answer 429 until the window ends (a
guesser spreading over many addresses). Each refusal is logged (store, address, never the code) and counted in
/metrics (``till_gift_card_lookup_failures_total``, ``till_gift_card_lookups_limited_total``).
"""

from __future__ import annotations

import uuid

import structlog
from prometheus_client import Counter
from redis.asyncio import Redis

from app.core import pg
from app.core.errors import TooManyRequests
from app.core.ratelimit import FailureLimit
from app.stored_value.instruments import find_gift_card
from app.stored_value.ledger import Account

PER_IP = FailureLimit("giftcard-ip", limit=10, window_s=15 * 60)
PER_STORE = FailureLimit("giftcard-store", limit=200, window_s=15 * 60)
TOO_MANY = "Too many gift card codes were tried. Wait {minutes} minutes and try again."

FAILURES = Counter("till_gift_card_lookup_failures_total", "Gift card lookups with no such code", ["channel"])
LIMITED = Counter("till_gift_card_lookups_limited_total", "Gift card lookups refused by the limiter", ["scope"])
log = structlog.get_logger(__name__)


async def check_limits(redis: Redis, store_id: uuid.UUID, client: str) -> None:
    """TooManyRequests (429) while this address, or this store, has had too many refused lookups.

    Both counters are read in one round trip (MGET); only a closed limit costs a second read (its TTL)."""
    checks = (("ip", PER_IP, f"{store_id}:{client}"), ("store", PER_STORE, str(store_id)))
    counts = await redis.mget([limit._key(subject) for _, limit, subject in checks])
    for (scope, limit, subject), count in zip(checks, counts, strict=True):
        if count is None or int(count) < limit.limit:
            continue
        wait = await limit.locked_for(redis, subject)
        if wait:
            LIMITED.labels(scope).inc()
            raise TooManyRequests(TOO_MANY.format(minutes=max(1, -(-wait // 60))), retry_after=wait)


async def lookup(
    conn: pg.Connection, redis: Redis, store_id: uuid.UUID, code: str, *, client: str, channel: str = "web"
) -> Account | None:
    """The card with ``code``, or None (counted against the limits); 429 when the limits are reached."""
    await check_limits(redis, store_id, client)
    account = await find_gift_card(conn, store_id, code)
    if account is None:
        await PER_IP.record_failure(redis, f"{store_id}:{client}")
        await PER_STORE.record_failure(redis, str(store_id))
        FAILURES.labels(channel).inc()
        log.warning("gift_card.lookup_failed", store_id=str(store_id), client=client, channel=channel)
    return account


__all__ = ["FAILURES", "LIMITED", "PER_IP", "PER_STORE", "check_limits", "lookup"]
