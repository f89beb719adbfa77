"""What completing a checkout reads: the rows it needs, not the store's order history, catalog or stock (issue 20).

Each statement the completion sends is first run under ``EXPLAIN (ANALYZE, FORMAT JSON)`` in a transaction that
is rolled back, then for real, so the plans read are the plans the real statements get, in the same state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.services import CatalogService, ProductInput, VariantInput
from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.payments.provider import CardDetails
from app.payments.registry import provider_for
from tests.integration.conftest import World
from tests.integration.shop import make_shop, place_order
from tests.integration.test_checkout_saga import _quote

VISA = CardDetails("4242424242424242", 12, 2034, "123")
CATALOG = 300
_STOCK_EVERYWHERE = """
    INSERT INTO stock_levels (id, store_id, variant_id, location_id, on_hand, reserved, created_at, updated_at)
    SELECT gen_random_uuid(), v.store_id, v.id,
           (SELECT id FROM locations WHERE store_id = v.store_id AND is_default LIMIT 1), 5, 0, now(), now()
    FROM variants v
    WHERE v.store_id = :store_id AND NOT EXISTS (SELECT 1 FROM stock_levels s WHERE s.variant_id = v.id)
"""


class _RolledBack(Exception):
    pass


def _scans(node: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(table, node type, rows read in all its loops) of every scan in a plan."""
    if "Relation Name" in node and "Scan" in node["Node Type"]:
        yield node["Relation Name"], node["Node Type"], node["Actual Rows"] * node["Actual Loops"]
    for child in node.get("Plans", []):
        yield from _scans(child)


async def test_completing_a_checkout_reads_one_payment_intent_and_the_carts_variants_and_stock_only(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop(world)
    async with sessions() as session, session.begin():  # a catalog far larger than the cart, every item in stock
        catalog = CatalogService(session, shop.store.id)
        for n in range(CATALOG):
            await catalog.save_product(
                ProductInput(
                    name=f"Tea {n}", slug=f"tea-{n}", description="", category_id=None, tax_class="standard",
                    image="", is_active=True,
                    variants=[VariantInput(sku=f"TEA-{n}", options={}, price="3.00", weight_grams="100")],
                )
            )  # fmt: skip
        await session.execute(text(_STOCK_EVERYWHERE), {"store_id": shop.store.id})
    async with sessions() as session:  # statistics that know the tables' sizes, as in a store that has traded
        await session.execute(text("ANALYZE variants, stock_levels, cart_lines, payment_intents"))
    for _ in range(5):  # an order history: five payment intents before this checkout
        await place_order(sessions, shop, redis, settings)
    snapshot = await _quote(sessions, shop, {"BEAN-1": 1, "MUG-1": 1, "CRO-1": 1})

    plans: list[tuple[str, dict[str, Any]]] = []
    raw_execute = asyncpg.Connection._execute

    async def explained(self: asyncpg.Connection, query: str, args: Any, *rest: Any, **kwargs: Any) -> Any:
        if query.lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "UPDATE")):
            try:
                async with self.transaction():
                    rows = await raw_execute(self, f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", args, *rest, **kwargs)
                    explain = rows[0][0]
                    plans.append((query, (json.loads(explain) if isinstance(explain, str) else explain)[0]["Plan"]))
                    raise _RolledBack
            except _RolledBack:
                pass
        return await raw_execute(self, query, args, *rest, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "_execute", explained)
    saga = CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))
    outcome = await saga.complete(snapshot.id, uuid.uuid4().hex, PaymentInput(card=VISA), fingerprint="f")
    monkeypatch.undo()

    assert outcome.state == "completed"
    assert len(plans) == 3  # snapshot read, claim + reserve, place (ADR 0003's budget)
    too_many = [
        (table, kind, rows, query.split()[:4])
        for query, plan in plans
        for table, kind, rows in _scans(plan)
        # one intent (the one this checkout opens or follows); the three lines' variants; their stock rows, twice
        # at most (the place statement locks them, then moves them)
        if (table == "payment_intents" and rows > 1)
        or (table == "variants" and rows > 3)
        or (table == "stock_levels" and rows > 6)
    ]
    assert not too_many, too_many
