"""Deleting a product deletes its media files (local backend here; S3 in test_media_s3.py): the deletion's
transaction records ``media.released`` with the product's assets, the worker's ``delete_media_files`` deletes their
files once it is committed; a rolled-back deletion keeps them; files of other products stay."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import Product
from app.catalog.services import CatalogService
from app.config import Settings
from app.core.outbox import OutboxEvent, consumers_of
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.media import jobs
from app.media.models import MediaAsset
from app.media.services import MEDIA_RELEASED
from app.orders.models import Order
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import make_shop, place_order
from tests.integration.test_media import processor, product_id, upload
from tests.unit.test_media_validation import phone_photo
from workers.settings import FUNCTIONS


async def released_events(sessions: async_sessionmaker[AsyncSession], pid: uuid.UUID) -> list[dict[str, Any]]:
    """The ``media.released`` events of a product, with the fields the relay hands to their consumers."""
    async with sessions() as session:
        system_scope(session)
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == MEDIA_RELEASED, OutboxEvent.aggregate_id == str(pid))
        )
        return [
            {
                "id": row.id,
                "store_id": str(row.store_id),
                "type": row.type,
                "aggregate_id": row.aggregate_id,
                "payload": row.payload,
            }
            for row in rows
        ]


async def uploaded_and_processed(
    client: AsyncTestClient[Litestar],
    headers: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    store_id: uuid.UUID,
    pid: uuid.UUID,
) -> str:
    status, body = await upload(client, headers, pid, phone_photo(400, 300), "image/jpeg")
    assert status == 202, body
    assert (await processor(sessions, settings).process(store_id, uuid.UUID(body["id"]))).status == "ready"
    return str(body["id"])


async def test_deleting_a_product_deletes_its_media_files_after_the_commit(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert consumers_of(MEDIA_RELEASED) == ["delete_media_files"]
    assert jobs.delete_media_files in FUNCTIONS  # the worker runs it

    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    mug, beans = await product_id(world, shop.store.id, "mug-1"), await product_id(world, shop.store.id, "bean-1")
    mug_assets = [
        await uploaded_and_processed(client, headers, sessions, settings, shop.store.id, mug) for _ in range(2)
    ]
    kept = await uploaded_and_processed(client, headers, sessions, settings, shop.store.id, beans)
    root = settings.data_dir / "media" / str(shop.store.id)
    for asset_id in [*mug_assets, kept]:
        assert len([p for p in (root / asset_id).iterdir() if p.is_file()]) == 6

    # A deletion that rolls back: the product, its rows and its files stay; no event.
    async with sessions() as session:
        await session.begin()
        await CatalogService(session, shop.store.id).delete_product(mug)
        await session.rollback()
    assert await released_events(sessions, mug) == []
    assert all((root / a).is_dir() for a in mug_assets)

    async with sessions() as session, session.begin():
        await CatalogService(session, shop.store.id).delete_product(mug)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.get(Product, mug) is None
        assert await session.scalar(select(func.count()).select_from(MediaAsset)) == 1  # the beans' photo
        deleted = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "product.deleted")
        )
    assert deleted == 1  # the storefront's cached pages refresh
    (event,) = await released_events(sessions, mug)
    assert sorted(event["payload"]["asset_ids"]) == sorted(mug_assets)
    assert all((root / a).is_dir() for a in mug_assets)  # the files go with the worker, after the commit

    ctx = {"settings": settings, "sessions": sessions}
    assert await jobs.delete_media_files(ctx, event=event) == 2
    assert not any((root / a).exists() for a in mug_assets)
    assert len([p for p in (root / kept).iterdir() if p.is_file()]) == 6  # another product's files stay
    assert await jobs.delete_media_files(ctx, event=event) == 2  # delivered again: nothing left, no error


async def test_an_ordered_product_without_media_is_deleted_without_an_event(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    pid = await product_id(world, shop.store.id, "cro-1")
    order = await place_order(sessions, shop, redis, settings, lines={"CRO-1": 2})
    async with sessions() as session, session.begin():
        await CatalogService(session, shop.store.id).delete_product(pid)
    assert await released_events(sessions, pid) == []
    async with sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.get(Product, pid) is None
        kept = await session.get(Order, order.id)
        assert kept is not None and kept.total_minor == order.total_minor  # the order stays as it was
