"""A gift card sold at the till (issue 15): online, the sale activates one card per unit and its answer carries the
code once (a repeat answers the last 4 only, and makes no second card); a sale made offline that arrives by sync is
recorded (the money was taken) and goes to review, with no card activated; the tablet's catalog marks the product."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.catalog.models import Variant
from app.config import Settings
from app.core.encryption import install_keyring
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.receipts.builders import sale_document
from app.stored_value.ledger import Ledger
from app.stored_value.models import StoredValueAccount
from app.stored_value.purchases import set_gift_card_products
from app.stored_value.services import GiftCardService
from app.stores.models import Store
from tests.integration.conftest import World, csrf_from
from tests.integration.pos import (
    API,
    Client,
    Sessions,
    Till,
    batch,
    entry,
    open_till,
    sale_body,
    sales_of,
    signed_in,
)

CODE = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$")


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def _mugs_are_gift_cards(sessions: Sessions, till: Till) -> uuid.UUID:
    async with sessions() as session, session.begin():
        bind_store(session, till.shop.store.id)
        variant = await session.get(Variant, till.shop.variants["MUG-1"])
        assert variant is not None
        await set_gift_card_products(session, till.shop.store.id, [str(variant.product_id)], principal=None)
        return variant.product_id


async def _cards(sessions: Sessions, till: Till) -> list[StoredValueAccount]:
    async with sessions() as session:
        bind_store(session, till.shop.store.id)
        return list(await session.scalars(select(StoredValueAccount).where(StoredValueAccount.kind == "gift_card")))


async def test_a_gift_card_sold_online_is_active_at_once_and_its_code_is_answered_once(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    product_id = await _mugs_are_gift_cards(sessions, till)
    catalog = (await client.get(f"{API}/catalog", headers=till.headers)).json()
    marked = {p["id"]: p["gift_card"] for p in catalog["products"]}
    assert marked[str(product_id)] is True and list(marked.values()).count(True) == 1
    sale = sale_body(till, {"MUG-1": 2, "CRO-1": 1}, tenders=[{"kind": "cash", "amount_minor": 3040}])
    sold = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert sold.status_code == 201, sold.text
    cards = sold.json()["gift_cards"]
    assert [c["amount_minor"] for c in cards] == [1400, 1400]
    assert all(CODE.match(c["code"]) and c["code"].endswith(c["last4"]) for c in cards)
    for card in cards:  # active: the tablet's lookup finds it with its whole value
        looked = await client.get(f"{API}/gift-cards/lookup", params={"code": card["code"]}, headers=till.headers)
        assert looked.status_code == 200 and looked.json()["spendable_minor"] == 1400, looked.text
    again = await client.post(f"{API}/sales", json=sale, headers=till.headers)  # the answer lost: sent again
    assert again.status_code == 200
    assert again.json()["gift_cards"] == [{**c, "code": ""} for c in cards]  # the code was shown once
    made = await _cards(sessions, till)
    assert len(made) == 2 and all(a.reveal_ciphertext is None and a.status == "active" for a in made)
    assert {a.note for a in made} == {f"Sold at the till, order #{sold.json()['order_number']}"}
    async with sessions() as session:  # the receipt names each card by its last 4, never its code
        bind_store(session, till.shop.store.id)
        order = await session.get(Order, uuid.UUID(sold.json()["order_id"]))
        store = await session.get(Store, till.shop.store.id)
        assert order is not None and store is not None
        doc = await sale_document(session, store, order)
    assert doc.notes == [f"Gift card •••• {c['last4']} activated: €14.00" for c in cards]
    assert not any(c["code"] in str(doc) for c in cards)
    plain = sale_body(till, {"CRO-1": 1}, tenders=[{"kind": "cash", "amount_minor": 240}])
    ordinary = await client.post(f"{API}/sales", json=plain, headers=till.headers)
    assert ordinary.status_code == 201 and "gift_cards" not in ordinary.json()


async def test_a_gift_card_sold_offline_is_recorded_for_review_and_no_card_is_made(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    await _mugs_are_gift_cards(sessions, till)
    sale = sale_body(till, {"MUG-1": 1}, offline=True, sold_at=datetime.now(UTC) - timedelta(minutes=5),
                     tenders=[{"kind": "cash", "amount_minor": 1400}])  # fmt: skip
    synced = await client.post(f"{API}/sync", json=batch(till, [entry(sale, till.key)]), headers=till.headers)
    assert synced.status_code == 200, synced.text
    result = synced.json()["results"][0]
    assert result["status"] == "review", result
    assert "1 × Enamel mug sold offline: no gift card was activated" in result["reason"]
    assert "Issue 1 of €14.00 on the Gift cards page" in result["reason"]
    assert await _cards(sessions, till) == []
    stored = {str(s.client_sale_id): s for s in await sales_of(sessions, till.shop.store)}
    assert [c["kind"] for c in stored[sale["client_sale_id"]].conflicts] == ["gift_card_offline"]


async def test_offline_tenders_may_include_gift_cards_and_store_credit(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, till.shop.store.id).issue(2000, "EUR", principal=None)
    await signed_in(client, till.manager)
    page = await client.get("/staff/registers")
    assert "> Gift card</label>" in page.text and "> Store credit</label>" in page.text
    saved = await client.post(
        "/staff/registers/settings",
        data={"discount_limit_percent": "10", "max_offline_sale": "200", "max_offline_total": "1000",
              "max_offline_hours": "24", "offline_tenders": ["cash", "gift_card", "store_credit"],
              "_csrf_token": csrf_from(page.text)},
    )  # fmt: skip
    assert saved.status_code == 303, saved.text
    page = await client.get("/staff/registers")
    assert 'value="gift_card" checked' in page.text and 'value="store_credit" checked' in page.text
    till.headers = await signed_in(client, till.cashier)
    catalog = (await client.get(f"{API}/catalog", headers=till.headers)).json()
    assert catalog["limits"]["offline_tenders"] == ["cash", "gift_card", "store_credit"]
    sale = sale_body(till, {"MUG-1": 1}, offline=True, sold_at=datetime.now(UTC) - timedelta(minutes=5),
                     tenders=[{"kind": "gift_card", "amount_minor": 1400, "code": issued[0].code}])  # fmt: skip
    synced = await client.post(f"{API}/sync", json=batch(till, [entry(sale, till.key)]), headers=till.headers)
    assert synced.json()["results"][0]["status"] == "created", synced.text  # within limits: no offline_tender review
    async with sessions() as session:
        bind_store(session, till.shop.store.id)
        assert (await Ledger(session, till.shop.store.id).verify(issued[0].account.id))["balance_minor"] == 600
