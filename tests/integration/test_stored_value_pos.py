"""Gift cards and store credit at the POS (issue 15): tenders spent in the sale's one statement (online: refused
when short, nothing written), the tablet's lookup, and offline sales: captured on sync, a replayed batch spends
once, an overspend goes to review and never takes a balance below zero."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.config import Settings
from app.core.encryption import install_keyring
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.pos.models import PosTender
from app.stored_value.ledger import Ledger
from app.stored_value.services import GiftCardService, StoreCreditService
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, Till, batch, entry, open_till, sale_body, sales_of


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def _card(sessions: Sessions, till: Till, amount_minor: int) -> tuple[uuid.UUID, str]:
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, till.store.id).issue(amount_minor, "EUR", principal=None)
    return issued[0].account.id, issued[0].code


async def _state(sessions: Sessions, till: Till, account_id: uuid.UUID) -> dict[str, Any]:
    async with sessions() as session:
        bind_store(session, till.store.id)
        ledger = Ledger(session, till.store.id)
        return {**await ledger.verify(account_id), "entries": [e.kind for e in await ledger.entries(account_id)]}


async def test_a_cashier_sells_with_a_gift_card_and_cash(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    account_id, code = await _card(sessions, till, 1000)
    looked = await client.get(f"{API}/gift-cards/lookup", params={"code": code}, headers=till.headers)
    assert looked.status_code == 200 and looked.json()["spendable_minor"] == 1000
    sale = sale_body(till, {"MUG-1": 1}, tenders=[
        {"kind": "gift_card", "amount_minor": 1000, "code": code},
        {"kind": "cash", "amount_minor": 400, "tendered_minor": 500},
    ])  # fmt: skip
    sold = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert sold.status_code == 201, sold.text
    assert sold.json()["change_minor"] == 100
    state = await _state(sessions, till, account_id)
    assert (state["balance_minor"], state["held_minor"], state["drift"]) == (0, 0, 0)
    assert state["entries"] == ["capture", "issue"]
    async with sessions() as session:
        bind_store(session, till.store.id)
        kinds = sorted((t.kind, t.amount_minor) for t in await session.scalars(select(PosTender)))
    assert kinds == [("cash", 400), ("gift_card", 1000)]
    again = await client.post(f"{API}/sales", json=sale, headers=till.headers)  # a retry: the same sale, no spend
    assert again.status_code == 200
    assert (await _state(sessions, till, account_id))["entries"] == ["capture", "issue"]


async def test_online_a_short_or_unknown_gift_card_is_refused_and_nothing_is_written(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    account_id, code = await _card(sessions, till, 500)
    short = sale_body(till, {"MUG-1": 1}, tenders=[
        {"kind": "gift_card", "amount_minor": 1000, "code": code},
        {"kind": "cash", "amount_minor": 400},
    ])  # fmt: skip
    refused = await client.post(f"{API}/sales", json=short, headers=till.headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "has 500 left" in refused.json()["fields"]["tenders"]
    unknown = sale_body(till, {"MUG-1": 1}, tenders=[
        {"kind": "gift_card", "amount_minor": 1400, "code": "AAAA-BBBB-CCCC-DDDD"},
    ])  # fmt: skip
    answer = await client.post(f"{API}/sales", json=unknown, headers=till.headers)
    assert answer.status_code == 422 and "tenders.0.code" in answer.json()["fields"]
    no_customer = sale_body(till, {"MUG-1": 1}, tenders=[{"kind": "store_credit", "amount_minor": 1400}])
    answer = await client.post(f"{API}/sales", json=no_customer, headers=till.headers)
    assert answer.status_code == 422 and "tenders.0.kind" in answer.json()["fields"]
    assert await sales_of(sessions, till.store) == []
    assert (await _state(sessions, till, account_id))["balance_minor"] == 500
    bad = await client.get(f"{API}/gift-cards/lookup", params={"code": "nope"}, headers=till.headers)
    assert bad.status_code == 422
    missing = await client.get(f"{API}/gift-cards/lookup", params={"code": "AAAA-BBBB-CCCC-DDDD"}, headers=till.headers)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")


async def test_store_credit_pays_at_the_till(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    async with sessions() as session, session.begin():
        bind_store(session, till.store.id)
        customer = Customer(store_id=till.store.id, email="ann@example.com", name="Ann")
        session.add(customer)
        await session.flush()
        await StoreCreditService(session, till.store.id).issue(customer.id, 2000, "EUR", "return", principal=None)
        customer_id = customer.id
    sale = sale_body(till, {"MUG-1": 1}, customer_id=customer_id,
                     tenders=[{"kind": "store_credit", "amount_minor": 1400}])  # fmt: skip
    sold = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert sold.status_code == 201, sold.text
    async with sessions() as session:
        credit = await StoreCreditService(session, till.store.id).of_customer(customer_id)
    assert credit is not None and credit.balance_minor == 600


async def test_offline_spends_are_captured_on_sync_once_and_an_overspend_goes_to_review(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    account_id, code = await _card(sessions, till, 2000)
    sold_at = datetime.now(UTC) - timedelta(minutes=20)
    first = sale_body(till, {"MUG-1": 1}, offline=True, sold_at=sold_at,
                      tenders=[{"kind": "gift_card", "amount_minor": 1400, "code": code}])  # fmt: skip
    second = sale_body(till, {"MUG-1": 1}, offline=True, sold_at=sold_at + timedelta(minutes=1),
                       tenders=[{"kind": "gift_card", "amount_minor": 1400, "code": code}])  # fmt: skip
    entries = [entry(first, till.key), entry(second, till.key)]
    synced = await client.post(f"{API}/sync", json=batch(till, entries), headers=till.headers)
    assert synced.status_code == 200, synced.text
    results = synced.json()["results"]
    assert [r["status"] for r in results] == ["review", "review"]  # gift cards are not an offline tender by default
    assert "had €6.00 left: €8.00 was not covered" in results[1]["reason"]
    state = await _state(sessions, till, account_id)
    assert (state["balance_minor"], state["held_minor"], state["drift"]) == (0, 0, 0)  # never below zero
    assert state["entries"] == ["capture", "capture", "issue"]
    replayed = await client.post(f"{API}/sync", json=batch(till, entries), headers=till.headers)
    assert [r["status"] for r in replayed.json()["results"]] == ["existing", "existing"]
    assert (await _state(sessions, till, account_id))["entries"] == ["capture", "capture", "issue"]  # spent once
    stored = {str(s.client_sale_id): s for s in await sales_of(sessions, till.store)}
    kinds = [c["kind"] for c in stored[second["client_sale_id"]].conflicts]
    assert "stored_value_short" in kinds and stored[second["client_sale_id"]].review_status == "open"


async def test_a_pos_refund_to_the_original_tenders_gives_the_gift_card_back_first(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    account_id, code = await _card(sessions, till, 1000)
    sale = sale_body(till, {"MUG-1": 1}, tenders=[
        {"kind": "gift_card", "amount_minor": 1000, "code": code},
        {"kind": "cash", "amount_minor": 400},
    ])  # fmt: skip
    sold = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert sold.status_code == 201, sold.text
    refund = {"order_number": sold.json()["order_number"], "register_id": str(till.register_id),
              "shift_id": str(till.shift_id), "reason": "broken", "to": "original"}  # fmt: skip
    answered = await client.post(f"{API}/refunds", json=refund, headers=till.headers)
    assert answered.status_code in (200, 201), answered.text
    state = await _state(sessions, till, account_id)
    assert (state["balance_minor"], state["drift"]) == (1000, 0)
    assert state["entries"][0] == "refund"
    async with sessions() as session:
        bind_store(session, till.store.id)
        back = sorted((t.kind, t.amount_minor) for t in await session.scalars(
            select(PosTender).where(PosTender.amount_minor < 0)))  # fmt: skip
    assert back == [("cash", -400), ("gift_card", -1000)]
