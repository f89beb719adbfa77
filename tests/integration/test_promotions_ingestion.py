"""Ingested orders that name a promotion code: validated like a shopper's (422 naming it), the discount in the
totals and on the lines, the use claimed in the placing statement (never over the limit), once per order."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.core.money import Money
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.promotions.models import PromotionRedemption
from app.tax.providers import BuiltinTax, TaxableLine
from tests.integration.conftest import World
from tests.integration.http_server import serving
from tests.integration.promotions import Sessions, make_promotion, promotion_state
from tests.integration.shop import make_shop
from tests.integration.test_ingestion import (  # the autouse fixture gives _channel the app's keys
    Channel,
    _attempts,
    _channel,
    _remember_settings,  # noqa: F401
    _state,
)


def _discounted(channel: Channel, client_order_id: str, mugs: int, discount: int, **extra: Any) -> dict[str, Any]:
    """An order of mugs (14.00, standard tax, prices include tax) with ``discount`` off, its totals as Till counts
    them: tax on what is paid."""
    body = channel.body(client_order_id, items={"MUG-1": mugs}, **extra)
    paid = mugs * 1400 - discount
    tax = BuiltinTax.from_settings({}, "EUR").quote(
        [TaxableLine("m", Money(paid, "EUR"), "standard")], country="DE", prices_include_tax=True
    )
    body["totals"].update(tax_minor=tax.total_tax.amount_minor, total_minor=paid, discount_minor=discount)
    return body


async def test_an_order_naming_a_code_is_placed_with_its_discount_and_claims_one_use(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    promotion = await make_promotion(sessions, shop.store, usage_limit=5)
    body = _discounted(channel, "pos-1-0001", 2, 280, promotion_code="ten")
    placed = await channel.send(client, body)
    assert placed.status_code == 201, placed.text
    again = await channel.send(client, body)
    assert again.status_code == 200 and again.json() == placed.json()
    async with sessions() as session:
        bind_store(session, shop.store.id)
        order = await session.scalar(select(Order))
        assert order is not None
        assert (order.channel, order.discount_minor, order.total_minor) == ("ingested", 280, 2520)
        assert [line.discount_minor for line in order.lines] == [280]
        assert order.discounts[0]["code"] == "TEN"
        use = await session.scalar(select(PromotionRedemption))
        assert use is not None and (use.status, use.channel, use.order_id) == ("used", "ingested", order.id)
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state["uses_claimed"] == 1 and state["statuses"] == {"used": 1}


async def test_a_code_that_does_not_apply_is_refused_naming_it_and_nothing_is_written(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, engine: AsyncEngine
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    await make_promotion(sessions, shop.store, min_subtotal_minor=5000)
    before = await _state(engine, shop.store.id)
    unknown = await channel.send(client, _discounted(channel, "pos-1-0001", 2, 280, promotion_code="NOPE"))
    assert unknown.status_code == 422
    problem = unknown.json()
    assert problem["type"] == "https://till.dev/problems/promotion_invalid"
    assert problem["fields"] == {"promotion_code": "We don't know the code NOPE. Check the spelling."}
    assert problem["detail"].startswith("The code NOPE does not apply:")
    too_little = await channel.send(client, _discounted(channel, "pos-1-0002", 2, 280, promotion_code="TEN"))
    assert too_little.json()["fields"] == {"promotion_code": "Spend €22.00 more to use this code."}
    assert await _state(engine, shop.store.id) == before
    logged = await _attempts(engine, shop.store.id)
    assert [(a["outcome"], a["status_code"]) for a in logged] == [("rejected", 422), ("rejected", 422)]


async def test_totals_without_the_codes_discount_are_refused(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    await make_promotion(sessions, shop.store)
    body = channel.body("pos-1-0001", items={"MUG-1": 2}, promotion_code="TEN")  # totals without the discount
    body["totals"]["discount_minor"] = 0
    refused = await channel.send(client, body)
    assert refused.status_code == 422 and refused.json()["type"] == "https://till.dev/problems/totals_mismatch"
    assert refused.json()["fields"]["totals.discount_minor"] == "The code TEN gives 280."
    assert (
        refused.json()["fields"]["totals.total_minor"] == "Subtotal less the discount, shipping and tax add up to 2520."
    )


async def test_parallel_orders_never_use_a_code_more_than_its_limit(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    promotion = await make_promotion(sessions, shop.store, usage_limit=3)
    bodies = [_discounted(channel, f"pos-1-{i:04d}", 1, 140, promotion_code="TEN") for i in range(12)]
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
        answers = await asyncio.gather(*(channel.send(http, body) for body in bodies))
    statuses = Counter(a.status_code for a in answers)
    assert statuses[201] == 3 and sum(statuses.values()) == 12, statuses
    refused = [a.json() for a in answers if a.status_code != 201]
    assert {r["type"].rsplit("/", 1)[1] for r in refused} <= {"promotion_unavailable", "promotion_invalid"}
    assert {r["fields"]["promotion_code"] for r in refused} <= {
        "This code has just been used up.",
        "This code has been used up.",
    }
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state["uses_claimed"] == 3 and state["statuses"] == {"used": 3}
    async with sessions() as session:
        bind_store(session, shop.store.id)
        assert len((await session.scalars(select(Order.id))).all()) == 3
