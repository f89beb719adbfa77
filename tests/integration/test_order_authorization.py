"""POST /api/v1/checkout/orders/{id}/payments/authorize: a new payment for an order that has none in force."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.rbac import Role
from app.orders.models import Order
from app.payments.models import PaymentIntent
from app.payments.registry import provider_for
from app.stores.models import Store
from tests.integration.conftest import World, bearer, csrf_from, issue_token
from tests.integration.http_server import serving
from tests.integration.test_payment_operations import _consistent, _key, _order, _paid_order, _url
from tests.integration.test_webhooks import _all_processed, _rows, _until, _worker


async def _voided(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> tuple[Order, PaymentIntent, dict[str, str]]:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_fulfilment")
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    voided = await client.post(_url(order, intent, "void"), json={}, headers={**auth, **_key()})
    assert voided.status_code == 200 and voided.json()["payment_status"] == "voided"
    return order, intent, auth


def _authorize(order: Order) -> str:
    return f"/api/v1/checkout/orders/{order.id}/payments/authorize"


async def test_an_order_whose_payment_was_voided_is_paid_again(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    order, _, auth = await _voided(client, world, sessions, redis, settings)
    body = {"amount_minor": order.total_minor, "payment_method_token": "pm_card_chargeDeclined"}
    declined = await client.post(_authorize(order), json=body, headers={**auth, **_key()})
    assert declined.status_code == 402 and declined.json()["decline_code"] == "card_declined"
    body["payment_method_token"] = "pm_card_visa"
    paid = await client.post(_authorize(order), json=body, headers={**auth, **_key()})
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "authorized" and paid.json()["payment_status"] == "authorized"
    assert paid.json()["intent"]["fees"]["processing_fee_minor"] == 0  # owed only once money is captured
    again = await client.post(_authorize(order), json=body, headers={**auth, **_key()})
    assert again.status_code == 409 and "already has a payment" in again.json()["detail"]
    await _consistent(sessions, uuid.UUID(paid.json()["intent"]["id"]))
    assert (await _order(sessions, order.id)).payment_status == "authorized"


async def test_bad_authorisations_are_refused_and_leave_nothing(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    order, _, auth = await _voided(client, world, sessions, redis, settings)
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
    cases = [
        ({"amount_minor": order.total_minor, "payment_method_token": "pm_card_visa"}, {}, 422, "Idempotency-Key"),
        ({"amount_minor": order.total_minor - 1, "payment_method_token": "pm_card_visa"}, _key(), 422, "owes"),
        ({"amount_minor": order.total_minor}, _key(), 422, "card"),
        (
            {"amount_minor": order.total_minor, "payment_method_token": "pm_card_visa", "card": card},
            _key(),
            422,
            "card",
        ),
        ({"amount_minor": order.total_minor, "payment_method_token": "pm_nope"}, _key(), 422, "unknown sandbox token"),
        ({"amount_minor": order.total_minor, "surprise": 1}, _key(), 400, "surprise"),
    ]
    for body, key, status, words in cases:
        answer = await client.post(_authorize(order), json=body, headers={**auth, **key})
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.text
    missing = await client.post(
        f"/api/v1/checkout/orders/{uuid.uuid4()}/payments/authorize",
        json={"amount_minor": 1, "payment_method_token": "pm_card_visa"},
        headers={**auth, **_key()},
    )
    assert missing.status_code == 404
    ledger = (await client.get(f"/api/v1/admin/orders/{order.id}/payments/", headers=auth)).json()
    assert [i["status"] for i in ledger["intents"]] == ["voided", "failed"]  # the refused token's attempt
    assert (await _order(sessions, order.id)).payment_status == "voided"


async def test_parallel_authorisations_and_a_timeout_charge_once(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    order, _, auth = await _voided(client, world, sessions, redis, settings)
    body = {"amount_minor": order.total_minor, "payment_method_token": "pm_card_processingError"}
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        answers = await asyncio.gather(
            *(http.post(_authorize(order), json=body, headers={**auth, **_key()}) for _ in range(10))
        )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 9, codes
    paid = next(a for a in answers if a.status_code == 201).json()
    assert paid["status"] == "authorized"  # the timeout was resolved by asking the provider
    async with sessions() as session:
        store = await session.get(Store, order.store_id)
    assert store is not None
    seen = await provider_for(store, redis, settings).get_transaction(paid["intent"]["provider_ref"])
    assert seen.amount.amount_minor == order.total_minor  # one payment at the provider


@pytest.mark.parametrize("approve", [True, False])
async def test_three_d_secure_on_an_orders_payment_ends_by_the_sandbox_banks_webhook(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    approve: bool,
) -> None:
    """No checkout waits for this payment: after the challenge the sandbox's bank tells Till by a signed webhook
    (a SAQ job POSTs it to our endpoint), and the payer goes back to the return URL given at authorisation."""
    order, _, auth = await _voided(client, world, sessions, redis, settings)
    card = {"number": "4000000000003220", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    body: dict[str, object] = {"amount_minor": order.total_minor, "card": card}
    if approve:
        body["return_url"] = "https://pos.example/paid"
    asked = await client.post(_authorize(order), json=body, headers={**auth, **_key()})
    assert asked.status_code == 202 and asked.json()["status"] == "requires_action", asked.text
    intent_id = uuid.UUID(asked.json()["intent"]["id"])
    challenge = urlsplit(asked.json()["action_url"]).path
    page = await client.get(challenge)
    assert page.status_code == 200 and "Confirm your payment" in page.text

    async with serving(settings) as base, _worker(dataclasses.replace(settings, public_url=base)):
        decided = await client.post(
            challenge, data={"decision": "approve" if approve else "fail", "_csrf_token": csrf_from(page.text)}
        )
        assert decided.status_code == 303
        assert decided.headers["location"] == ("https://pos.example/paid" if approve else challenge)
        await _until(lambda: _all_processed(sessions))

    (event,) = await _rows(sessions)
    assert event.type == ("payment_intent.succeeded" if approve else "payment_intent.payment_failed")
    assert event.outcome.startswith("synced")
    intent = await _consistent(sessions, intent_id)
    assert intent.status == ("authorized" if approve else "declined")
    assert (await _order(sessions, order.id)).payment_status == ("authorized" if approve else "unpaid")
    after = await client.get(challenge)
    assert ("Payment confirmed" if approve else "Payment not confirmed") in after.text
    assert "Approve" not in after.text
