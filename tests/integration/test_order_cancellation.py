"""Cancelling gives the money back through the provider and the stock back to the shelf, once."""

from __future__ import annotations

import asyncio
import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.inventory.models import StockLevel
from app.orders.models import OrderStatusChange
from app.payments.models import PaymentIntent, PaymentTransaction
from app.stores.models import Store
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import Shop, make_shop, place_order

Sessions = async_sessionmaker[AsyncSession]


async def _order(sessions: Sessions, shop: Shop, redis: Redis, settings: Settings) -> uuid.UUID:
    return (await place_order(sessions, shop, redis, settings, {"MUG-1": 2})).id


async def _state(sessions: Sessions, shop: Shop) -> tuple[int, str, list[str]]:
    """(on hand of MUG-1, the intent's status, the ledger's kinds in order)."""
    async with sessions() as session:
        bind_store(session, shop.store.id)
        level = await session.scalar(select(StockLevel).where(StockLevel.variant_id == shop.variants["MUG-1"]))
        intent = await session.scalar(select(PaymentIntent))
        assert level is not None and intent is not None
        kinds = await session.scalars(
            select(PaymentTransaction.kind).order_by(PaymentTransaction.created_at, PaymentTransaction.id)
        )
        return level.on_hand, intent.status, list(kinds)


async def test_a_manager_cancels_a_paid_order_once_money_refunded_and_stock_back(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id = await _order(sessions, shop, redis, settings)
    assert await _state(sessions, shop) == (48, "captured", ["authorize"])
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    url = f"/api/v1/orders/{order_id}/status"
    # Two managers press "cancel" at once: one refund, one restock, one history row.
    replies = await asyncio.gather(
        *(client.patch(url, json={"status": "cancelled", "reason": "Out of milk"}, headers=manager) for _ in range(2))
    )
    assert [r.status_code for r in replies] == [200, 200], replies[0].text
    body = replies[0].json()
    assert (body["status"], body["payment_status"]) == ("cancelled", "refunded")
    assert body["history"][0]["reason"] == "Out of milk" and body["next_statuses"] == []
    assert await _state(sessions, shop) == (50, "refunded", ["authorize", "refund"])
    async with sessions() as session:
        bind_store(session, shop.store.id)
        changes = (await session.scalars(select(OrderStatusChange.to_status))).all()
    assert changes == ["cancelled"]


async def test_cancelling_an_authorised_order_voids_it(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    async with sessions() as session, session.begin():
        store = await session.get(Store, shop.store.id)
        assert store is not None
        store.settings = {**store.settings, "capture_policy": "at_fulfilment"}
    shop.store.settings = {**shop.store.settings, "capture_policy": "at_fulfilment"}
    order_id = await _order(sessions, shop, redis, settings)
    assert await _state(sessions, shop) == (48, "authorized", ["authorize"])
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    reply = await client.patch(
        f"/api/v1/orders/{order_id}/status", json={"status": "cancelled", "reason": "Shop closed"}, headers=manager
    )
    assert reply.status_code == 200 and reply.json()["payment_status"] == "voided"
    assert await _state(sessions, shop) == (50, "voided", ["authorize", "void"])


async def test_cancelling_needs_a_reason_a_manager_and_nothing_handed_over(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id = await _order(sessions, shop, redis, settings)
    url = f"/api/v1/orders/{order_id}/status"
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    no_reason = await client.patch(url, json={"status": "cancelled"}, headers=manager)
    assert no_reason.status_code == 422 and no_reason.json()["fields"] == {"reason": "Required to cancel."}
    staff = bearer(await issue_token(world, shop.store, Role.STAFF))
    by_staff = await client.patch(url, json={"status": "cancelled", "reason": "x"}, headers=staff)
    assert by_staff.status_code == 403 and "manager" in by_staff.json()["detail"]
    handed = await client.patch(url, json={"axis": "fulfilment", "status": "fulfilled"}, headers=staff)
    assert handed.status_code == 200
    too_late = await client.patch(url, json={"status": "cancelled", "reason": "x"}, headers=manager)
    assert too_late.status_code == 409 and "return" in too_late.json()["detail"]
    assert await _state(sessions, shop) == (48, "captured", ["authorize"])  # nothing moved
