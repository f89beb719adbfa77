"""Loyalty for shoppers: the cart says what the goods earn and what the shopper has; a paid order's points reach
the account page and the points page (balance, worth, tier, history); without a program nothing is promised; the
checkout page offers the shopper's points and the card pays the rest."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.payments.models import PaymentIntent
from app.stored_value.ledger import Ledger
from app.stored_value.loyalty.ledger import points_account
from app.stored_value.loyalty.program import Program, Tier
from app.stored_value.loyalty.services import LoyaltyProgramService
from tests.integration.conftest import World
from tests.integration.shop import Shopper, make_shop
from tests.integration.test_loyalty import _deliver, _events

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
PROGRAM = Program(
    enabled=True,
    points_per_unit=10,
    tiers=(Tier("Member", 0), Tier("Gold", 10_000, 15_000)),
    expiry_days=365,
    redeem_points=100,
    redeem_value_minor=10,
    min_redeem_points=500,
)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_cart_account_and_points_page_show_what_the_shopper_earns_and_has(
    client: Client, world: World, sessions: Sessions, engine: AsyncEngine
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    plain = await client.get(f"{shopper.base}/cart")
    assert 'data-testid="cart-points"' not in plain.text  # no program: no promise
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, shop.store.id).save(PROGRAM.as_dict(), actor=None)
    cart = await client.get(f"{shopper.base}/cart")
    assert "Points this order earns 140" in _text(cart.text)  # €14.00 × 10
    signup = await client.post(
        f"{shopper.base}/account/signup",
        data={"name": "Ann", "email": "ann@example.com", "password": "long-enough-pw", "_csrf_token": shopper.csrf},
    )
    assert signup.status_code == 303
    paid = await shopper.pay(await shopper.quote(email="ann@example.com"))
    assert paid.status_code == 303, paid.text
    assert await _deliver(engine, sessions, await _events(sessions, shop.store)) == ["earned 140, reversed 0"]

    account = _text((await client.get(f"{shopper.base}/account")).text)
    assert "Your points 140 points, worth €0.14 (to spend from 500 points) · tier Member" in account
    page = await client.get(f"{shopper.base}/account/points")
    assert page.status_code == 200
    text = _text(page.text)
    assert "140 points" in text and "Worth €0.14 at checkout, from 500 points" in text
    assert "Tier: Member . Earn 9,860 more points within a year to reach Gold" in text
    assert re.search(r"Earned on order #\d+ \+140", text)
    await shopper.add("BEAN-1", 1)
    later = _text((await client.get(f"{shopper.base}/cart")).text)
    assert "Points this order earns 119" in later and "You have 140 points, worth €0.14." in later


async def test_the_points_page_needs_a_signed_in_shopper(client: Client, world: World) -> None:
    shop = await make_shop(world)
    answer = await client.get(f"/s/{shop.store.slug}/account/points")
    assert answer.status_code == 303 and answer.headers["location"] == f"/s/{shop.store.slug}/account"


async def test_a_signed_in_shopper_pays_part_with_points_on_the_checkout_page(
    client: Client, world: World, sessions: Sessions, engine: AsyncEngine
) -> None:
    shop = await make_shop(world)
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, shop.store.id).save(PROGRAM.as_dict(), actor=None)
    shopper = Shopper(client, shop)
    await shopper.open()
    signup = await client.post(
        f"{shopper.base}/account/signup",
        data={"name": "Ann", "email": "ann@example.com", "password": "long-enough-pw", "_csrf_token": shopper.csrf},
    )
    assert signup.status_code == 303
    await shopper.add("MUG-1", 2)  # €28.00
    snapshot_id = await shopper.quote(email="ann@example.com")
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    assert 'data-testid="use-points"' not in review.text  # no points yet: no offer
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        customer_id = await session.scalar(select(Customer.id).where(Customer.email == "ann@example.com"))
        assert customer_id is not None
        account = await points_account(session, shop.store.id, customer_id)
        assert account is not None
        await Ledger(session, shop.store.id).post(account.id, "issue", 5_000, reason="welcome", actor="test")
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    assert "Use my points (5,000, worth up to €5.00)" in _text(review.text)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', review.text)
    assert key is not None
    paid = await client.post(
        f"{shopper.base}/checkout/{snapshot_id}/pay",
        data={
            "use_points": "1",
            "card_number": "4242424242424242",
            "card_expiry": "12/34",
            "card_cvc": "123",
            "card_name": "Ann",
            "idempotency_key": key.group(1),
            "amount_minor": "2800",
            "_csrf_token": shopper.csrf,
        },
    )
    assert paid.status_code == 303, paid.text
    order_page = _text((await client.get(paid.headers["location"])).text)
    assert "Points" in order_page and "€5.00" in order_page
    async with sessions() as session:
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent.amount_minor))
    assert intent == 2_300  # the card paid the rest
    # The order earns on the €23.00 the card paid, not on what the points paid.
    assert await _deliver(engine, sessions, await _events(sessions, shop.store)) == ["earned 230, reversed 0"]
    async with sessions() as session, session.begin():
        account = await points_account(session, shop.store.id, customer_id)
        assert account is not None and account.balance_minor == 5_000 - 5_000 + 230
