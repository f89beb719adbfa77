"""A ticket voided with stored value on it (issue 15). The tablet only notes a gift card, store credit or points on
the ticket (after a read-only lookup); Till spends them in the sale's own statement (app/pos/sales.py), so a ticket
voided before its sale completed — even after an attempt the server refused — spent nothing: the balances and their
ledgers are untouched, and a void sent again is the same one record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.core.encryption import install_keyring
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.stored_value.ledger import Ledger
from app.stored_value.models import StoredValueHold
from app.stored_value.services import GiftCardService, StoreCreditService
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, Till, open_till, sale_body, sales_of


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def _ledger(sessions: Sessions, till: Till, account_id: uuid.UUID) -> dict[str, Any]:
    async with sessions() as session:
        bind_store(session, till.store.id)
        ledger = Ledger(session, till.store.id)
        return {
            **await ledger.verify(account_id),
            "entries": [e.kind for e in await ledger.entries(account_id)],
            "holds": await session.scalar(
                select(func.count()).select_from(StoredValueHold).where(StoredValueHold.account_id == account_id)
            ),
        }


async def test_a_voided_ticket_with_a_gift_card_and_store_credit_spends_nothing_even_when_replayed(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    async with sessions() as session, session.begin():
        bind_store(session, till.store.id)
        card = (await GiftCardService(session, till.store.id).issue(1000, "EUR", principal=None))[0]
        customer = Customer(store_id=till.store.id, email="bo@example.com", name="Bo")
        session.add(customer)
        await session.flush()
        credit = await StoreCreditService(session, till.store.id).issue(customer.id, 2000, "EUR", "goodwill",
                                                                        principal=None)  # fmt: skip
    looked = await client.get(f"{API}/gift-cards/lookup", params={"code": card.code}, headers=till.headers)
    assert looked.status_code == 200 and looked.json()["spendable_minor"] == 1000  # the tablet's read only
    # The cashier tries to finish with more than the card has: refused, nothing written; then voids the ticket.
    attempt = sale_body(till, {"MUG-1": 2}, customer_id=customer.id, tenders=[
        {"kind": "gift_card", "amount_minor": 1500, "code": card.code},
        {"kind": "store_credit", "amount_minor": 1300},
    ])  # fmt: skip
    refused = await client.post(f"{API}/sales", json=attempt, headers=till.headers)
    assert refused.status_code == 409, refused.text
    void = {
        "client_void_id": str(uuid.uuid4()),
        "register_id": str(till.register_id),
        "shift_id": str(till.shift_id),
        "kind": "ticket",
        "reason": "Customer changed their mind",
        "voided_at": datetime.now(UTC).isoformat(),
        "lines": [{"variant_id": str(till.variant("MUG-1")), "name": "Mug", "quantity": 2, "amount_minor": 2800}],
    }
    first = await client.post(f"{API}/voids", json=void, headers=till.headers)
    assert first.status_code == 201, first.text
    replayed = await client.post(f"{API}/voids", json=void, headers=till.headers)
    assert replayed.status_code == 200 and replayed.json()["id"] == first.json()["id"]

    gift = await _ledger(sessions, till, card.account.id)
    assert (gift["balance_minor"], gift["held_minor"], gift["drift"], gift["entries"]) == (1000, 0, 0, ["issue"])
    store_credit = await _ledger(sessions, till, credit.account_id)
    assert (store_credit["balance_minor"], store_credit["held_minor"], store_credit["entries"]) == (2000, 0, ["issue"])
    assert gift["holds"] == 0 and store_credit["holds"] == 0
    assert await sales_of(sessions, till.store) == []
    report = (await client.get(f"{API}/shifts/{till.shift_id}/report", headers=till.headers)).json()
    assert (report["voided_tickets"], report["voided_minor"], report["sales_count"]) == (1, 2800, 0)
    assert (report["stored_value_sales_minor"], report["sales_by_tender"]) == (0, {})
