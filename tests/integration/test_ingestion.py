"""Channel order ingestion (POST /webhooks/orders/ingest): signed, authenticated, checked against the catalog
and the tax rules, placed exactly once per (store, client_order_id), every attempt logged."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from saq import Queue
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core import pg
from app.core.encryption import Keyring, UnknownKeyVersion, derive_key, keyring_from_settings
from app.core.money import Money
from app.core.outbox import OutboxRelay, events_after
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.ingestion.credentials import IngestionSecretService, rotate_ingestion_secrets, verifying_secrets
from app.ingestion.models import IngestionSecret
from app.orders.board import BoardCards
from app.payments.signing import sign
from app.stores.models import Store
from app.tax.providers import BuiltinTax, TaxableLine
from tests.integration.conftest import World, bearer, issue_token, sign_in
from tests.integration.http_server import serving
from tests.integration.shop import Shop, make_shop

Sessions = async_sessionmaker[AsyncSession]
URL = "/webhooks/orders/ingest"
PRICES = {"BEAN-1": (1190, "reduced"), "MUG-1": (1400, "standard"), "CRO-1": (240, "reduced")}


class Channel:
    """A sales channel's side: its token and secret for one store, and orders it builds and signs."""

    def __init__(self, store: Store, token: str, secret: str) -> None:
        self.store, self.token, self.secret = store, token, secret

    def body(
        self, client_order_id: str = "pos-1-0001", items: dict[str, int] | None = None, **extra: Any
    ) -> dict[str, Any]:
        items = items or {"BEAN-1": 2, "MUG-1": 1}
        lines = [(sku, qty, PRICES[sku][0], PRICES[sku][1]) for sku, qty in items.items()]
        taxable = [TaxableLine(sku, Money(qty * price, "EUR"), cls) for sku, qty, price, cls in lines]
        tax = BuiltinTax.from_settings({}, "EUR").quote(taxable, country="DE", prices_include_tax=True)
        subtotal = sum(qty * price for _, qty, price, _ in lines)
        body: dict[str, Any] = {
            "client_order_id": client_order_id,
            "store": self.store.slug,
            "customer": {"email": "walk-in@example.com", "name": "Walk-in", "phone": ""},
            "items": [{"sku": sku, "quantity": qty, "unit_price_minor": price} for sku, qty, price, _ in lines],
            "totals": {
                "currency": "EUR",
                "subtotal_minor": subtotal,
                "shipping_minor": 0,
                "tax_minor": tax.total_tax.amount_minor,
                "total_minor": subtotal,
            },
            "payment": {"status": "paid"},
        }
        body.update(extra)
        return body

    def headers(self, raw: bytes, *, at: int | None = None, secret: str | None = None) -> dict[str, str]:
        stamp = int(time.time()) if at is None else at
        return {
            **bearer(self.token),
            "content-type": "application/json",
            "x-till-signature": sign(raw, secret or self.secret, stamp),
        }

    async def send(self, client: AsyncTestClient[Litestar] | httpx.AsyncClient, body: Any, **kw: Any) -> httpx.Response:
        raw = json.dumps(body).encode()
        return await client.post(URL, content=raw, headers=self.headers(raw, **kw))


async def _secret(sessions: Sessions, store: Store) -> str:
    """A secret made as the owner's page makes it, under the app's keys (the test settings' SECRET_KEY)."""
    keyring = keyring_from_settings(TEST_SETTINGS[0])
    async with sessions() as session, session.begin():
        return await IngestionSecretService(session, store.id, keyring=keyring).rotate(updated_by="test")


async def _channel(world: World, sessions: Sessions, shop: Shop, role: Role = Role.CASHIER) -> Channel:
    return Channel(shop.store, await issue_token(world, shop.store, role), await _secret(sessions, shop.store))


TEST_SETTINGS: list[Settings] = []


@pytest.fixture(autouse=True)
def _remember_settings(settings: Settings) -> None:
    TEST_SETTINGS[:] = [settings]


async def _state(engine: AsyncEngine, store_id: uuid.UUID) -> dict[str, Any]:
    """Everything an ingestion could write, for 'nothing half-written' checks."""
    async with engine.connect() as conn:
        counts = {}
        for name, sql in {
            "orders": "SELECT count(*) FROM orders WHERE store_id = :s",
            "lines": "SELECT count(*) FROM order_lines WHERE store_id = :s",
            "claims": "SELECT count(*) FROM ingested_orders WHERE store_id = :s",
            "customers": "SELECT count(*) FROM customers WHERE store_id = :s",
            "events": "SELECT count(*) FROM outbox_events WHERE store_id = :s AND type = 'order.placed'",
            "sales": "SELECT count(*) FROM stock_movements WHERE store_id = :s AND reason = 'sale'",
            "on_hand": "SELECT sum(on_hand) FROM stock_levels WHERE store_id = :s",
        }.items():
            counts[name] = (await conn.execute(text(sql), {"s": store_id})).scalar_one()
        return counts


async def _attempts(engine: AsyncEngine, store_id: uuid.UUID) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT outcome, status_code, reason, lines, client_order_id, order_id FROM ingestion_attempts "
                "WHERE store_id = :s ORDER BY received_at, id"
            ),
            {"s": store_id},
        )
        return [dict(r._mapping) for r in rows]


EMPTY = {"orders": 0, "lines": 0, "claims": 0, "customers": 0, "events": 0, "sales": 0}


def _nothing_written(state: dict[str, Any], on_hand: int = 150) -> None:
    assert {k: v for k, v in state.items() if k != "on_hand"} == EMPTY
    assert state["on_hand"] == on_hand


# ---- the Done-when cases ------------------------------------------------------------------------------


async def test_fifty_parallel_identical_submissions_make_one_order(
    world: World, sessions: Sessions, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    raw = json.dumps(channel.body("pos-1-burst")).encode()
    started = time.perf_counter()
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        answers = await asyncio.gather(*(http.post(URL, content=raw, headers=channel.headers(raw)) for _ in range(50)))
    elapsed = time.perf_counter() - started
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 49 + [201], [a.text for a in answers if a.status_code not in (200, 201)]
    bodies = [a.json() for a in answers]
    assert len({b["order"]["id"] for b in bodies}) == 1
    assert all(b == bodies[0] for b in bodies)  # the repeats answer exactly what the first did
    state = await _state(engine, shop.store.id)
    assert {k: state[k] for k in EMPTY} == {
        "orders": 1,
        "lines": 2,
        "claims": 1,
        "customers": 1,
        "events": 1,
        "sales": 2,
    }
    assert state["on_hand"] == 150 - 3  # sold once: 2 beans + 1 mug
    outcomes = [a["outcome"] for a in await _attempts(engine, shop.store.id)]
    assert sorted(outcomes) == ["accepted"] + ["replayed"] * 49
    print(f"\n50 parallel identical ingestions over HTTP: {elapsed:.2f} s")


async def test_the_same_client_order_id_with_another_body_is_409_and_changes_nothing(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    first = await channel.send(client, channel.body("pos-1-0002"))
    assert first.status_code == 201, first.text
    before = await _state(engine, shop.store.id)

    other = await channel.send(client, channel.body("pos-1-0002", items={"CRO-1": 3}))
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    problem = other.json()
    assert problem["type"].endswith("/client_order_id_reused")
    assert f"#{first.json()['order']['number']}" in problem["detail"]
    assert problem["fields"] == {"client_order_id": "Used for a different order."}
    assert await _state(engine, shop.store.id) == before

    # Key order and spacing are not a different body: the same order comes back.
    body = channel.body("pos-1-0002")
    raw = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    again = await client.post(URL, content=raw, headers=channel.headers(raw))
    assert again.status_code == 200 and again.json() == first.json()
    attempts = await _attempts(engine, shop.store.id)
    assert [(a["outcome"], a["status_code"]) for a in attempts] == [
        ("accepted", 201),
        ("rejected", 409),
        ("replayed", 200),
    ]
    assert attempts[1]["order_id"] == attempts[0]["order_id"]


async def test_prices_that_differ_from_the_catalog_are_422_naming_the_lines(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    body = channel.body("pos-1-0003", items={"BEAN-1": 1, "MUG-1": 1, "CRO-1": 2})
    body["items"][1]["unit_price_minor"] = 1300  # the mug is 14.00
    body["items"].append({"sku": "NOPE-9", "quantity": 1, "unit_price_minor": 100})

    answer = await channel.send(client, body)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"].endswith("/price_mismatch")
    assert problem["lines"] == [
        {
            "line": 1,
            "sku": "MUG-1",
            "unit_price_minor": 1300,
            "catalog_unit_price_minor": 1400,
            "reason": "price differs",
        },
        {
            "line": 3,
            "sku": "NOPE-9",
            "unit_price_minor": 100,
            "catalog_unit_price_minor": None,
            "reason": "unknown sku",
        },
    ]
    _nothing_written(await _state(engine, shop.store.id))
    [attempt] = await _attempts(engine, shop.store.id)
    assert attempt["outcome"] == "rejected" and attempt["status_code"] == 422
    assert [line["sku"] for line in attempt["lines"]] == ["MUG-1", "NOPE-9"]


# ---- signature and authentication ----------------------------------------------------------------------


async def test_missing_bad_stale_and_malformed_signatures_are_400_and_logged(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    raw = json.dumps(channel.body("pos-1-sig")).encode()
    good = channel.headers(raw)
    cases = {
        "missing signature": {k: v for k, v in good.items() if k != "x-till-signature"},
        "no matching signature": channel.headers(raw, secret="tis_not-the-secret"),
        "timestamp outside the tolerance": channel.headers(raw, at=int(time.time()) - 301),
        "malformed signature header": {**good, "x-till-signature": "v1=abc"},
    }
    for reason, headers in cases.items():
        answer = await client.post(URL, content=raw, headers=headers)
        assert answer.status_code == 400, (reason, answer.text)
        assert answer.json()["fields"] == {"x-till-signature": reason}
    # A body changed after signing does not verify either.
    tampered = raw.replace(b"walk-in@", b"mallory@")
    assert (await client.post(URL, content=tampered, headers=good)).status_code == 400
    _nothing_written(await _state(engine, shop.store.id))
    attempts = await _attempts(engine, shop.store.id)
    assert [(a["outcome"], a["status_code"]) for a in attempts] == [("rejected", 400)] * 5
    assert all(a["client_order_id"] == "pos-1-sig" for a in attempts)
    # Within the tolerance the same body is accepted.
    assert (
        await client.post(URL, content=raw, headers=channel.headers(raw, at=int(time.time()) - 290))
    ).status_code == 201


async def test_tokens_that_are_missing_wrong_or_of_another_store_are_refused(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop, other = await make_shop(world), await make_shop(world)
    channel = await _channel(world, sessions, shop)
    other_channel = await _channel(world, sessions, other)
    raw = json.dumps(channel.body("pos-1-auth")).encode()
    headers = channel.headers(raw)

    no_token = {k: v for k, v in headers.items() if k != "authorization"}
    assert (await client.post(URL, content=raw, headers=no_token)).status_code == 401
    for wrong in ("till_nope_nope", "not-even-a-till-token"):
        answer = await client.post(URL, content=raw, headers={**headers, **bearer(wrong)})
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
    # Nothing proves which store an unauthenticated call is for: not in any store's log.
    assert await _attempts(engine, shop.store.id) == []

    # The other store's token (and its own valid signature) cannot place an order in this store.
    foreign = await client.post(URL, content=raw, headers=other_channel.headers(raw))
    assert foreign.status_code == 403
    assert "another store" in foreign.json()["detail"]
    [logged] = await _attempts(engine, other.store.id)
    assert (logged["outcome"], logged["status_code"]) == ("rejected", 403)
    # ... nor does this store's token sign with the other store's secret.
    mixed = {**headers, "x-till-signature": sign(raw, other_channel.secret, int(time.time()))}
    assert (await client.post(URL, content=raw, headers=mixed)).status_code == 400
    # A revoked token is refused too.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE api_tokens SET revoked_at = now() WHERE store_id = :s"), {"s": shop.store.id})
    assert (await client.post(URL, content=raw, headers=channel.headers(raw))).status_code == 401
    _nothing_written(await _state(engine, shop.store.id))
    _nothing_written(await _state(engine, other.store.id))


async def test_a_store_without_a_secret_refuses_with_a_clear_400(
    world: World, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop = await make_shop(world)
    channel = Channel(shop.store, await issue_token(world, shop.store), "tis_whatever")
    answer = await channel.send(client, channel.body())
    assert answer.status_code == 400
    assert "/staff/ingestion" in answer.json()["detail"]
    _nothing_written(await _state(engine, shop.store.id))


# ---- body and totals -----------------------------------------------------------------------------------


async def test_missing_and_wrong_fields_are_422_naming_each_field(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)

    empty = await channel.send(client, {"store": shop.store.slug})
    assert empty.status_code == 422
    assert set(empty.json()["fields"]) == {"client_order_id", "customer", "items", "totals"}

    body = channel.body("pos-1-0004")
    body["customer"]["email"] = "not-an-address"
    body["items"][0]["quantity"] = 1.5  # no floats
    body["items"][1]["unit_price_minor"] = "1400"
    del body["totals"]["tax_minor"]
    body["payment"] = {"status": "maybe"}
    wrong = await channel.send(client, body)
    assert wrong.status_code == 422
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert set(wrong.json()["fields"]) == {
        "customer.email",
        "items[0].quantity",
        "items[1].unit_price_minor",
        "totals.tax_minor",
        "payment.status",
    }
    not_json = b"{not json"
    answer = await client.post(URL, content=not_json, headers=channel.headers(not_json))
    assert answer.status_code == 422 and answer.json()["fields"] == {"body": "Send a JSON object."}

    other_currency = channel.body("pos-1-0005")
    other_currency["totals"]["currency"] = "USD"
    answer = await channel.send(client, other_currency)
    assert answer.status_code == 422 and "totals.currency" in answer.json()["fields"]

    _nothing_written(await _state(engine, shop.store.id))
    assert [a["status_code"] for a in await _attempts(engine, shop.store.id)] == [422] * 4


async def test_totals_that_do_not_add_up_are_422(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    body = channel.body("pos-1-0006")
    body["totals"]["tax_minor"] += 1
    body["totals"]["total_minor"] += 5
    answer = await channel.send(client, body)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"].endswith("/totals_mismatch")
    assert set(problem["fields"]) == {"totals.tax_minor", "totals.total_minor"}
    assert "380" in problem["fields"]["totals.tax_minor"]  # 156 on the beans + 224 on the mug, included
    _nothing_written(await _state(engine, shop.store.id))


async def test_not_enough_stock_sells_nothing_and_is_409_naming_the_lines(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop = await make_shop(world, stock={"BEAN-1": 1, "MUG-1": 5})  # no croissants tracked at all
    channel = await _channel(world, sessions, shop)
    answer = await channel.send(client, channel.body("pos-1-0007", items={"BEAN-1": 2, "MUG-1": 1, "CRO-1": 1}))
    assert answer.status_code == 409
    assert answer.json()["lines"] == [
        {"sku": "BEAN-1", "quantity": 2, "available": 1},
        {"sku": "CRO-1", "quantity": 1, "available": 0},
    ]
    _nothing_written(await _state(engine, shop.store.id), on_hand=6)
    assert [a["status_code"] for a in await _attempts(engine, shop.store.id)] == [409]


# ---- the order in the store ----------------------------------------------------------------------------


async def test_an_ingested_order_is_on_the_board_list_and_stream(
    world: World,
    sessions: Sessions,
    engine: AsyncEngine,
    redis: Redis,
    settings: Settings,
    app: Litestar,
    client: AsyncTestClient[Litestar],
) -> None:
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    answer = await channel.send(client, channel.body("pos-1-0008"))
    assert answer.status_code == 201
    order = answer.json()["order"]
    assert (order["channel"], order["status"], order["payment_status"]) == ("ingested", "placed", "paid")
    assert (order["subtotal_minor"], order["tax_minor"], order["total_minor"]) == (3780, 380, 3780)
    assert [(line["sku"], line["quantity"], line["tax_minor"]) for line in order["lines"]] == [
        ("BEAN-1", 2, 156),
        ("MUG-1", 1, 224),
    ]

    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    board = await client.get("/staff/board/")
    assert f'data-testid="card-{order["number"]}"' in board.text
    listed = await client.get("/staff/orders", params={"channel": "ingested"})
    assert f"#{order['number']}" in listed.text

    # The relay publishes its order.placed event; the board's stream renders the same card from it.
    relay = OutboxRelay(sessions, RedisChannelsPubSubBackend(redis=redis), Queue.from_url(settings.redis_url or ""))
    await relay.drain()
    async with sessions() as session:
        bind_store(session, shop.store.id)
        events = [e for e in await events_after(session, shop.store.id, 0) if e.type == "order.placed"]
    assert [e.aggregate_id for e in events] == [order["id"]]
    template = app.template_engine.get_template("orders/_card.html")  # type: ignore[union-attr]
    message = await BoardCards(sessions, shop.store.id, template.render, timedelta(minutes=10)).message(events[0])
    assert message is not None and f"#{order['number']}".encode() in message and b"ingested" in message


async def test_managers_see_attempts_and_owners_make_the_secret_shown_once(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    shop = await make_shop(world)
    owner = await world.staff(shop.store, Role.OWNER)
    await sign_in(client, owner.email)
    page = await client.get("/staff/ingestion/")
    assert page.status_code == 200 and 'data-testid="no-secret"' in page.text
    csrf = page.text.split('name="_csrf_token" value="')[1].split('"')[0]

    made = await client.post("/staff/ingestion/secret", data={"_csrf_token": csrf})
    assert made.status_code == 303
    shown = await client.get("/staff/ingestion/")
    secret = shown.text.split('<code class="secret">')[1].split("<")[0]
    assert secret.startswith("tis_") and f"…{secret[-4:]}" in shown.text
    assert secret not in (await client.get("/staff/ingestion/")).text  # once only
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT secret_ciphertext FROM ingestion_secrets"))).scalar_one()
    assert secret not in stored and stored.startswith("v1.")

    channel = Channel(shop.store, await issue_token(world, shop.store, Role.CASHIER), secret)
    assert (await channel.send(client, channel.body("pos-1-0009"))).status_code == 201
    bad = channel.body("pos-1-0010")
    bad["items"][0]["unit_price_minor"] = 1
    assert (await channel.send(client, bad)).status_code == 422

    # Rotating: the new secret works at once, the old one during its grace, then not at all.
    await client.post("/staff/ingestion/secret", data={"_csrf_token": csrf})
    rotated = (await client.get("/staff/ingestion/")).text.split('<code class="secret">')[1].split("<")[0]
    assert rotated != secret
    assert (await channel.send(client, channel.body("pos-1-0011"))).status_code == 201  # the previous secret
    channel.secret = rotated
    assert (await channel.send(client, channel.body("pos-1-0012"))).status_code == 201
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        await session.execute(update(IngestionSecret).values(previous_valid_until=IngestionSecret.updated_at))
    channel.secret = secret
    assert (await channel.send(client, channel.body("pos-1-0013"))).status_code == 400

    manager = await world.staff(shop.store, Role.MANAGER)
    await client.post("/signout", data={"_csrf_token": csrf})
    client.cookies.clear()
    await sign_in(client, manager.email)
    listing = await client.get("/staff/ingestion/")
    assert listing.status_code == 200
    assert listing.text.count('data-outcome="accepted"') == 3
    assert listing.text.count('data-outcome="rejected"') == 2
    assert "does not match the catalog" in listing.text and "pos-1-0010" in listing.text
    assert "<code>BEAN-1</code>: sent €0.01, catalog €11.90" in listing.text
    assert "Rotate secret" not in listing.text and secret not in listing.text  # the secret is the owner's
    rejected = await client.get("/staff/ingestion/", params={"outcome": "rejected"})
    assert rejected.text.count("data-outcome=") == 2
    assert (await client.get("/staff/ingestion/", params={"since": "yesterday"})).status_code == 422
    assert 'data-outcome="' not in (await client.get("/staff/ingestion/", params={"until": "2001-01-01"})).text
    assert (await client.post("/staff/ingestion/secret", data={"_csrf_token": csrf})).status_code == 403

    cashier = await world.staff(shop.store, Role.CASHIER)
    client.cookies.clear()
    await sign_in(client, cashier.email)
    assert (await client.get("/staff/ingestion/")).status_code == 403


async def test_an_unpaid_order_by_store_id_stays_unpaid_and_is_not_charged_here(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    """The store may be named by id. An unpaid order stays unpaid: the channel collects its money, so the
    payments API refuses to open a payment for it (it has no checkout snapshot to pay against)."""
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    body = channel.body("pos-1-0014", store=str(shop.store.id), payment={"status": "unpaid"})
    answer = await channel.send(client, body)
    assert answer.status_code == 201 and answer.json()["order"]["payment_status"] == "unpaid"
    order_id = answer.json()["order"]["id"]
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    refused = await client.post(
        f"/api/v1/checkout/orders/{order_id}/payments/authorize",
        json={"amount_minor": answer.json()["order"]["total_minor"], "payment_method_token": "pm_card_visa"},
        headers={**auth, "idempotency-key": str(uuid.uuid4())},
    )
    assert refused.status_code == 409 and "sales channel" in refused.json()["detail"]
    async with engine.connect() as conn:
        intents = await conn.execute(
            text("SELECT count(*) FROM payment_intents WHERE store_id = :s"), {"s": shop.store.id}
        )
        assert intents.scalar_one() == 0


async def test_key_rotation_re_encrypts_ingestion_secrets(
    world: World, sessions: Sessions, engine: AsyncEngine, settings: Settings
) -> None:
    """`till keys rotate` moves the ingestion secrets (current and previous) to the newest key, once."""
    shop = await make_shop(world)
    first = await _secret(sessions, shop.store)
    second = await _secret(sessions, shop.store)  # the first is now the previous one, in its grace
    old = keyring_from_settings(settings)
    new = Keyring({1: derive_key(settings.secret_key, 1), 2: os.urandom(32)})
    async with sessions() as session, session.begin():
        result = await rotate_ingestion_secrets(session, new)
    assert (result.rotated, result.current) == (1, 0)
    async with sessions() as session, session.begin():
        assert (await rotate_ingestion_secrets(session, new)).rotated == 0
    async with pg.connection(engine) as conn:
        assert await verifying_secrets(conn, shop.store.id, now=datetime.now(UTC), keyring=new) == [second, first]
        with pytest.raises(UnknownKeyVersion):
            await verifying_secrets(conn, shop.store.id, now=datetime.now(UTC), keyring=old)


async def test_cancelling_an_ingested_order_puts_its_stock_back(
    world: World, sessions: Sessions, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    """No payment in Till to give back (the app collected it); the stock returns like any order's."""
    shop = await make_shop(world)
    channel = await _channel(world, sessions, shop)
    order = (await channel.send(client, channel.body("pos-1-0015"))).json()["order"]
    assert (await _state(engine, shop.store.id))["on_hand"] == 147
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    cancelled = await client.patch(
        f"/api/v1/orders/{order['id']}/status", json={"status": "cancelled", "reason": "Walked out"}, headers=manager
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (await _state(engine, shop.store.id))["on_hand"] == 150
