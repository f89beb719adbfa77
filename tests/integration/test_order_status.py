"""Moving orders through their states over the API: changes, no-ops, refusals, history, races, tenancy."""

from __future__ import annotations

import asyncio
import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.orders.models import OrderStatusChange
from app.orders.services import Actor, OrderService
from app.orders.states import Axis
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import Shop, make_shop, place_order

Sessions = async_sessionmaker[AsyncSession]


async def _order(sessions: Sessions, shop: Shop, redis: Redis, settings: Settings) -> uuid.UUID:
    return (await place_order(sessions, shop, redis, settings)).id


async def _history(sessions: Sessions, shop: Shop, order_id: uuid.UUID) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        bind_store(session, shop.store.id)
        rows = await session.scalars(
            select(OrderStatusChange)
            .where(OrderStatusChange.order_id == order_id)
            .order_by(OrderStatusChange.created_at)
        )
        return [(r.axis, r.from_status, r.to_status) for r in rows]


async def test_staff_move_a_pickup_order_to_completed_with_history_and_events(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id = await _order(sessions, shop, redis, settings)
    auth = bearer(await issue_token(world, shop.store, Role.STAFF))
    url = f"/api/v1/orders/{order_id}/status"
    first = await client.patch(url, json={"status": "accepted"}, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "accepted" and first.json()["next_statuses"] == ["in_progress"]
    again = await client.patch(url, json={"status": "accepted"}, headers=auth)  # a repeat is a no-op
    assert again.status_code == 200 and len(again.json()["history"]) == 1
    for status in ("in_progress", "ready", "completed"):
        assert (await client.patch(url, json={"status": status}, headers=auth)).status_code == 200
    for status in ("fulfilled", "picked_up"):
        moved = await client.patch(url, json={"axis": "fulfilment", "status": status}, headers=auth)
        assert moved.status_code == 200, moved.text
    detail = (await client.get(f"/api/v1/orders/{order_id}", headers=auth)).json()
    assert (detail["status"], detail["fulfilment_status"]) == ("completed", "picked_up")
    newest = detail["history"][0]
    assert (newest["from_status"], newest["to_status"], newest["source"]) == ("fulfilled", "picked_up", "api")
    assert newest["actor"] == "API token test" and newest["correlation_id"]
    assert await _history(sessions, shop, order_id) == [
        ("order", "placed", "accepted"),
        ("order", "accepted", "in_progress"),
        ("order", "in_progress", "ready"),
        ("order", "ready", "completed"),
        ("fulfilment", "unfulfilled", "fulfilled"),
        ("fulfilment", "fulfilled", "picked_up"),
    ]
    async with sessions() as session:
        bind_store(session, shop.store.id)
        events = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "order.status_changed")
        )
    assert events == 6


async def test_refusals_say_why_and_change_nothing(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id = await _order(sessions, shop, redis, settings)
    url = f"/api/v1/orders/{order_id}/status"
    staff = bearer(await issue_token(world, shop.store, Role.STAFF))
    skipped = await client.patch(url, json={"status": "ready"}, headers=staff)
    assert skipped.status_code == 409
    assert skipped.json()["detail"] == (
        "An order that is placed cannot become ready. From placed it can go to: accepted, cancelled."
    )
    shipped = await client.patch(url, json={"axis": "fulfilment", "status": "shipped"}, headers=staff)
    assert shipped.status_code == 409 and "cannot become shipped" in shipped.json()["detail"]
    cashier = bearer(await issue_token(world, shop.store, Role.CASHIER))
    forbidden = await client.patch(url, json={"status": "accepted"}, headers=cashier)
    assert forbidden.status_code == 403 and "staff role" in forbidden.json()["detail"]
    unknown = await client.patch(url, json={"status": "lost"}, headers=staff)
    assert unknown.status_code == 409
    bad_axis = await client.patch(url, json={"axis": "payment", "status": "paid"}, headers=staff)
    assert bad_axis.status_code == 400
    too_long = await client.patch(url, json={"status": "accepted", "reason": "x" * 501}, headers=staff)
    assert too_long.status_code == 422 and "reason" in too_long.json()["fields"]
    assert await _history(sessions, shop, order_id) == []
    other = await make_shop(world)  # another store's token: the order does not exist for it
    stranger = bearer(await issue_token(world, other.store, Role.OWNER))
    assert (await client.patch(url, json={"status": "accepted"}, headers=stranger)).status_code == 404
    assert (await client.get(f"/api/v1/orders/{order_id}", headers=stranger)).status_code == 404


async def test_concurrent_changes_queue_and_none_is_lost(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id = await _order(sessions, shop, redis, settings)
    auth = bearer(await issue_token(world, shop.store, Role.STAFF))
    url = f"/api/v1/orders/{order_id}/status"
    # Two screens tap "accept" at once, while a third marks it fulfilled.
    replies = await asyncio.gather(
        client.patch(url, json={"status": "accepted"}, headers=auth),
        client.patch(url, json={"status": "accepted"}, headers=auth),
        client.patch(url, json={"axis": "fulfilment", "status": "fulfilled"}, headers=auth),
    )
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert sorted(await _history(sessions, shop, order_id)) == [
        ("fulfilment", "unfulfilled", "fulfilled"),
        ("order", "placed", "accepted"),
    ]
    detail = (await client.get(f"/api/v1/orders/{order_id}", headers=auth)).json()
    assert (detail["status"], detail["fulfilment_status"]) == ("accepted", "fulfilled")


async def test_ten_simultaneous_accepts_make_one_change(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    """Straight through the service, ten sessions at once: the row lock makes nine of them no-ops."""
    shop = await make_shop(world)
    order_id = await _order(sessions, shop, redis, settings)
    actor = Actor(Role.STAFF, "Sam", "staff")

    async def accept() -> bool:
        async with sessions() as session, session.begin():
            _, changed = await OrderService(session, shop.store.id).change_status(
                order_id, Axis.ORDER, "accepted", actor=actor
            )
            return changed

    assert sorted(await asyncio.gather(*(accept() for _ in range(10)))) == [False] * 9 + [True]
    assert await _history(sessions, shop, order_id) == [("order", "placed", "accepted")]


async def test_the_order_list_filters_and_pages_by_keyset(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, other = await make_shop(world), await make_shop(world)
    ids = [await _order(sessions, shop, redis, settings) for _ in range(5)]
    await _order(sessions, other, redis, settings)  # never listed for shop
    auth = bearer(await issue_token(world, shop.store, Role.STAFF))
    await client.patch(f"/api/v1/orders/{ids[1]}/status", json={"status": "accepted"}, headers=auth)
    first = (await client.get("/api/v1/orders?limit=2", headers=auth)).json()
    assert [o["id"] for o in first["items"]] == [str(ids[4]), str(ids[3])] and first["next_cursor"]
    late = await _order(sessions, shop, redis, settings)  # arrives while paging: no repeats, no gaps
    rest = (await client.get(f"/api/v1/orders?limit=10&cursor={first['next_cursor']}", headers=auth)).json()
    assert [o["id"] for o in rest["items"]] == [str(i) for i in reversed(ids[:3])] and rest["next_cursor"] is None
    newest = (await client.get("/api/v1/orders?limit=1", headers=auth)).json()
    assert newest["items"][0]["id"] == str(late)
    oldest = (await client.get("/api/v1/orders?sort=oldest&limit=1", headers=auth)).json()
    assert oldest["items"][0]["id"] == str(ids[0])
    accepted = (await client.get("/api/v1/orders?status=accepted", headers=auth)).json()
    assert [o["id"] for o in accepted["items"]] == [str(ids[1])]
    number = accepted["items"][0]["number"]
    by_number = (await client.get(f"/api/v1/orders?q=%23{number}", headers=auth)).json()
    assert [o["number"] for o in by_number["items"]] == [number]
    by_email = (await client.get("/api/v1/orders?q=ANN@&channel=web", headers=auth)).json()
    assert len(by_email["items"]) == 6
    assert (await client.get("/api/v1/orders?q=bob", headers=auth)).json()["items"] == []
    future = (await client.get("/api/v1/orders?placed_from=2099-01-01T00:00:00Z", headers=auth)).json()
    assert future["items"] == []
    bad_cursor = await client.get("/api/v1/orders?cursor=nonsense", headers=auth)
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json()["fields"]
    too_many = await client.get("/api/v1/orders?limit=500", headers=auth)
    assert too_many.status_code == 422 and "limit" in too_many.json()["fields"]
