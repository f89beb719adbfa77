"""A till sale that sells a gift card and its receipt (issue 15): the cards are activated in the sale's own
transaction, so the order and its cards become visible together — a receipt made from the sale's outbox event, at
whatever moment the worker runs, names each card by its last 4 and the amount loaded (never its code); a sale
whose activation fails is not recorded at all; and when the sale's answer was lost and the tablet's retry (by sync)
finds it recorded, the answer names the cards it activated, without codes, for the tablet to say a manager must
replace them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.config import Settings
from app.core.encryption import install_keyring
from app.core.errors import ValidationFailed
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.pos import sales as pos_sales
from app.receipts.models import Receipt
from app.receipts.services import create_from_event
from app.stored_value.purchases import activate_pos_sale
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, batch, entry, open_till, sale_body, sales_of
from tests.integration.test_stored_value_pos_sale import _cards, _mugs_are_gift_cards


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


def _placed(store_id: uuid.UUID, order_id: str) -> dict[str, Any]:
    return {"type": "order.placed", "store_id": str(store_id), "aggregate_type": "order", "aggregate_id": order_id}


async def test_the_receipt_of_a_gift_card_sale_names_the_card_whenever_it_is_made(
    client: Client, world: World, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = await open_till(client, world, sessions)
    await _mugs_are_gift_cards(sessions, till)
    real = activate_pos_sale
    seen_before: list[int] = []

    async def activate_watching(session: Any, store: Any, order_id: uuid.UUID) -> Any:
        # The receipt worker, running between the sale's statement and the activation, finds no order yet: the
        # sale is not committed without its cards, so there is nothing to make a receipt of.
        other = async_sessionmaker(session.bind, expire_on_commit=False)  # another connection, the app's loop
        made = await create_from_event(other, _placed(store.id, str(order_id)), {})
        seen_before.append(made)
        return await real(session, store, order_id)

    monkeypatch.setattr(pos_sales, "activate_pos_sale", activate_watching)
    sale = sale_body(till, {"MUG-1": 1, "CRO-1": 1}, tenders=[{"kind": "cash", "amount_minor": 1640}])
    sold = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert sold.status_code == 201, sold.text
    assert seen_before == [0]
    card = sold.json()["gift_cards"][0]
    assert card["amount_minor"] == 1400 and len(card["code"]) == 19
    # The worker right after the commit: the receipt has the card's line.
    assert await create_from_event(sessions, _placed(till.store.id, sold.json()["order_id"]), {}) == 1
    async with sessions() as session:
        bind_store(session, till.store.id)
        receipt = await session.scalar(select(Receipt).where(Receipt.order_id == uuid.UUID(sold.json()["order_id"])))
    assert receipt is not None
    assert receipt.content["notes"] == [f"Gift card •••• {card['last4']} activated: €14.00"]
    assert card["code"] not in str(receipt.content)
    again = await client.post(f"{API}/sales", json=sale, headers=till.headers)  # a repeat: no second card, no code
    assert again.status_code == 200 and again.json()["gift_cards"] == [{**card, "code": ""}]
    assert len(await _cards(sessions, till)) == 1


async def test_a_gift_card_sale_whose_activation_fails_is_not_recorded(
    client: Client, world: World, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = await open_till(client, world, sessions)
    await _mugs_are_gift_cards(sessions, till)

    async def refuse(session: Any, store: Any, order_id: uuid.UUID) -> Any:
        raise ValidationFailed("No gift card could be made.", fields={"lines": "Not now."})

    monkeypatch.setattr(pos_sales, "activate_pos_sale", refuse)
    sale = sale_body(till, {"MUG-1": 1}, tenders=[{"kind": "cash", "amount_minor": 1400}])
    refused = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert refused.status_code == 422, refused.text
    assert await sales_of(sessions, till.store) == [] and await _cards(sessions, till) == []
    async with sessions() as session:
        bind_store(session, till.store.id)
        assert list(await session.scalars(select(Order.id))) == []  # the order went with it


async def test_a_lost_answer_retried_by_sync_names_the_cards_without_codes(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    await _mugs_are_gift_cards(sessions, till)
    sale = sale_body(till, {"MUG-1": 1}, tenders=[{"kind": "cash", "amount_minor": 1400}])
    sold = await client.post(f"{API}/sales", json=sale, headers=till.headers)  # its answer never reaches the tablet
    assert sold.status_code == 201, sold.text
    card = sold.json()["gift_cards"][0]
    synced = await client.post(f"{API}/sync", json=batch(till, [entry(sale, till.key)]), headers=till.headers)
    assert synced.status_code == 200, synced.text
    result = synced.json()["results"][0]
    assert result["status"] == "existing" and result["order_number"] == sold.json()["order_number"]
    assert result["gift_cards"] == [{"last4": card["last4"], "amount_minor": 1400}]
    assert card["code"] not in synced.text
    assert len(await _cards(sessions, till)) == 1  # no second card
    plain = sale_body(till, {"CRO-1": 1}, tenders=[{"kind": "cash", "amount_minor": 240}])
    assert (await client.post(f"{API}/sales", json=plain, headers=till.headers)).status_code == 201
    again = await client.post(f"{API}/sync", json=batch(till, [entry(plain, till.key)]), headers=till.headers)
    assert again.json()["results"][0]["status"] == "existing" and "gift_cards" not in again.json()["results"][0]
