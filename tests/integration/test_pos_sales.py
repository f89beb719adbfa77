"""POST /pos/api/sales: a sale exactly once under (store, register, client_sale_id), in one statement with its order
(channel pos, paid, pickup, on the live board at once), lines, stock movements and tenders; every bad input refused
with nothing written; discounts over the cashier's limit approved by a manager's PIN; stock short sold anyway and
recorded; a card tender is an approved reader payment of this register, used once. Also the catalog snapshot,
customer search and the server's pricing."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from saq import Queue
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.core.outbox import OutboxRelay, events_after
from app.core.passwords import hash_password
from app.core.rbac import Principal, Role
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.inventory.models import StockLevel, StockMovement
from app.main import create_app
from app.orders.board import BoardCards
from app.orders.models import Order, OrderLine
from app.payments.models import PaymentIntent
from app.pos.models import PosSale, PosTender
from app.pos.sales import PosSales
from app.pos.sync import PosSync
from app.stores.models import Membership, Store
from tests.integration.conftest import StaffMember, World
from tests.integration.pos import API, Client, Sessions, Till, batch, entry, open_till, sale_body, sales_of, signed_in
from tests.integration.statements import counted

PIN = "4821"


async def _counts(sessions: Sessions, store: Store) -> tuple[int, int, int, int, int]:
    """Sales, orders, tenders, stock movements and the croissants on hand."""
    async with sessions() as session:
        bind_store(session, store.id)
        return (
            await session.scalar(select(func.count()).select_from(PosSale)) or 0,
            await session.scalar(select(func.count()).select_from(Order)) or 0,
            await session.scalar(select(func.count()).select_from(PosTender)) or 0,
            await session.scalar(select(func.count()).where(StockMovement.reason == "sale")) or 0,
            await session.scalar(select(func.sum(StockLevel.on_hand))) or 0,
        )


async def _set_pin(sessions: Sessions, member: StaffMember, pin: str = PIN) -> None:
    async with sessions() as session, session.begin():
        bind_store(session, member.store.id)
        await session.execute(
            update(Membership).where(Membership.user_id == member.user.id).values(pos_pin_hash=hash_password(pin))
        )


async def _settings(sessions: Sessions, store: Store, **pos: Any) -> None:
    async with sessions() as session, session.begin():
        row = await session.get(Store, store.id)
        assert row is not None
        row.settings = {**row.settings, "pos": pos}
        store.settings = row.settings


async def test_a_cash_sale_is_a_paid_pos_pickup_order_on_the_board_at_once(
    app: Litestar, client: Client, world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    till = await open_till(client, world, sessions)
    sale = sale_body(
        till, {"CRO-1": 2, "MUG-1": 1}, tenders=[{"kind": "cash", "amount_minor": 1880, "tendered_minor": 2000}],
        notes={"CRO-1": "warm"},
    )  # fmt: skip
    made = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["total_minor"], body["change_minor"], body["status"]) == (1880, 120, "created")
    async with sessions() as session:
        bind_store(session, till.store.id)
        order = await session.get(Order, uuid.UUID(body["order_id"]))
        assert order is not None
        assert (order.number, order.channel, order.status, order.payment_status) == (
            body["order_number"], "pos", "placed", "paid",
        )  # fmt: skip
        assert (order.fulfilment_status, order.fulfilment_method, order.shipping["label"]) == (
            "unfulfilled", "pickup", "Counter",
        )  # fmt: skip
        assert (order.subtotal_minor, order.discount_minor, order.total_minor, order.prices_include_tax) == (
            1880, 0, 1880, True,
        )  # fmt: skip
        lines = list(await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                           .order_by(OrderLine.position)))  # fmt: skip
        assert [(li.sku, li.name, li.quantity, li.total_minor, li.tax_rate_bps) for li in lines] == [
            ("CRO-1", "Croissant · warm", 2, 480, 700),
            ("MUG-1", "Enamel mug", 1, 1400, 1900),
        ]
        assert order.tax_minor == sum(li.tax_minor for li in lines) == 31 + 224
        claim = await session.scalar(select(PosSale).where(PosSale.order_id == order.id))
        assert claim is not None
        assert (claim.register_id, claim.shift_id, claim.client_sale_id, claim.sequence, claim.offline) == (
            till.register_id, till.shift_id, uuid.UUID(sale["client_sale_id"]), sale["sequence"], False,
        )  # fmt: skip
        assert (claim.review_status, claim.conflicts, claim.cashier_id) == ("none", [], till.cashier.user.id)
        tenders = list(await session.scalars(select(PosTender).where(PosTender.sale_id == claim.id)))
        assert [(t.kind, t.amount_minor, t.tendered_minor, t.change_minor, t.shift_id) for t in tenders] == [
            ("cash", 1880, 2000, 120, till.shift_id)
        ]
        moved = (await session.execute(select(StockMovement.variant_id, StockMovement.delta, StockMovement.reference)
                                       .where(StockMovement.reason == "sale"))).all()  # fmt: skip
        assert sorted((v, d) for v, d, _ in moved) == sorted([(till.variant("CRO-1"), -2), (till.variant("MUG-1"), -1)])
        assert {r for _, _, r in moved} == {f"pos:{sale['client_sale_id']}"}

    relay = OutboxRelay(sessions, RedisChannelsPubSubBackend(redis=redis), Queue.from_url(settings.redis_url or ""))
    await relay.drain()
    async with sessions() as session:
        bind_store(session, till.store.id)
        events = [e for e in await events_after(session, till.store.id, 0) if e.type == "order.placed"]
    assert [e.aggregate_id for e in events] == [body["order_id"]]
    template = app.template_engine.get_template("orders/_card.html")  # type: ignore[union-attr]
    message = await BoardCards(sessions, till.store.id, template.render, timedelta(minutes=10)).message(events[0])
    assert message is not None and f"#{body['order_number']}".encode() in message


async def test_the_same_sale_again_answers_the_same_and_another_sale_under_its_id_is_409(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sale = sale_body(till)
    first = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    answers = await asyncio.gather(*(client.post(f"{API}/sales", json=sale, headers=till.headers) for _ in range(8)))
    assert first.status_code == 201
    assert {(a.status_code, a.text) for a in answers} == {(200, first.text)}
    other = {**sale, "lines": [{**sale["lines"][0], "quantity": 3}], "total_minor": 720,
             "tenders": [{"kind": "cash", "amount_minor": 720, "tendered_minor": 720}]}  # fmt: skip
    reused = await client.post(f"{API}/sales", json=other, headers=till.headers)
    assert reused.status_code == 409 and "client_sale_id" in reused.json()["fields"]
    assert (await _counts(sessions, till.store))[:4] == (1, 1, 1, 1)


async def test_parallel_first_sends_of_one_sale_make_one_order(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sale = sale_body(till, {"BEAN-1": 1})
    answers = await asyncio.gather(*(client.post(f"{API}/sales", json=sale, headers=till.headers) for _ in range(12)))
    assert sorted(a.status_code for a in answers) == [200] * 11 + [201]
    assert len({a.json()["order_number"] for a in answers}) == 1
    assert (await _counts(sessions, till.store))[:4] == (1, 1, 1, 1)


def _wrong(till: Till) -> list[tuple[str, dict[str, Any], int, str]]:
    """(what, sale, status, the field named) — each refused with nothing written."""
    good = sale_body(till)
    line = good["lines"][0]
    cash = good["tenders"][0]
    future = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    return [
        ("unknown variant", {**good, "lines": [{**line, "variant_id": str(uuid.uuid4())}]}, 422, "lines.0.variant_id"),
        ("not a uuid", {**good, "lines": [{**line, "variant_id": "croissant"}]}, 422, "lines.0.variant_id"),
        ("no lines", {**good, "lines": [], "total_minor": 0, "tenders": []}, 422, "lines"),
        ("zero quantity", {**good, "lines": [{**line, "quantity": 0}]}, 422, "lines.0.quantity"),
        (
            "old price",
            {
                **good,
                "lines": [{**line, "unit_price_minor": 200}],
                "total_minor": 400,
                "tenders": [{**cash, "amount_minor": 400}],
            },
            422,
            "lines.0.unit_price_minor",
        ),
        ("discount over the line", {**good, "lines": [{**line, "discount_minor": 481}]}, 422, "lines.0.discount_minor"),
        ("ticket discount over the ticket", {**good, "ticket_discount_minor": 481}, 422, "ticket_discount_minor"),
        (
            "over the cashier's limit",
            {
                **good,
                "lines": [{**line, "discount_minor": 100}],
                "total_minor": 380,
                "tenders": [{**cash, "amount_minor": 380}],
            },
            422,
            "manager_pin",
        ),
        ("wrong total", {**good, "total_minor": 470, "tenders": [{**cash, "amount_minor": 470}]}, 422, "total_minor"),
        ("not covered", {**good, "tenders": [{**cash, "amount_minor": 400, "tendered_minor": 400}]}, 422, "tenders"),
        ("no tenders", {**good, "tenders": []}, 422, "tenders"),
        (
            "less cash handed over than it pays",
            {**good, "tenders": [{**cash, "tendered_minor": 100}]},
            422,
            "tenders.0.tendered_minor",
        ),
        (
            "a card over what is owed",
            {**good, "tenders": [{"kind": "card", "amount_minor": 500, "reader_payment_id": str(uuid.uuid4())}]},
            422,
            "tenders.0.amount_minor",
        ),
        (
            "a card without its payment",
            {**good, "tenders": [{"kind": "card", "amount_minor": 480}]},
            422,
            "tenders.0.reader_payment_id",
        ),
        (
            "an unknown card payment",
            {**good, "tenders": [{"kind": "card", "amount_minor": 480, "reader_payment_id": str(uuid.uuid4())}]},
            422,
            "tenders.0.reader_payment_id",
        ),
        ("a voucher", {**good, "tenders": [{"kind": "voucher", "amount_minor": 480}]}, 422, "tenders.0.kind"),
        ("sold in the future", {**good, "sold_at": future}, 422, "sold_at"),
        ("a time without an offset", {**good, "sold_at": "2026-12-05T10:00:00"}, 422, "sold_at"),
        ("no total", {k: v for k, v in good.items() if k != "total_minor"}, 422, "total_minor"),
        ("a string quantity", {**good, "lines": [{**line, "quantity": "2"}]}, 422, "lines.0.quantity"),
        ("another store's customer", {**good, "customer_id": str(uuid.uuid4())}, 404, "customer_id"),
        ("another register", {**good, "register_id": str(uuid.uuid4())}, 404, "register_id"),
        ("another shift", {**good, "shift_id": str(uuid.uuid4())}, 404, "shift_id"),
    ]


async def test_every_bad_sale_is_refused_with_its_field_and_nothing_is_written(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    before = await _counts(sessions, till.store)
    for what, sale, status, field in _wrong(till):
        answer = await client.post(f"{API}/sales", json=sale, headers=till.headers)
        assert answer.status_code == status, (what, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json"), what
        assert field in answer.json().get("fields", {}), (what, answer.json())
    for raw in (b"not json", b"[1, 2]", b'"sale"'):
        answer = await client.post(
            f"{API}/sales", content=raw, headers={**till.headers, "content-type": "application/json"}
        )
        assert answer.status_code == 422, raw
    assert await _counts(sessions, till.store) == before


async def test_a_sale_on_a_closed_shift_or_a_deactivated_register_is_refused(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    closed = await client.post(f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 10_000},
                               headers=till.headers)  # fmt: skip
    assert closed.status_code == 200
    refused = await client.post(f"{API}/sales", json=sale_body(till), headers=till.headers)
    assert refused.status_code == 422 and refused.json()["fields"] == {"shift_id": "Closed."}
    assert (await _counts(sessions, till.store))[:3] == (0, 0, 0)


async def test_a_managers_pin_approves_a_discount_over_the_cashiers_limit(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    await _set_pin(sessions, till.manager)
    over = {"MUG-1": 280}  # 20 % of 14.00, the limit is 10 %
    no_pin = await client.post(f"{API}/sales", json=sale_body(till, {"MUG-1": 1}, discounts=over), headers=till.headers)
    assert no_pin.status_code == 422
    assert set(no_pin.json()["fields"]) == {"manager_pin", "lines.0.discount_minor"}
    wrong = await client.post(f"{API}/sales", json=sale_body(till, {"MUG-1": 1}, manager_pin="0000", discounts=over),
                              headers=till.headers)  # fmt: skip
    assert wrong.status_code == 422 and wrong.json()["fields"] == {"manager_pin": "Wrong PIN."}
    right = await client.post(f"{API}/sales", json=sale_body(till, {"MUG-1": 1}, manager_pin=PIN, discounts=over),
                              headers=till.headers)  # fmt: skip
    assert right.status_code == 201, right.text
    within = await client.post(f"{API}/sales", json=sale_body(till, {"MUG-1": 1}, discounts={"MUG-1": 140}),
                               headers=till.headers)  # fmt: skip
    assert within.status_code == 201, within.text
    [approved, plain] = await sales_of(sessions, till.store)
    assert (approved.discount_approved_by_id, plain.discount_approved_by_id) == (till.manager.user.id, None)

    for _ in range(5):  # five wrong PINs in a row lock this cashier's PIN checks for a while
        await client.post(f"{API}/sales", json=sale_body(till, {"MUG-1": 1}, manager_pin="1111", discounts=over),
                          headers=till.headers)  # fmt: skip
    locked = await client.post(f"{API}/sales", json=sale_body(till, {"MUG-1": 1}, manager_pin=PIN, discounts=over),
                               headers=till.headers)  # fmt: skip
    assert locked.status_code == 429 and "retry-after" in locked.headers

    manager_headers = await signed_in(client, till.manager)
    own = await client.post(f"{API}/sales", json=sale_body(till, {"MUG-1": 1}, discounts={"MUG-1": 700}),
                            headers=manager_headers)  # fmt: skip
    assert own.status_code == 201, own.text  # managers have no limit


async def test_the_store_sets_the_cashiers_discount_limit(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    await _settings(sessions, till.store, cashier_discount_limit_bps=2500)
    catalog = (await client.get(f"{API}/catalog", headers=till.headers)).json()
    assert catalog["discount_limit_bps"] == 2500
    ok = await client.post(
        f"{API}/sales", json=sale_body(till, {"CRO-1": 5}, ticket_discount=300), headers=till.headers
    )
    assert ok.status_code == 201, ok.text
    over = await client.post(
        f"{API}/sales", json=sale_body(till, {"CRO-1": 5}, ticket_discount=301), headers=till.headers
    )
    assert over.status_code == 422 and "ticket_discount_minor" in over.json()["fields"]


async def test_stock_short_sells_what_is_there_and_records_the_shortfall(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions, stock={"BEAN-1": 5, "MUG-1": 5, "CRO-1": 1})
    made = await client.post(f"{API}/sales", json=sale_body(till, {"CRO-1": 3, "MUG-1": 1}), headers=till.headers)
    assert made.status_code == 201, made.text
    async with sessions() as session:
        bind_store(session, till.store.id)
        level = await session.scalar(select(StockLevel).where(StockLevel.variant_id == till.variant("CRO-1")))
        moved = await session.scalar(
            select(func.sum(StockMovement.delta)).where(StockMovement.variant_id == till.variant("CRO-1"))
        )
    assert level is not None and (level.on_hand, level.reserved, moved) == (0, 0, 0)  # received 1, sold 1
    [sale] = await sales_of(sessions, till.store)
    assert sale.review_status == "open"
    assert sale.conflicts == [
        {"kind": "stock_short", "variant_id": str(till.variant("CRO-1")), "quantity": 3, "available": 1,
         "name": "Croissant"},
    ]  # fmt: skip
    again = await client.post(f"{API}/sales", json=sale_body(till, {"CRO-1": 1}), headers=till.headers)
    assert again.status_code == 201  # none left: the sale stands, the shortfall is recorded


async def test_a_customer_of_the_store_goes_on_the_order(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    async with sessions() as session, session.begin():
        bind_store(session, till.store.id)
        ann = Customer(email="ann@example.com", name="Ann Example", phone="+49 30 1234567")
        session.add(ann)
        session.add(Customer(email="bob@example.com", name="Bob", phone=""))
        await session.flush()
        ann_id = ann.id
    for q, names in (("ann", ["Ann Example"]), ("EXAMPLE.COM", ["Ann Example", "Bob"]), ("1234", ["Ann Example"]),
                     ("a", []), ("zed", [])):  # fmt: skip
        found = await client.get(f"{API}/customers", params={"q": q}, headers=till.headers)
        assert [c["name"] for c in found.json()] == names, q
    made = await client.post(f"{API}/sales", json=sale_body(till, customer_id=ann_id), headers=till.headers)
    assert made.status_code == 201, made.text
    async with sessions() as session:
        bind_store(session, till.store.id)
        order = await session.get(Order, uuid.UUID(made.json()["order_id"]))
    assert order is not None and (order.customer_id, order.email) == (ann_id, "ann@example.com")
    other = await open_till(client, world, sessions)
    assert (await client.get(f"{API}/customers", params={"q": "ann"}, headers=other.headers)).json() == []


async def test_the_catalog_snapshot_and_the_servers_pricing(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    catalog = (await client.get(f"{API}/catalog", headers=till.headers)).json()
    assert catalog["currency"] == "EUR" and len(catalog["version"]) == 16
    by_sku = {v["sku"]: v for p in catalog["products"] for v in p["variants"]}
    assert {sku: (v["price_minor"], v["tax_class"], v["available"]) for sku, v in by_sku.items()} == {
        "BEAN-1": (1190, "reduced", 50), "MUG-1": (1400, "standard", 50), "CRO-1": (240, "reduced", 50),
    }  # fmt: skip
    assert catalog["tax"]["prices_include_tax"] is True and catalog["tax"]["country"] == "DE"
    assert catalog["limits"] == {"offline_tenders": ["cash"], "max_offline_sale_minor": 20_000,
                                 "max_offline_total_minor": 100_000, "max_offline_hours": 24}  # fmt: skip
    assert catalog["discount_limit_bps"] == 1000
    manager = (await client.get(f"{API}/catalog", headers=await signed_in(client, till.manager))).json()
    assert manager["discount_limit_bps"] is None
    till.headers = await signed_in(client, till.cashier)

    priced = await client.post(
        f"{API}/price",
        json={"lines": [{"variant_id": str(till.variant("CRO-1")), "quantity": 3, "discount_minor": 20},
                        {"variant_id": str(till.variant("MUG-1")), "quantity": 1}], "ticket_discount_minor": 101},
        headers=till.headers,
    )  # fmt: skip
    assert priced.status_code == 200, priced.text
    body = priced.json()
    assert (body["subtotal_minor"], body["discount_minor"], body["total_minor"]) == (2120, 121, 1999)
    assert sum(line["total_minor"] for line in body["lines"]) == 1999
    assert sum(line["discount_minor"] for line in body["lines"]) == 121
    assert [line["name"] for line in body["lines"]] == ["Croissant", "Enamel mug"]
    for payload, field in (
        ({"lines": [{"variant_id": str(uuid.uuid4()), "quantity": 1}]}, "lines.0.variant_id"),
        (
            {"lines": [{"variant_id": str(till.variant("CRO-1")), "quantity": 1}], "ticket_discount_minor": 241},
            "ticket_discount_minor",
        ),
        ({"lines": []}, "lines"),
    ):
        refused = await client.post(f"{API}/price", json=payload, headers=till.headers)
        assert refused.status_code == 422 and field in refused.json()["fields"], refused.text


# -- card tenders: the sandbox's reader, approved through the card-payments API ------------------------------

CODE = re.compile(r'data-testid="pairing-code">(\d{3}) (\d{3})<')


@pytest.fixture
async def device(settings: Settings) -> AsyncIterator[Client]:
    """The phone that plays the sandbox card reader: another copy of the app."""
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as reader:
        reader.follow_redirects = False
        yield reader


async def pair_reader(client: Client, device: Client, till: Till) -> None:
    code = CODE.search((await device.get("/pos/reader")).text)
    assert code
    headers = await signed_in(client, till.manager)
    paired = await client.post(
        f"/staff/registers/{till.register_id}/reader",
        data={"code": code.group(1) + code.group(2), "label": "Front", "_csrf_token": headers["x-csrftoken"]},
    )
    assert paired.status_code == 303, paired.text
    till.headers = await signed_in(client, till.cashier)


async def approved_card(client: Client, device: Client, till: Till, amount: int, *, approve: bool = True) -> str:
    """A card payment on the register's reader, approved at the reader (or left waiting)."""
    started = await client.post(
        "/pos/api/card-payments",
        json={"register_id": str(till.register_id), "client_sale_id": str(uuid.uuid4()), "amount_minor": amount},
        headers=till.headers,
    )
    assert started.status_code == 201, started.text
    payment_id = str(started.json()["id"])
    if approve:
        await device.post("/pos/reader/press", data={"outcome": "approve"},
                          headers={"x-csrftoken": device.cookies["till_csrf"], "hx-request": "true"})  # fmt: skip
        shown = await client.get(f"/pos/api/card-payments/{payment_id}", headers=till.headers)
        assert shown.json()["status"] == "approved", shown.text
    return payment_id


async def test_a_card_tender_is_an_approved_reader_payment_of_this_register_used_once(
    client: Client, device: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    await pair_reader(client, device, till)
    card = await approved_card(client, device, till, 1400)
    split = [{"kind": "card", "amount_minor": 1400, "reader_payment_id": card},
             {"kind": "cash", "amount_minor": 480, "tendered_minor": 500}]  # fmt: skip
    for tenders, field in (
        (
            [{**split[0], "amount_minor": 1300}, {**split[1], "amount_minor": 580, "tendered_minor": 600}],
            "tenders.0.amount_minor",
        ),
        ([split[0], split[0], split[1]], "tenders.1.reader_payment_id"),  # one card payment pays once
    ):
        refused = await client.post(
            f"{API}/sales", json=sale_body(till, {"CRO-1": 2, "MUG-1": 1}, tenders=tenders), headers=till.headers
        )
        assert refused.status_code == 422 and field in refused.json()["fields"], refused.text
    made = await client.post(f"{API}/sales", json=sale_body(till, {"CRO-1": 2, "MUG-1": 1}, tenders=split),
                             headers=till.headers)  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["change_minor"] == 20
    async with sessions() as session:
        bind_store(session, till.store.id)
        intent = await session.scalar(
            select(PaymentIntent).where(PaymentIntent.order_id == uuid.UUID(made.json()["order_id"]))
        )
        rows = list(await session.scalars(select(PosTender).order_by(PosTender.kind)))
    assert intent is not None and (intent.captured_minor, intent.provider) == (1400, "sandbox")
    assert [(t.kind, t.amount_minor, str(t.reader_payment_id) if t.reader_payment_id else None) for t in rows] == [
        ("card", 1400, card), ("cash", 480, None),
    ]  # fmt: skip

    twice = await client.post(f"{API}/sales", json=sale_body(till, {"MUG-1": 1}, tenders=[split[0]]),
                              headers=till.headers)  # fmt: skip
    assert twice.status_code == 409, twice.text
    void = await client.post(f"/pos/api/card-payments/{card}/void", json={}, headers=till.headers)
    assert void.status_code == 409  # it pays a completed sale: refund the sale instead

    waiting = await approved_card(client, device, till, 240, approve=False)
    not_yet = await client.post(
        f"{API}/sales",
        json=sale_body(
            till, {"CRO-1": 1}, tenders=[{"kind": "card", "amount_minor": 240, "reader_payment_id": waiting}]
        ),
        headers=till.headers,
    )
    assert not_yet.status_code == 422 and "tenders.0.reader_payment_id" in not_yet.json()["fields"]
    assert (await _counts(sessions, till.store))[:3] == (1, 1, 2)


async def test_a_cash_sale_and_a_sync_batch_stay_within_their_sql_budget(
    client: Client, world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement the database receives (ADR 0003): a sale is its reads and one statement; a batch reads
    once and then takes one statement per entry."""
    till = await open_till(client, world, sessions)
    cashier = Principal("staff", till.store.id, till.store.slug, till.store.name, "EUR", "Europe/Berlin",
                        Role.CASHIER, "Cashier", user_id=till.cashier.user.id)  # fmt: skip
    sales = PosSales(engine, sessions, redis, till.store, cashier)
    sale = sale_body(till, {"CRO-1": 2, "MUG-1": 1, "BEAN-1": 1})
    with counted(engine, monkeypatch) as statements:
        status, _ = await sales.sell(sale)
    assert status == 201
    # the register and shift, a repeat of the claim?, the products, then the one statement that sells
    assert len(statements) <= 4, "\n".join(statements)
    queued = [entry(sale_body(till, {"CRO-1": 1}, offline=True), till.key) for _ in range(10)]
    with counted(engine, monkeypatch) as statements:
        results = await PosSync(sales).sync(json.dumps(batch(till, queued)).encode())
    assert [r.status for r in results] == ["created"] * 10
    # the register and shift, the claims, the products and the shift's sales (offline limits), then one per entry
    assert len(statements) <= 4 + 10, "\n".join(statements)
