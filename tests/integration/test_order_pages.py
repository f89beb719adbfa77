"""Staff order pages: the list, one order, moving it on and cancelling it from the page."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.rbac import Role
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.shop import Shop, make_shop, place_order

Sessions = async_sessionmaker[AsyncSession]


async def _order(sessions: Sessions, shop: Shop, redis: Redis, settings: Settings) -> tuple[uuid.UUID, int]:
    order = await place_order(sessions, shop, redis, settings, {"CRO-1": 3}, email="zoe@example.com")
    return order.id, order.number


async def test_staff_find_an_order_move_it_on_and_see_the_timeline(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id, number = await _order(sessions, shop, redis, settings)
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    listing = await client.get("/staff/orders?q=zoe@")
    assert listing.status_code == 200 and f"#{number}" in listing.text and "zoe@example.com" in listing.text
    assert "No orders match." in (await client.get("/staff/orders?status=ready")).text
    page = await client.get(f"/staff/orders/{order_id}")
    assert "Mark accepted" in page.text and "Cancel this order" not in page.text  # staff cannot cancel
    moved = await client.post(
        f"/staff/orders/{order_id}/status",
        data={"axis": "order", "status": "accepted", "_csrf_token": csrf_from(page.text)},
    )
    assert moved.status_code == 303
    after = await client.get(f"/staff/orders/{order_id}")
    assert "Marked accepted." in after.text and "placed → accepted" in after.text and "Mark in progress" in after.text
    refused = await client.post(
        f"/staff/orders/{order_id}/status",
        data={"axis": "order", "status": "completed", "_csrf_token": csrf_from(after.text)},
    )
    assert refused.status_code == 303
    assert "cannot become completed" in (await client.get(f"/staff/orders/{order_id}")).text


async def test_a_manager_cancels_from_the_page_and_a_missing_reason_is_said(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id, _ = await _order(sessions, shop, redis, settings)
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get(f"/staff/orders/{order_id}")
    assert "Cancel this order" in page.text
    url = f"/staff/orders/{order_id}/status"
    no_reason = await client.post(url, data={"status": "cancelled", "_csrf_token": csrf_from(page.text)})
    assert no_reason.status_code == 303
    again = await client.get(f"/staff/orders/{order_id}")
    assert "Say why the order is cancelled." in again.text
    done = await client.post(
        url, data={"status": "cancelled", "reason": "Customer called", "_csrf_token": csrf_from(again.text)}
    )
    assert done.status_code == 303
    final = await client.get(f"/staff/orders/{order_id}")
    assert "Customer called" in final.text and "payment: refunded" in final.text
    assert 'data-testid="order-status">cancelled' in final.text


async def test_managers_export_the_list_and_an_orders_audit(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id, number = await _order(sessions, shop, redis, settings)
    await place_order(sessions, shop, redis, settings, email="=cmd@example.com")  # a formula-looking cell
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get(f"/staff/orders/{order_id}")
    await client.post(
        f"/staff/orders/{order_id}/status",
        data={"axis": "order", "status": "accepted", "_csrf_token": csrf_from(page.text)},
    )
    listing = await client.get("/staff/orders/export.csv")
    assert listing.status_code == 200 and listing.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(listing.text)))
    assert rows[0][0] == "number" and len(rows) == 3
    assert {r[3] for r in rows[1:]} == {"zoe@example.com", "'=cmd@example.com"}
    only_accepted = list(csv.reader(io.StringIO((await client.get("/staff/orders/export.csv?status=accepted")).text)))
    assert [r[0] for r in only_accepted[1:]] == [str(number)]
    audit = list(csv.reader(io.StringIO((await client.get(f"/staff/orders/{order_id}/audit.csv")).text)))
    assert [r[1] for r in audit[1:]] == ["order.changed", "payment.authorize", "order.placed"]
    assert audit[1][2] == "placed → accepted" and audit[1][4] == "staff"


async def test_the_audit_log_api_is_for_managers(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id, _ = await _order(sessions, shop, redis, settings)
    url = f"/api/v1/admin/orders/{order_id}/audit-log"
    staff = bearer(await issue_token(world, shop.store, Role.STAFF))
    assert (await client.get(url, headers=staff)).status_code == 403
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    entries = (await client.get(url, headers=manager)).json()
    assert [e["kind"] for e in entries] == ["payment.authorize", "order.placed"]
    assert entries[0]["summary"].startswith("captured") and "7.20" in entries[0]["summary"]
    assert entries[0]["reference"].startswith("checkout:")
    other = bearer(await issue_token(world, (await make_shop(world)).store, Role.OWNER))
    assert (await client.get(url, headers=other)).status_code == 404


async def test_the_list_filters_by_payment_channel_days_and_name_and_sorts_both_ways(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    old_id, old_number = await _order(sessions, shop, redis, settings)
    new = await place_order(sessions, shop, redis, settings, email="max@example.com")
    async with sessions() as session, session.begin():  # the first order: three days ago, delivered to Zelda
        await session.execute(
            text("UPDATE orders SET placed_at = now() - interval '3 days', address = :address WHERE id = :id"),
            {"id": old_id, "address": '{"name": "Zelda Quill", "line1": "1 Main St"}'},
        )
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)

    def numbers(html: str) -> list[int]:
        return [int(n) for n in re.findall(r'<a href="/staff/orders/[^"]+">#(\d+)</a>', html)]

    today = datetime.now(ZoneInfo(shop.store.timezone)).date().isoformat()
    assert numbers((await client.get(f"/staff/orders?since={today}&until={today}")).text) == [new.number]
    assert numbers((await client.get("/staff/orders?sort=oldest")).text) == [old_number, new.number]
    assert numbers((await client.get("/staff/orders")).text) == [new.number, old_number]
    assert numbers((await client.get("/staff/orders?payment=paid&channel=web")).text) == [new.number, old_number]
    assert numbers((await client.get("/staff/orders?payment=refunded")).text) == []
    assert numbers((await client.get("/staff/orders?channel=pos")).text) == []
    named = (await client.get("/staff/orders?q=zel")).text
    assert numbers(named) == [old_number] and "Zelda Quill" in named


async def test_dates_that_are_not_dates_are_said_inline_and_refused_by_the_export(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    bad = await client.get("/staff/orders?since=2026-13-01")
    assert bad.status_code == 422 and "Enter a date such as 2026-11-23." in bad.text
    assert 'value="2026-13-01"' in bad.text  # kept for correcting
    backwards = await client.get("/staff/orders?since=2026-11-20&until=2026-11-01")
    assert backwards.status_code == 422 and "The last day comes before the first." in backwards.text
    export = await client.get("/staff/orders/export.csv?until=yesterday")
    assert export.status_code == 422 and "Check the dates." in export.text  # a staff page: the HTML error page


async def test_the_timeline_filters_by_kind_and_the_payment_panel_shows_the_ledger(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order_id, _ = await _order(sessions, shop, redis, settings)
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    page = await client.get(f"/staff/orders/{order_id}")
    await client.post(
        f"/staff/orders/{order_id}/status",
        data={"axis": "order", "status": "accepted", "_csrf_token": csrf_from(page.text)},
    )
    everything = (await client.get(f"/staff/orders/{order_id}")).text
    kinds = re.findall(r'<li data-kind="([^"]+)"', everything)
    assert kinds == ["order.changed", "payment.authorize", "order.placed"]  # newest first
    assert "•••• 4242" in everything and 'data-testid="payment-ledger"' in everything
    payments_only = (await client.get(f"/staff/orders/{order_id}?timeline=payment")).text
    assert re.findall(r'<li data-kind="([^"]+)"', payments_only) == ["payment.authorize"]
    fulfilment = (await client.get(f"/staff/orders/{order_id}?timeline=fulfilment")).text
    assert "Nothing of this kind yet." in fulfilment
