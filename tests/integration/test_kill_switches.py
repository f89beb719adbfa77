"""Kill switches: the state API (store and global, audited, mirrored to Redis) and the `till switch` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core import kill_switches as ks
from app.core.audit import AuditEntry
from app.core.tenancy import bind_store
from tests.integration.conftest import World


async def test_store_and_global_switches_engage_release_audit_and_mirror(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    shop, other = await world.store(), await world.store()
    async with sessions() as session:
        assert not await ks.is_engaged(session, ks.Switch.RECEIPTS_PAUSED, shop.id)

    async with sessions() as session:
        async with session.begin():
            assert await ks.engage(session, ks.Switch.RECEIPTS_PAUSED, shop.id, principal=None, reason="printer fire")
            assert not await ks.engage(session, ks.Switch.RECEIPTS_PAUSED, shop.id, principal=None)  # no-op
        await ks.refresh_mirror(session, redis)
    async with sessions() as session:
        assert await ks.is_engaged(session, ks.Switch.RECEIPTS_PAUSED, shop.id)
        assert not await ks.is_engaged(session, ks.Switch.RECEIPTS_PAUSED, other.id)  # another store: not touched
        assert not await ks.is_engaged(session, ks.Switch.MEDIA_PAUSED, shop.id)  # another switch
        assert not await ks.is_engaged(session, ks.Switch.RECEIPTS_PAUSED, None)  # not global
    assert await ks.engaged_fast(redis, ks.Switch.RECEIPTS_PAUSED, shop.id)
    assert not await ks.engaged_fast(redis, ks.Switch.RECEIPTS_PAUSED, other.id)

    # global: every store sees it; a store's release leaves the global one on
    async with sessions() as session:
        async with session.begin():
            assert await ks.engage(session, ks.Switch.MEDIA_PAUSED, None, principal=None, actor="ops")
        await ks.refresh_mirror(session, redis)
    async with sessions() as session:
        assert await ks.is_engaged(session, ks.Switch.MEDIA_PAUSED, shop.id)
        assert await ks.is_engaged(session, ks.Switch.MEDIA_PAUSED, other.id)
        assert await ks.is_engaged(session, ks.Switch.MEDIA_PAUSED, None)
    async with sessions() as session:
        async with session.begin():
            assert not await ks.release(session, ks.Switch.MEDIA_PAUSED, shop.id, principal=None)
        assert await ks.is_engaged(session, ks.Switch.MEDIA_PAUSED, shop.id)
    assert await ks.engaged_fast(redis, ks.Switch.MEDIA_PAUSED, other.id)

    async with sessions() as session:
        async with session.begin():
            assert await ks.release(session, ks.Switch.RECEIPTS_PAUSED, shop.id, principal=None, reason="fixed")
            assert await ks.release(session, ks.Switch.MEDIA_PAUSED, None, principal=None, actor="ops")
        await ks.refresh_mirror(session, redis)
    async with sessions() as session:
        assert not await ks.is_engaged(session, ks.Switch.RECEIPTS_PAUSED, shop.id)
        assert not await ks.is_engaged(session, ks.Switch.MEDIA_PAUSED, shop.id)
        changes = await ks.history(session, shop.id)
        assert [(c.switch, c.action) for c in changes] == [
            ("media_paused", "released"),
            ("receipts_paused", "released"),
            ("media_paused", "engaged"),
            ("receipts_paused", "engaged"),
        ]
        bind_store(session, shop.id)
        audited = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.created_at)))
        assert [(a.action, a.target_id, a.details) for a in audited] == [
            ("kill_switch.engaged", "receipts_paused", {"reason": "printer fire"}),
            ("kill_switch.released", "receipts_paused", {"reason": "fixed"}),
        ]
    assert not await ks.engaged_fast(redis, ks.Switch.MEDIA_PAUSED, other.id)


async def test_mirror_heals_from_the_database(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    shop = await world.store()
    async with sessions() as session:
        async with session.begin():
            await ks.engage(session, ks.Switch.PROVIDER_OFF, shop.id, principal=None)
        await ks.refresh_mirror(session, redis)
    await redis.flushdb()  # a lost Redis
    assert not await ks.engaged_fast(redis, ks.Switch.PROVIDER_OFF, shop.id)
    async with sessions() as session:
        assert await ks.refresh_mirror(session, redis) == 1
    assert await ks.engaged_fast(redis, ks.Switch.PROVIDER_OFF, shop.id)


def _till(args: list[str], settings: Settings, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert settings.database_url and settings.redis_url
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update({"TILL_DATA_DIR": str(tmp_path), "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url})
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "switch", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_cli_engages_lists_and_releases(
    world: World, sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    shop = await world.store()
    assert "no kill switch is engaged" in _till(["list"], settings, tmp_path).stdout
    done = _till(["engage", "card_tenders_off", "--store", shop.slug, "--reason", "reader outage"], settings, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"card_tenders_off engaged for {shop.slug}" in done.stdout
    assert "webhooks_paused engaged for every store" in _till(["engage", "webhooks_paused"], settings, tmp_path).stdout
    listed = _till(["list"], settings, tmp_path).stdout
    assert f"card_tenders_off\t{shop.slug}\ttill CLI" in listed and "reader outage" in listed
    assert "webhooks_paused\tglobal" in listed
    async with sessions() as session:
        assert await ks.is_engaged(session, ks.Switch.CARD_TENDERS_OFF, shop.id)
        assert await ks.is_engaged(session, ks.Switch.WEBHOOKS_PAUSED, shop.id)

    bad = _till(["engage", "card_tenders_off", "--store", "no-such-shop"], settings, tmp_path)
    assert bad.returncode == 2 and "no store 'no-such-shop'" in bad.stderr
    assert _till(["engage", "everything_off"], settings, tmp_path).returncode == 2  # not a switch

    assert "released" in _till(["release", "card_tenders_off", "--store", shop.slug], settings, tmp_path).stdout
    assert "released" in _till(["release", "webhooks_paused"], settings, tmp_path).stdout
    assert "already off" in _till(["release", "webhooks_paused"], settings, tmp_path).stdout
    async with sessions() as session:
        assert not await ks.is_engaged(session, ks.Switch.CARD_TENDERS_OFF, shop.id)
        assert not await ks.is_engaged(session, ks.Switch.WEBHOOKS_PAUSED, shop.id)
