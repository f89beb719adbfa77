"""Gift cards and store credit for shoppers (issue 15): the balance-check page (found, malformed, unknown, and the
limiter: 429 with a clear message, then even a right code is refused; failures in /metrics), paying part with a
gift card on the checkout pages (the order page says how it was paid), store credit on the account page and at
checkout."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.encryption import install_keyring
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.stored_value.lookup import PER_IP
from app.stored_value.services import GiftCardService, StoreCreditService
from tests.integration.conftest import World
from tests.integration.shop import Shop, Shopper, make_shop

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def _card(sessions: Sessions, shop: Shop, amount_minor: int) -> str:
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, shop.store.id).issue(amount_minor, "EUR", principal=None)
    return issued[0].code


async def test_the_balance_page_and_its_limiter(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    code = await _card(sessions, shop, 2500)
    shopper = Shopper(client, shop)
    await shopper.open()
    page = await client.get(f"{shopper.base}/gift-card")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    found = await client.post(f"{shopper.base}/gift-card", data={"code": code.lower(), "_csrf_token": shopper.csrf})
    assert found.status_code == 200 and "€25.00" in found.text and f"•••• {code[-4:]}" in found.text
    malformed = await client.post(f"{shopper.base}/gift-card", data={"code": "12", "_csrf_token": shopper.csrf})
    assert malformed.status_code == 422 and "16 letters and digits" in malformed.text
    wrong = "ZZZZ-ZZZZ-ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ-ZZZZ-ZZZZ" else "YYYY-YYYY-YYYY-YYYY"
    for _ in range(PER_IP.limit):
        unknown = await client.post(f"{shopper.base}/gift-card", data={"code": wrong, "_csrf_token": shopper.csrf})
        assert unknown.status_code == 404 and "could not find a gift card" in unknown.text
    limited = await client.post(f"{shopper.base}/gift-card", data={"code": code, "_csrf_token": shopper.csrf})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "Too many gift card codes were tried. Wait 15 minutes and try again." in limited.text
    assert "€25.00" not in limited.text  # a right code learns nothing while limited
    metrics = (await client.get("/metrics")).text
    failures = re.search(r'till_gift_card_lookup_failures_total\{channel="web"\} (\d+)', metrics)
    assert failures is not None and float(failures.group(1)) >= PER_IP.limit
    assert 'till_gift_card_lookups_limited_total{scope="ip"}' in metrics


async def test_a_shopper_pays_part_with_a_gift_card_on_the_pages(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    code = await _card(sessions, shop, 1000)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 2)
    snapshot_id = await shopper.quote()
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    assert 'name="gift_card_code"' in review.text and 'data-testid="use-store-credit"' not in review.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', review.text).group(1)  # type: ignore[union-attr]
    form = {"idempotency_key": key, "amount_minor": "2800", "_csrf_token": shopper.csrf, "card_name": "Ann"}
    bad = await client.post(
        f"{shopper.base}/checkout/{snapshot_id}/pay", data={**form, "gift_card_code": "AAAA-BBBB-CCCC-DDDD"}
    )
    assert bad.status_code == 422 and 'id="e-stored_value"' in bad.text and "could not find" in bad.text
    no_card = await client.post(f"{shopper.base}/checkout/{snapshot_id}/pay", data={**form, "gift_card_code": code})
    assert no_card.status_code == 422 and "Add a card to pay the rest." in no_card.text
    paid = await client.post(
        f"{shopper.base}/checkout/{snapshot_id}/pay",
        data={**form, "gift_card_code": code, "card_number": "4242424242424242", "card_expiry": "12/34",
              "card_cvc": "123"},
    )  # fmt: skip
    assert paid.status_code == 303, paid.text
    order = await client.get(paid.headers["location"])
    assert f"Paid with Gift card •••• {code[-4:]}" in order.text
    assert 'data-testid="card-part">€18.00' in order.text


async def test_store_credit_on_the_account_page_and_at_checkout(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    signup = await client.post(
        f"{shopper.base}/account/signup",
        data={"name": "Ann", "email": "ann@example.com", "password": "long-enough-pw", "_csrf_token": shopper.csrf},
    )
    assert signup.status_code == 303
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        from sqlalchemy import select

        customer_id = await session.scalar(select(Customer.id).where(Customer.email == "ann@example.com"))
        assert customer_id is not None
        await StoreCreditService(session, shop.store.id).issue(customer_id, 5000, "EUR", "goodwill", principal=None)
    account = await client.get(f"{shopper.base}/account")
    assert 'data-testid="store-credit-balance">€50.00' in account.text
    await shopper.add("MUG-1", 1)
    snapshot_id = await shopper.quote(email="ann@example.com")
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    assert "Use my store credit (€50.00)" in review.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', review.text).group(1)  # type: ignore[union-attr]
    paid = await client.post(
        f"{shopper.base}/checkout/{snapshot_id}/pay",
        data={"idempotency_key": key, "amount_minor": "1400", "_csrf_token": shopper.csrf, "use_store_credit": "1"},
    )
    assert paid.status_code == 303, paid.text
    order = await client.get(paid.headers["location"])
    assert "Paid with Store credit" in order.text and 'data-testid="card-part"' not in order.text
    account = await client.get(f"{shopper.base}/account")
    assert 'data-testid="store-credit-balance">€36.00' in account.text
