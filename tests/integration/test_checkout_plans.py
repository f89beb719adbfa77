"""What completing a checkout reads: the rows it needs, not the store's order history, catalog or stock (issue 20).

Each statement the completion sends is first run under ``EXPLAIN (ANALYZE, FORMAT JSON)`` in a transaction that
is rolled back, then for real, so the plans read are the plans the real statements get, in the same state: the
custom plan (made for the parameters' values, as for a prepared statement's first runs) and the generic one that a
pooled connection's prepared statement settles on after a few runs. "Read" counts the rows a scan returned and
those its filter removed."""

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
from app.core.tenancy import bind_store
from app.payments.provider import CardDetails
from app.payments.registry import provider_for
from app.promotions.models import Promotion
from tests.integration.conftest import World
from tests.integration.shop import Shop, make_shop, place_order
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
HISTORY = 2000
_PAYMENT_HISTORY = """
    INSERT INTO payment_intents (id, store_id, provider, provider_ref, status, capture_method, currency,
                                 amount_minor, captured_minor, refunded_minor, card_brand, card_last4, version,
                                 created_at, updated_at)
    SELECT gen_random_uuid(), :store_id, 'sandbox', 'pi_history_' || n, 'voided', 'automatic', 'EUR', 1000, 0, 0,
           'visa', '4242', 1, now() - n * interval '1 minute', now() - n * interval '1 minute'
    FROM generate_series(1, :count) AS n
"""
_RESERVATION_HISTORY = """
    INSERT INTO stock_reservations (id, store_id, holder_id, variant_id, location_id, quantity, status, expires_at,
                                    created_at, updated_at)
    SELECT gen_random_uuid(), s.store_id, gen_random_uuid(), s.variant_id, s.location_id, 1, 'committed', now(),
           now(), now()
    FROM generate_series(1, :count) AS n
    JOIN LATERAL (SELECT * FROM stock_levels WHERE store_id = :store_id ORDER BY id OFFSET n % 300 LIMIT 1) s ON true
"""
IN_FLIGHT = 200
_CHECKOUTS_IN_FLIGHT = """
    WITH snapshots AS (
        INSERT INTO checkout_snapshots (id, store_id, cart_id, customer_id, email, phone, currency, prices_include_tax,
                                        lines, discounts, tax_lines, shipping, address, subtotal_minor, discount_minor,
                                        shipping_minor, tax_minor, total_minor, content_hash, expires_at, status,
                                        created_at, updated_at)
        SELECT gen_random_uuid(), store_id, cart_id, customer_id, email, phone, currency, prices_include_tax, lines,
               discounts, tax_lines, shipping, address, subtotal_minor, discount_minor, shipping_minor, tax_minor,
               total_minor, content_hash, expires_at, status, created_at, updated_at
        FROM checkout_snapshots, generate_series(1, :count)
        WHERE id = :snapshot_id
        RETURNING id, store_id
    ), attempts AS (
        INSERT INTO checkout_attempts (id, store_id, snapshot_id, idempotency_key, request_hash, state, amount_minor,
                                       card_brand, card_last4, error_code, error_message, steps, created_at,
                                       updated_at)
        SELECT gen_random_uuid(), store_id, id, 'in-flight-' || id, '', 'reserved', 100, '', '', '', '', '[]'::jsonb,
               now(), now()
        FROM snapshots
        RETURNING id, store_id
    )
    INSERT INTO stock_reservations (id, store_id, holder_id, variant_id, location_id, quantity, status, expires_at,
                                    created_at, updated_at)
    SELECT gen_random_uuid(), a.store_id, a.id, s.variant_id, s.location_id, 1, 'active',
           now() + interval '15 minutes', now(), now()
    FROM attempts a
    CROSS JOIN LATERAL (SELECT variant_id, location_id FROM stock_levels WHERE store_id = a.store_id LIMIT 3) s
"""


class _RolledBack(Exception):
    pass


async def _generic_plan(conn: asyncpg.Connection, execute: Any, query: str, args: Any) -> dict[str, Any]:
    """The plan of ``query`` as a pooled connection's prepared statement settles on it after a few runs (generic:
    made without the parameters' values), run under EXPLAIN ANALYZE in a transaction that is rolled back.
    ``execute`` is asyncpg's own ``Connection._execute`` (the test replaces it)."""
    literals = []
    for kind, value in zip((await conn.prepare(query)).get_parameters(), args, strict=True):
        name = (await execute(conn, "SELECT format_type($1::oid, NULL)", [kind.oid], 0, None))[0][0]
        literal = (await execute(conn, f"SELECT quote_nullable($1::{name})", [value], 0, None))[0][0]
        literals.append(f"{literal}::{name}")
    explain: Any = None
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE generic AS {query}")
            explained = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE generic ({', '.join(literals)})"
            explain = (await execute(conn, explained, [], 0, None))[0][0]
            raise _RolledBack
    except _RolledBack:
        pass
    finally:
        await conn.execute("DEALLOCATE generic")
    return (json.loads(explain) if isinstance(explain, str) else explain)[0]["Plan"]  # type: ignore[no-any-return]


def _explain_each_statement(
    monkeypatch: pytest.MonkeyPatch, kinds: tuple[str, ...]
) -> list[tuple[str, str, dict[str, Any]]]:
    """From now until ``monkeypatch.undo()``, each statement sent through asyncpg that starts with one of ``kinds``
    runs first under EXPLAIN (ANALYZE, BUFFERS) for its custom plan and then for the generic one, both rolled back,
    then for real. Returns the list that ("custom" or "generic", statement, plan) go to, in that order."""
    plans: list[tuple[str, str, dict[str, Any]]] = []
    raw_execute = asyncpg.Connection._execute

    async def explained(self: asyncpg.Connection, query: str, args: Any, *rest: Any, **kwargs: Any) -> Any:
        if query.lstrip().upper().startswith(kinds):
            try:
                async with self.transaction():
                    explain_query = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}"
                    explain = (await raw_execute(self, explain_query, args, *rest, **kwargs))[0][0]
                    plan = (json.loads(explain) if isinstance(explain, str) else explain)[0]["Plan"]
                    plans.append(("custom", query, plan))
                    raise _RolledBack
            except _RolledBack:
                pass
            plans.append(("generic", query, await _generic_plan(self, raw_execute, query, args)))
        return await raw_execute(self, query, args, *rest, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "_execute", explained)
    return plans


def _scans(node: dict[str, Any]) -> Iterator[tuple[str, str, int, int]]:
    """(table, or index for a bitmap index scan; node type; rows or index entries read in all its loops: those
    returned and those a filter or recheck removed; shared buffers it touched, its own, in all its loops) of every
    scan in a plan. An index scan whose condition is not on the index's leading columns walks the whole index
    without removing anything: only its buffers show it."""
    name = node.get("Relation Name") or (node.get("Index Name") if node["Node Type"] == "Bitmap Index Scan" else None)
    if name and "Scan" in node["Node Type"]:
        removed = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
        read = node["Actual Rows"] + removed
        buffers = _buffers(node) - sum(_buffers(child) for child in node.get("Plans", []))
        yield name, node["Node Type"], read * node["Actual Loops"], buffers
    for child in node.get("Plans", []):
        yield from _scans(child)


def _buffers(node: dict[str, Any]) -> int:
    """Shared buffers a plan node touched, its children's included (EXPLAIN's BUFFERS)."""
    return int(node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0))


async def _a_store_that_has_traded(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, redis: Redis, settings: Settings
) -> None:
    """A catalog far larger than a cart, every item in stock, a payment history far longer than one checkout,
    orders placed through the checkout, and statistics of it all."""
    async with sessions() as session, session.begin():
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
        await session.execute(text(_PAYMENT_HISTORY), {"store_id": shop.store.id, "count": HISTORY})
        await session.execute(text(_RESERVATION_HISTORY), {"store_id": shop.store.id, "count": HISTORY})
    for _ in range(5):
        await place_order(sessions, shop, redis, settings)
    async with sessions() as session, session.begin():  # committed: pg_statistic's rows go with the transaction
        await session.execute(text("ANALYZE"))


async def test_completing_a_checkout_reads_one_payment_intent_and_the_carts_variants_and_stock_only(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop(world)
    await _a_store_that_has_traded(sessions, shop, redis, settings)
    snapshot = await _quote(sessions, shop, {"BEAN-1": 1, "MUG-1": 1, "CRO-1": 1})
    async with sessions() as session, session.begin():  # a crowd: checkouts in flight the statistics do not know of
        await session.execute(text(_CHECKOUTS_IN_FLIGHT), {"snapshot_id": snapshot.id, "count": IN_FLIGHT})

    plans = _explain_each_statement(monkeypatch, ("SELECT", "WITH", "INSERT", "UPDATE"))
    saga = CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))
    outcome = await saga.complete(snapshot.id, uuid.uuid4().hex, PaymentInput(card=VISA), fingerprint="f")
    monkeypatch.undo()

    assert outcome.state == "completed"
    # snapshot read, claim + reserve, place (ADR 0003's budget), each custom then generic
    assert [which for which, _, _ in plans] == ["custom", "generic"] * 3
    too_many = [
        (table, kind, rows, query.split()[:4], which)
        for which, query, plan in plans
        for table, kind, rows, _ in _scans(plan)
        # one intent (the one this checkout opens or follows); the three lines' variants; their stock rows, twice
        # at most (the place statement locks them, then moves them); the three reservations this checkout holds;
        # its attempt, whatever other checkouts are in flight
        if (table == "payment_intents" and rows > 1)
        or (table == "variants" and rows > 3)
        or (table == "stock_levels" and rows > 6)
        or ("stock_reservations" in table and rows > 3)  # the table or one of its indexes
        or (table == "checkout_attempts" and rows > 1)
    ]
    assert not too_many, too_many


SHOPPERS = 2000
_PROMOTION_USES = """
    INSERT INTO promotion_customer_uses (id, store_id, promotion_id, customer_key, uses, created_at, updated_at)
    SELECT gen_random_uuid(), :store_id, :promotion_id, 'shopper-' || n || '@example.com', 1, now(), now()
    FROM generate_series(1, :count) AS n
"""
_OTHER_CARTS = """
    WITH carts AS (
        INSERT INTO carts (id, store_id, token, currency, status, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, 'other-' || n, 'EUR', 'open', now(), now()
        FROM generate_series(1, :count) AS n
        RETURNING id, store_id
    )
    INSERT INTO cart_lines (id, store_id, cart_id, variant_id, quantity, created_at, updated_at)
    SELECT gen_random_uuid(), c.store_id, c.id, v.id, 1, now(), now()
    FROM carts c CROSS JOIN LATERAL (SELECT id FROM variants WHERE store_id = c.store_id LIMIT 3) v
"""


async def test_a_quote_reads_its_cart_and_the_shoppers_own_promotion_uses(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop(world)
    async with sessions() as session, session.begin():  # a once-per-shopper code that 2,000 shoppers have used,
        bind_store(session, shop.store.id)  # and a first-order offer (the quote asks whether the shopper ordered)
        once = Promotion(name="Once", code="ONCE", kind="percentage", percent_bps=1000, per_customer_limit=1)
        session.add_all([once, Promotion(name="Welcome", kind="percentage", percent_bps=500, first_order_only=True)])
        await session.flush()
        await session.execute(
            text(_PROMOTION_USES), {"store_id": shop.store.id, "promotion_id": once.id, "count": SHOPPERS}
        )
        await session.execute(text(_OTHER_CARTS), {"store_id": shop.store.id, "count": SHOPPERS})
    await _a_store_that_has_traded(sessions, shop, redis, settings)

    plans = _explain_each_statement(monkeypatch, ("SELECT", "WITH"))
    snapshot = await _quote(sessions, shop, {"BEAN-1": 1, "MUG-1": 1, "CRO-1": 1}, email="Shopper-7@example.com")
    monkeypatch.undo()

    assert len(snapshot.lines) == 3
    assert [which for which, _, _ in plans] == ["custom", "generic"]  # the quote's one read (and its insert)
    reads = [(which, *read) for which, _, plan in plans for read in _scans(plan)]
    too_many = [
        (which, table, kind, rows, buffers)
        for which, table, kind, rows, buffers in reads
        # the store's two promotions; the shopper's one use, not the 2,000 others'; the cart, not the 2,000 others,
        # and its three lines, their variants, products and stock rows, not the store's 300 items (a few loops of
        # one row by index). The first-order check reads the store's 5 orders whole: too few to need an index.
        if (table == "promotions" and rows > 2)
        or (table == "promotion_customer_uses" and (rows > 1 or buffers > 3))
        or (table == "carts" and (rows > 1 or buffers > 3))
        or (table in ("cart_lines", "variants", "products", "stock_levels") and (rows > 4 or buffers > 12))
    ]
    assert not too_many, (too_many, reads)
