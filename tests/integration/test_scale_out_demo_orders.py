"""First impression (issue 20): a new demo store from `till up` has orders along the board from every channel — web
orders through the real checkout, counter sales through the POS services on an open shift (cash with change, a card
on the sandbox's simulated reader), and a marketplace's orders through signed ingestion — and a second run adds
nothing."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.tenancy import bind_store
from app.pos.reports import shift_report
from app.pos.shifts import ShiftService
from app.seed import DEMO_FLOAT_MINOR, DEMO_REGISTER, DEMO_SLUG, seed_demo, seed_demo_orders
from app.stores.models import Store

WEB = ["placed", "accepted", "in_progress", "ready", "completed"]
SEEDED = [*WEB, "completed (POS)", "ready (POS)", "accepted (ingested)", "placed (ingested)"]

# Everything the order seed writes, counted for "a second run adds nothing".
COUNTS = {
    "orders": "SELECT count(*) FROM orders WHERE store_id = :s",
    "order_lines": "SELECT count(*) FROM order_lines WHERE store_id = :s",
    "placed_events": "SELECT count(*) FROM outbox_events WHERE store_id = :s AND type = 'order.placed'",
    "status_changes": "SELECT count(*) FROM order_status_changes WHERE store_id = :s",
    "sale_movements": "SELECT count(*) FROM stock_movements WHERE store_id = :s AND reason = 'sale'",
    "on_hand": "SELECT sum(on_hand) FROM stock_levels WHERE store_id = :s",
    "payment_rows": "SELECT count(*) FROM payment_transactions WHERE store_id = :s",
    "registers": "SELECT count(*) FROM registers WHERE store_id = :s",
    "shifts": "SELECT count(*) FROM shifts WHERE store_id = :s",
    "pos_sales": "SELECT count(*) FROM pos_sales WHERE store_id = :s",
    "pos_tenders": "SELECT count(*) FROM pos_tenders WHERE store_id = :s",
    "card_readers": "SELECT count(*) FROM card_readers WHERE store_id = :s",
    "reader_payments": "SELECT count(*) FROM reader_payments WHERE store_id = :s",
    "ingested": "SELECT count(*) FROM ingested_orders WHERE store_id = :s",
    "attempts": "SELECT count(*) FROM ingestion_attempts WHERE store_id = :s",
    "api_tokens": "SELECT count(*) FROM api_tokens WHERE store_id = :s",
    "secrets": "SELECT count(*) FROM ingestion_secrets WHERE store_id = :s",
}


async def _counts(engine: AsyncEngine, store_id: uuid.UUID) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {name: (await conn.execute(text(sql), {"s": store_id})).scalar_one() for name, sql in COUNTS.items()}


async def _rows(engine: AsyncEngine, sql: str, store_id: uuid.UUID) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(text(sql), {"s": store_id})]


async def test_a_new_demo_store_has_orders_from_every_channel_and_a_second_run_adds_nothing(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    async with sessions() as session, session.begin():
        assert await seed_demo(session)
    placed = await seed_demo_orders(settings)
    assert [p.split(" ", 1)[1] for p in placed] == SEEDED
    async with sessions() as session:
        store_id = await session.scalar(select(Store.id).where(Store.slug == DEMO_SLUG))
    assert store_id is not None

    orders = await _rows(
        engine,
        "SELECT number, status, channel, payment_status, fulfilment_method, email FROM orders WHERE store_id = :s "
        "ORDER BY number",
        store_id,
    )
    assert [f"#{o['number']} {o['status']}" for o in orders] == [p.removesuffix(" (POS)").removesuffix(" (ingested)")
                                                                  for p in placed]  # fmt: skip
    # Nine consecutive numbers; on a fresh database (`till up`) the sequence starts at 1001, so they are the
    # #1001–#1009 the README quotes. The suite's database shares the sequence with earlier tests, so not here.
    first = orders[0]["number"]
    assert [o["number"] for o in orders] == list(range(first, first + 9))
    start = await _rows(
        engine, "SELECT start_value FROM pg_sequences WHERE sequencename = 'order_number_seq'", store_id
    )
    assert [row["start_value"] for row in start] == [1001]
    assert [o["channel"] for o in orders] == ["web"] * 5 + ["pos"] * 2 + ["ingested"] * 2
    assert [o["payment_status"] for o in orders] == ["paid"] * 8 + ["unpaid"]  # the channel took the 8th's money
    assert [o["email"] for o in orders[7:]] == ["noah@example.com", "emma@example.com"]

    # The counter: both sales in one open shift of Counter 1 that Cara Cashier opened with the float.
    sales = await _rows(
        engine,
        "SELECT s.shift_id, s.review_status, o.number, o.total_minor, t.kind, t.amount_minor, t.tendered_minor, "
        "t.change_minor, rp.status AS card_status, rp.amount_minor AS card_minor, sh.closed_at, sh.opening_float_minor,"
        " u.email AS opened_by, r.name AS register FROM pos_sales s JOIN orders o ON o.id = s.order_id "
        "JOIN pos_tenders t ON t.sale_id = s.id JOIN shifts sh ON sh.id = s.shift_id JOIN registers r ON "
        "r.id = s.register_id JOIN users u ON u.id = sh.opened_by_id LEFT JOIN reader_payments rp ON "
        "rp.id = t.reader_payment_id WHERE s.store_id = :s ORDER BY o.number",
        store_id,
    )
    assert len(sales) == 2 and len({s["shift_id"] for s in sales}) == 1
    cash, card = sales
    assert {s["register"] for s in sales} == {DEMO_REGISTER}
    assert all(s["closed_at"] is None and s["opening_float_minor"] == DEMO_FLOAT_MINOR for s in sales)
    assert {s["opened_by"] for s in sales} == {"cashier@demo.till"}
    assert {s["review_status"] for s in sales} == {"none"}
    assert (cash["kind"], cash["amount_minor"], cash["tendered_minor"], cash["change_minor"]) == (
        "cash",
        660,
        1000,
        340,
    )
    assert (card["kind"], card["card_status"], card["card_minor"]) == ("card", "approved", card["total_minor"])
    assert card["amount_minor"] == card["total_minor"] == 2 * 420 + 2 * 340
    readers = await _rows(engine, "SELECT status, register_id FROM card_readers WHERE store_id = :s", store_id)
    assert readers == [{"status": "retired", "register_id": None}]  # set aside: no device plays it
    ledger = await _rows(
        engine,
        "SELECT x.kind, x.status, x.amount_minor FROM payment_transactions x JOIN payment_intents i ON "
        "i.id = x.intent_id JOIN orders o ON o.id = i.order_id WHERE x.store_id = :s AND o.channel = 'pos' "
        "ORDER BY x.created_at",
        store_id,
    )
    assert [(r["kind"], r["amount_minor"]) for r in ledger] == [("authorize", 1520), ("capture", 1520)]
    async with sessions() as session:
        bind_store(session, store_id)
        report = await shift_report(session, await ShiftService(session, store_id).get(cash["shift_id"]))
    assert (report.sales_count, report.sales_minor) == (2, 660 + 1520)
    assert report.expected_cash_minor == DEMO_FLOAT_MINOR + 660

    # Stock went through the sales: 2 cardamom buns of 12 at the counter, one filter pack of 40 by the channel.
    stock = await _rows(
        engine,
        "SELECT v.sku, l.on_hand FROM stock_levels l JOIN variants v ON v.id = l.variant_id WHERE l.store_id = :s "
        "AND v.sku IN ('BAK-CARDA', 'GEAR-FILTERS-02-100', 'TEA-EARL-100')",
        store_id,
    )
    assert {r["sku"]: r["on_hand"] for r in stock} == {"BAK-CARDA": 10, "GEAR-FILTERS-02-100": 39, "TEA-EARL-100": 20}

    # The marketplace: accepted by signature, logged, and its token revoked (nobody holds it).
    attempts = await _rows(
        engine, "SELECT client_order_id, outcome, status_code FROM ingestion_attempts WHERE store_id = :s "
        "ORDER BY client_order_id", store_id,
    )  # fmt: skip
    assert [(a["client_order_id"], a["outcome"], a["status_code"]) for a in attempts] == [
        ("market-demo-1001", "accepted", 201),
        ("market-demo-1002", "accepted", 201),
    ]
    tokens = await _rows(engine, "SELECT name, revoked_at FROM api_tokens WHERE store_id = :s", store_id)
    assert [t["name"] for t in tokens] == ["Demo marketplace"] and tokens[0]["revoked_at"] is not None

    before = await _counts(engine, store_id)
    assert before["placed_events"] == 9
    assert await seed_demo_orders(settings) == []
    assert await _counts(engine, store_id) == before
