"""The staff payments list (/staff/payments) and its API (/api/v1/admin/payments): filters, totals, pages."""

from __future__ import annotations

import itertools
import re
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.payments.listing import PaymentFilter, PaymentListing
from app.payments.models import PaymentIntent
from app.payments.services import order_payment_status
from tests.integration.conftest import World, bearer, issue_token, sign_in
from tests.integration.shop import Shop, make_shop, place_order

Sessions = async_sessionmaker[AsyncSession]
API = "/api/v1/admin/payments"
SUMS = ("authorised_minor", "captured_minor", "refunded_minor")


async def _intent_of(sessions: Sessions, shop: Shop, order: Order) -> PaymentIntent:
    async with sessions() as session:
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
        assert intent is not None
        return intent


async def _change(sessions: Sessions, shop: Shop, intent_id: uuid.UUID, **values: Any) -> None:
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        await session.execute(
            update(PaymentIntent)
            .where(PaymentIntent.id == intent_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def _add_intents(sessions: Sessions, shop: Shop, like: PaymentIntent, rows: list[dict[str, Any]]) -> None:
    """More intents on ``like``'s snapshot, with no order unless a row says which (none of them active)."""
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        for row in rows:
            values: dict[str, Any] = {
                "snapshot_id": like.snapshot_id,
                "order_id": None,
                "provider": "sandbox",
                "provider_ref": f"ref-{uuid.uuid4().hex[:10]}",
                "status": "declined",
                "capture_method": "automatic",
                "currency": like.currency,
                "amount_minor": like.amount_minor,
                "captured_minor": 0,
                "refunded_minor": 0,
                "card_brand": "visa",
                "card_last4": "0002",
                **row,
            }
            session.add(PaymentIntent(**values))


async def _all(client: AsyncTestClient[Litestar], headers: dict[str, str], query: str = "") -> dict[str, Any]:
    response = await client.get(f"{API}?limit=200&{query}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["next_cursor"] is None
    return body


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


def _totals_from_rows(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    sums: dict[tuple[str, str], dict[str, int]] = {}
    for item in items:
        key = (item["status"], item["currency"])
        group = sums.setdefault(key, {"count": 0, "fees_minor": 0, **dict.fromkeys(SUMS, 0)})
        group["count"] += 1
        group["fees_minor"] += item["processing_fee_minor"] + item["application_fee_minor"]
        for name in SUMS:
            group[name] += item[name]
    return sums


def _totals(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, int]]:
    return {
        (t["status"], t["currency"]): {k: v for k, v in t.items() if k not in ("status", "currency")}
        for t in body["totals"]
    }


async def test_each_filter_narrows_the_list_and_the_totals_add_up_the_rows(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    old = await place_order(sessions, shop, redis, settings, email="old@example.com")
    held = await place_order(sessions, shop, redis, settings, email="held@example.com")
    part = await place_order(sessions, shop, redis, settings, {"BEAN-1": 2}, email="part@example.com")
    a, b, c = [await _intent_of(sessions, shop, order) for order in (old, held, part)]
    assert c.status == "captured" and c.captured_minor == c.amount_minor  # the sandbox captures at checkout
    three_days_ago = datetime.now(ZoneInfo("UTC")) - timedelta(days=3)
    # checkout fixed real fees on every payment; this one's are cleared so the sums below stay readable
    await _change(
        sessions,
        shop,
        a.id,
        provider="stripe",
        created_at=three_days_ago,
        processing_fee_minor=0,
        application_fee_minor=0,
    )
    await _change(sessions, shop, b.id, status="authorized", captured_minor=0)
    await _change(sessions, shop, c.id, refunded_minor=100, processing_fee_minor=40, application_fee_minor=7)
    await _add_intents(sessions, shop, a, [{"order_id": old.id, "created_at": three_days_ago - timedelta(minutes=1)}])
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))

    everything = await _all(client, manager)
    assert len(everything["items"]) == 4
    declined = next(i for i in everything["items"] if i["status"] == "declined")
    declined_id = uuid.UUID(declined["id"])
    by_id = {i["id"]: i for i in everything["items"]}
    assert _ids(everything) == [str(c.id), str(b.id), str(a.id), declined["id"]]  # newest first
    assert by_id[str(b.id)]["payment_status"] == "authorized" and by_id[str(b.id)]["authorised_minor"] > 0
    assert declined["payment_status"] == "unpaid" and declined["authorised_minor"] == 0
    assert declined["order_number"] == old.number and declined["email"] == "old@example.com"
    assert _totals(everything) == _totals_from_rows(everything["items"])
    assert _totals(everything)[("captured", "EUR")]["fees_minor"] == 47

    today = datetime.now(ZoneInfo(shop.store.timezone)).date().isoformat()
    for query, expected in (
        ("status=authorized", [b.id]),
        ("status=declined", [declined_id]),
        ("payment=partially_refunded", [c.id]),
        ("payment=paid", [a.id]),
        ("payment=unpaid", [declined_id]),
        ("payment=refunded", []),
        ("provider=stripe", [a.id]),
        ("provider=sandbox&status=captured", [c.id]),
        (f"since={today}&until={today}", [c.id, b.id]),
        (f"until={(datetime.now(ZoneInfo(shop.store.timezone)) - timedelta(days=1)).date()}", [a.id, declined_id]),
        (f"q=%23{old.number}", [a.id, declined_id]),
        (f"q={held.number}&status=captured", []),
    ):
        body = await _all(client, manager, query)
        assert _ids(body) == [str(x) for x in expected], query
        assert _totals(body) == _totals_from_rows(body["items"]), query

    # The page shows the same rows, the totals strip, links to the orders and the money as the order pages do.
    await sign_in(client, (await world.staff(shop.store, Role.MANAGER)).email)
    page = await client.get(f"/staff/payments?provider=sandbox&since={today}")
    assert page.status_code == 200
    assert re.findall(r'<a href="/staff/orders/([^"]+)">#', page.text) == [str(part.id), str(held.id)]
    assert 'data-status="captured" data-currency="EUR"' in page.text
    assert 'data-status="authorized" data-currency="EUR"' in page.text and 'data-status="declined"' not in page.text
    assert (
        "€1.00" in page.text
        and '<small class="muted">partially refunded</small>' in page.text
        and "•••• 4242" in page.text
    )
    assert 'option value="sandbox" selected' in page.text and f'value="{today}"' in page.text
    empty = await client.get("/staff/payments?payment=voided")
    assert "No payments match." in empty.text and 'data-testid="payment-totals"' not in empty.text


async def test_pages_have_no_gaps_or_repeats_and_the_next_link_keeps_the_filters(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order = await place_order(sessions, shop, redis, settings)
    intent = await _intent_of(sessions, shop, order)
    same_moment = datetime.now(ZoneInfo("UTC")) - timedelta(hours=1)  # ties: the id breaks them
    await _add_intents(
        sessions,
        shop,
        intent,
        [
            {
                "created_at": same_moment if n % 4 else same_moment - timedelta(seconds=n),
                "provider": "stripe" if n % 3 == 2 else "sandbox",
            }
            for n in range(80)
        ],
    )
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        response = await client.get(API, params={"limit": 7, **({"cursor": cursor} if cursor else {})}, headers=manager)
        body = response.json()
        seen += _ids(body)
        pages += 1
        assert body["totals"] == (await _all(client, manager))["totals"]  # every page carries all of them
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 12 and len(seen) == 81 and len(set(seen)) == 81
    assert seen == _ids(await _all(client, manager))

    await sign_in(client, (await world.staff(shop.store, Role.OWNER)).email)
    first = await client.get("/staff/payments?provider=sandbox")
    link = re.search(r'href="(/staff/payments\?[^"]+)">Older payments', first.text)
    assert link is not None
    href = link.group(1).replace("&amp;", "&")
    assert "provider=sandbox" in href and "cursor=" in href
    second = await client.get(href)
    rows = re.findall(r'<tr data-payment="([^"]+)"', first.text) + re.findall(
        r'<tr data-payment="([^"]+)"', second.text
    )
    sandbox = _ids(await _all(client, manager, "provider=sandbox"))
    assert rows == sandbox and len(sandbox) == 55 and "Older payments" not in second.text


async def test_another_stores_payments_never_show(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    mine, theirs = await make_shop(world), await make_shop(world)
    own = await place_order(sessions, mine, redis, settings, email="mine@example.com")
    other = await place_order(sessions, theirs, redis, settings, email="theirs@example.com")
    await place_order(sessions, theirs, redis, settings, email="theirs@example.com")
    manager = bearer(await issue_token(world, mine.store, Role.MANAGER))
    body = await _all(client, manager)
    assert [i["order_number"] for i in body["items"]] == [own.number]
    assert [t["count"] for t in body["totals"]] == [1]
    assert (await _all(client, manager, f"q={other.number}"))["items"] == []
    await sign_in(client, (await world.staff(mine.store, Role.MANAGER)).email)
    page = (await client.get("/staff/payments")).text
    assert "mine@example.com" in page and "theirs@example.com" not in page and str(other.id) not in page
    async with sessions() as session:  # the service on its own, past the HTTP layer
        rows, _ = await PaymentListing(session, mine.store.id).page(PaymentFilter(), limit=200)
        assert {r.email for r in rows} == {"mine@example.com"}


async def test_bad_filters_are_said_inline_on_the_page_and_as_problems_by_the_api(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    await sign_in(client, (await world.staff(store, Role.MANAGER)).email)
    bad = await client.get("/staff/payments?since=2026-13-01&q=abc")
    assert bad.status_code == 422 and "Enter a date such as 2026-11-23." in bad.text
    assert "Enter an order number, such as 1042." in bad.text and 'value="2026-13-01"' in bad.text
    backwards = await client.get("/staff/payments?since=2026-11-20&until=2026-11-01")
    assert backwards.status_code == 422 and "The last day comes before the first." in backwards.text
    assert 'id="payment-until" name="until" type="date" value="2026-11-01" aria-invalid="true"' in backwards.text
    lenient = await client.get("/staff/payments?status=nonsense&cursor=garbage")  # a hand-edited link
    assert lenient.status_code == 200 and "No payments match." in lenient.text

    manager = bearer(await issue_token(world, store, Role.MANAGER))
    for query, field in (
        ("since=2026-02-30", "since"),
        ("since=2026-11-20&until=2026-11-01", "until"),
        ("status=paid", "status"),
        ("payment=captured", "payment"),
        ("provider=paypal", "provider"),
        ("q=ann@example.com", "q"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
    ):
        response = await client.get(f"{API}?{query}", headers=manager)
        assert response.status_code == 422, query
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == 422 and list(problem["fields"]) == [field], query


async def test_managers_and_owners_only(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    for role in (Role.CASHIER, Role.STAFF):
        await sign_in(client, (await world.staff(store, role)).email)
        assert (await client.get("/staff/payments")).status_code == 403
        assert 'href="/staff/payments"' not in (await client.get("/staff/orders")).text
        assert (await client.get(API, headers=bearer(await issue_token(world, store, role)))).status_code == 403
    assert (await client.get(API)).status_code == 401
    owner = bearer(await issue_token(world, store, Role.OWNER))
    assert (await client.get(API, headers=owner)).json() == {"items": [], "next_cursor": None, "totals": []}
    await sign_in(client, (await world.staff(store, Role.MANAGER)).email)
    page = await client.get("/staff/payments")
    assert page.status_code == 200 and '<a href="/staff/payments" aria-current="page">Payments</a>' in page.text


async def test_the_lists_payment_status_is_the_ledgers(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    """The SQL that derives an intent's order payment status agrees with order_payment_status on every shape."""
    shop = await make_shop(world)
    intent = await _intent_of(sessions, shop, await place_order(sessions, shop, redis, settings))
    shapes = [(1000, 0, 0), (1000, 400, 0), (1000, 1000, 0), (1000, 1000, 300), (1000, 1000, 1000), (0, 0, 0)]
    statuses = ("authorized", "captured", "requires_action", "pending", "declined", "failed", "voided", "refunded")
    combos = [(s, *shape) for s, shape in itertools.product(statuses, shapes)]
    await _add_intents(
        sessions,
        shop,
        intent,
        [{"status": s, "amount_minor": a, "captured_minor": c, "refunded_minor": r} for s, a, c, r in combos],
    )
    async with sessions() as session:
        rows, _ = await PaymentListing(session, shop.store.id).page(PaymentFilter(), limit=200)
    assert len(rows) == len(combos) + 1
    for row in rows:
        expected = order_payment_status(
            PaymentIntent(
                status=row.status,
                amount_minor=row.amount_minor,
                captured_minor=row.captured_minor,
                refunded_minor=row.refunded_minor,
            )
        )
        assert row.payment_status == expected, row
    assert (
        Counter(r.payment_status for r in rows)["partially_refunded"] == 5
    )  # the shape, under each status not declined, failed or voided


async def test_the_api_is_documented(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    operation = schema["paths"]["/api/v1/admin/payments"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"payment", "status", "provider", "since", "until", "q", "limit", "cursor"} <= set(params)
    assert "captured" in params["status"]["schema"]["enum"]
    assert "partially_refunded" in params["payment"]["schema"]["enum"]
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert response.endswith("/PaymentPage")
    assert {"items", "next_cursor", "totals"} <= set(schema["components"]["schemas"]["PaymentPage"]["properties"])
