"""Promotion codes on POS tickets (docs/pos.md, "Promotion codes"): POST /pos/api/price and POST /pos/api/sales take
a ``promotion_code``, checked by the web checkout's engine (a refusal is a 422 on ``promotion_code`` with nothing
written); its use is claimed in the sale's own statement, so a limit is never overrun (409 when the last use went
meanwhile); a queued sale whose code no longer applies at sync is sold as the tablet charged it, for review."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.rbac import Principal, Role
from app.core.tenancy import bind_store
from app.orders.models import Order, OrderLine
from app.pos.models import PosSale
from app.pos.sales import PosSales
from app.promotions.claims import load_offers
from app.promotions.models import Promotion
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, Till, batch, entry, open_till, sale_body, sales_of
from tests.integration.promotions import make_promotion, promotion_state
from tests.integration.statements import counted


async def _price(client: Client, till: Till, items: dict[str, int], code: str | None) -> Any:
    body = {"lines": [{"variant_id": str(till.variant(sku)), "quantity": q} for sku, q in items.items()],
            "promotion_code": code}  # fmt: skip
    return await client.post(f"{API}/price", json=body, headers=till.headers)


async def _sale(client: Client, till: Till, items: dict[str, int], code: str, **kwargs: Any) -> dict[str, Any]:
    """The sale the tablet sends after pricing the ticket with ``code``: each line's promotion part as priced."""
    priced = await _price(client, till, items, code)
    assert priced.status_code == 200, priced.text
    parts = [line["promotion_minor"] for line in priced.json()["lines"]]
    total = priced.json()["total_minor"]
    sale = sale_body(till, items, total=total, **kwargs)
    for line, part in zip(sale["lines"], parts, strict=True):
        line["promotion_minor"] = part
    sale["promotion_code"] = code
    return sale


async def _orders(sessions: Sessions, till: Till) -> int:
    async with sessions() as session:
        bind_store(session, till.store.id)
        return await session.scalar(select(func.count()).select_from(Order)) or 0


async def test_a_valid_code_discounts_each_line_exactly_and_is_claimed_once(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    promotion = await make_promotion(sessions, till.store, usage_limit=10)
    priced = await _price(client, till, {"CRO-1": 2, "MUG-1": 1}, "ten")
    assert priced.status_code == 200, priced.text
    body = priced.json()
    assert [line["promotion_minor"] for line in body["lines"]] == [48, 140]
    assert (body["promotion_code"], body["discount_minor"], body["total_minor"]) == ("TEN", 188, 1880 - 188)
    assert body["promotions"] == [{"code": "TEN", "name": "Ten off", "amount_minor": 188}]

    sale = await _sale(client, till, {"CRO-1": 2, "MUG-1": 1}, "ten")
    made = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert made.status_code == 201, made.text
    again = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert again.status_code == 200, again.text
    async with sessions() as session:
        bind_store(session, till.store.id)
        order = await session.get(Order, uuid.UUID(made.json()["order_id"]))
        assert order is not None
        assert (order.discount_minor, order.total_minor) == (188, 1692)
        assert [(d["code"], d["amount_minor"], d["lines"]) for d in order.discounts] == [
            ("TEN", 188, {"0": 48, "1": 140})
        ]
        lines = list(await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                           .order_by(OrderLine.position)))  # fmt: skip
        assert [(li.discount_minor, li.total_minor) for li in lines] == [(48, 432), (140, 1260)]
    state = await promotion_state(sessions, till.store.id, promotion.id)
    assert (state["uses_claimed"], state["statuses"]) == (1, {"used": 1})


async def test_automatic_promotions_apply_beside_the_code(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    await make_promotion(sessions, till.store, combinable=True)
    await make_promotion(sessions, till.store, name="Mug euro", code=None, kind="fixed", amount_minor=100,
                         combinable=True)  # fmt: skip
    priced = await _price(client, till, {"MUG-1": 1}, "TEN")
    assert priced.status_code == 200, priced.text
    assert {p["name"] for p in priced.json()["promotions"]} == {"Ten off", "Mug euro"}
    sale = await _sale(client, till, {"MUG-1": 1}, "TEN")
    made = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert made.status_code == 201, made.text
    assert made.json()["total_minor"] == priced.json()["total_minor"] < 1400 - 100


async def _expire(sessions: Sessions, promotion: Promotion) -> None:
    async with sessions() as session, session.begin():
        bind_store(session, promotion.store_id)
        await session.execute(update(Promotion).where(Promotion.id == promotion.id)
                              .values(ends_at=datetime.now(UTC) - timedelta(days=1)))  # fmt: skip


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown", "We don't know the code NOPE. Check the spelling."),
        ("paused", "This code is not active at the moment."),
        ("expired", "This code expired on"),
        ("minimum", "Spend €"),
        ("used_up", "This code has been used up."),
        ("per_customer", "This code is once per customer: add the customer to the ticket first."),
    ],
)
async def test_each_refusal_is_a_422_on_promotion_code_with_nothing_written(
    client: Client, world: World, sessions: Sessions, case: str, reason: str
) -> None:
    till = await open_till(client, world, sessions)
    fields: dict[str, Any] = {
        "minimum": {"min_subtotal_minor": 50_000},
        "used_up": {"usage_limit": 1},
        "per_customer": {"per_customer_limit": 1},
    }.get(case, {})
    promotion = await make_promotion(sessions, till.store, **fields)
    if case == "paused":
        async with sessions() as session, session.begin():
            bind_store(session, till.store.id)
            await session.execute(update(Promotion).where(Promotion.id == promotion.id).values(status="paused"))
    if case == "expired":
        await _expire(sessions, promotion)
    if case == "used_up":
        first = await client.post(f"{API}/sales", json=await _sale(client, till, {"CRO-1": 1}, "TEN"),
                                  headers=till.headers)  # fmt: skip
        assert first.status_code == 201, first.text
    code = "nope" if case == "unknown" else "TEN"
    before = await _orders(sessions, till)
    priced = await _price(client, till, {"CRO-1": 2}, code)
    assert priced.status_code == 422, priced.text
    assert priced.json()["fields"]["promotion_code"].startswith(reason)
    sale = sale_body(till, {"CRO-1": 2}, total=432)
    sale["promotion_code"] = code
    sale["lines"][0]["promotion_minor"] = 48
    refused = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["fields"]["promotion_code"].startswith(reason)
    assert await _orders(sessions, till) == before


async def test_a_code_used_up_between_price_and_sale_is_409(
    client: Client, world: World, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = await open_till(client, world, sessions)
    promotion = await make_promotion(sessions, till.store, usage_limit=1)
    sale = await _sale(client, till, {"CRO-1": 2}, "TEN")
    async with sessions() as session, session.begin():  # another till's sale took the last use meanwhile
        bind_store(session, till.store.id)
        await session.execute(update(Promotion).where(Promotion.id == promotion.id).values(uses_claimed=1))
    # priced by the engine as still valid (its uses were read before), the claim in the sale's statement refuses it
    real = load_offers

    async def stale(*args: Any, **kwargs: Any) -> Any:
        context = await real(*args, **kwargs)
        offers = tuple(replace(o, uses_claimed=0) for o in context.offers)
        return replace(context, offers=offers)

    monkeypatch.setattr("app.pos.promotions.load_offers", stale)
    refused = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["fields"]["promotion_code"] == "This code has just been used up."
    assert await _orders(sessions, till) == 0


async def test_a_limit_of_one_with_five_sales_at_once_gives_it_to_exactly_one(
    client: Client, world: World, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = await open_till(client, world, sessions)
    promotion = await make_promotion(sessions, till.store, usage_limit=1)
    sales = [await _sale(client, till, {"CRO-1": 2}, "TEN") for _ in range(5)]
    real = load_offers

    async def stale(*args: Any, **kwargs: Any) -> Any:  # all five priced before any claimed: the claims decide
        context = await real(*args, **kwargs)
        return replace(context, offers=tuple(replace(o, uses_claimed=0) for o in context.offers))

    monkeypatch.setattr("app.pos.promotions.load_offers", stale)
    answers = await asyncio.gather(*(client.post(f"{API}/sales", json=s, headers=till.headers) for s in sales))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409], [a.text for a in answers]
    assert all(a.json()["fields"]["promotion_code"] for a in answers if a.status_code == 409)
    state = await promotion_state(sessions, till.store.id, promotion.id)
    assert (state["uses_claimed"], state["statuses"]) == (1, {"used": 1})
    async with sessions() as session:
        bind_store(session, till.store.id)
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
        discounted = await session.scalar(select(func.count()).select_from(Order).where(Order.discount_minor > 0))
    assert discounted == 1


async def test_a_synced_sale_with_a_code_that_still_applies_claims_it(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    promotion = await make_promotion(sessions, till.store, usage_limit=5)
    sale = await _sale(client, till, {"CRO-1": 2}, "TEN", offline=True,
                       sold_at=datetime.now(UTC) - timedelta(minutes=10))  # fmt: skip
    queued = batch(till, [entry(sale, till.key)])
    for expected in ("created", "existing"):
        answer = await client.post(f"{API}/sync", json=queued, headers=till.headers)
        assert [r["status"] for r in answer.json()["results"]] == [expected], answer.text
    state = await promotion_state(sessions, till.store.id, promotion.id)
    assert (state["uses_claimed"], state["statuses"]) == (1, {"used": 1})


async def test_a_synced_sale_whose_code_no_longer_applies_is_kept_for_review(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    promotion = await make_promotion(sessions, till.store, usage_limit=5)
    sale = await _sale(client, till, {"CRO-1": 2}, "TEN", offline=True,
                       sold_at=datetime.now(UTC) - timedelta(minutes=10))  # fmt: skip
    await _expire(sessions, promotion)
    answer = await client.post(f"{API}/sync", json=batch(till, [entry(sale, till.key)]), headers=till.headers)
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["results"]
    assert result["status"] == "review", result
    assert "TEN" in result["reason"] and "expired" in result["reason"]
    [stored] = await sales_of(sessions, till.store)
    assert [c["kind"] for c in stored.conflicts] == ["promotion_refused"]
    async with sessions() as session:
        bind_store(session, till.store.id)
        order = await session.get(Order, stored.order_id)
        assert order is not None
        assert (order.discount_minor, order.total_minor, order.discounts) == (48, 432, [])
        assert await session.scalar(select(func.count()).select_from(PosSale)) == 1
    state = await promotion_state(sessions, till.store.id, promotion.id)
    assert (state["uses_claimed"], state["statuses"]) == (0, {})


async def test_a_synced_sale_whose_claim_is_refused_is_sold_without_the_use_for_review(
    client: Client, world: World, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = await open_till(client, world, sessions)
    promotion = await make_promotion(sessions, till.store, usage_limit=1)
    sale = await _sale(client, till, {"CRO-1": 2}, "TEN", offline=True,
                       sold_at=datetime.now(UTC) - timedelta(minutes=10))  # fmt: skip
    async with sessions() as session, session.begin():  # its last use went to another till's sale meanwhile
        bind_store(session, till.store.id)
        await session.execute(update(Promotion).where(Promotion.id == promotion.id).values(uses_claimed=1))
    real = load_offers

    async def stale(*args: Any, **kwargs: Any) -> Any:  # the engine still sees a use left: the claim decides
        context = await real(*args, **kwargs)
        offers = tuple(replace(o, uses_claimed=0) for o in context.offers)
        return replace(context, offers=offers)

    monkeypatch.setattr("app.pos.promotions.load_offers", stale)
    answer = await client.post(f"{API}/sync", json=batch(till, [entry(sale, till.key)]), headers=till.headers)
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["results"]
    assert result["status"] == "review", result
    assert "TEN" in result["reason"] and "used up" in result["reason"]
    [stored] = await sales_of(sessions, till.store)
    assert [(c["kind"], c["short"]) for c in stored.conflicts] == [("promotion_refused", "used_up")]
    async with sessions() as session:
        bind_store(session, till.store.id)
        order = await session.get(Order, stored.order_id)
        assert order is not None
        assert (order.discount_minor, order.total_minor, order.discounts) == (48, 432, [])
    state = await promotion_state(sessions, till.store.id, promotion.id)
    assert (state["uses_claimed"], state["statuses"]) == (1, {})


async def test_a_sale_with_a_code_reads_its_offers_once_and_claims_in_the_sale_statement(
    client: Client, world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The SQL budget (ADR 0003) of a sale naming a code: one more statement than a plain sale (the offers it is
    priced with, read once); the use is claimed inside the sale's own statement, which costs none."""
    till = await open_till(client, world, sessions)
    await make_promotion(sessions, till.store, usage_limit=5)
    sale = await _sale(client, till, {"CRO-1": 2, "MUG-1": 1}, "TEN")
    cashier = Principal("staff", till.store.id, till.store.slug, till.store.name, "EUR", "Europe/Berlin",
                        Role.CASHIER, "Cashier", user_id=till.cashier.user.id)  # fmt: skip
    sales = PosSales(engine, sessions, redis, till.store, cashier)
    with counted(engine, monkeypatch) as statements:
        status, _ = await sales.sell(sale)
    assert status == 201
    # the register and shift, a repeat of the claim?, the products, the offers, then the one statement that sells
    assert len(statements) <= 5, "\n".join(statements)
