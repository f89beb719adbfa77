"""A store on Stripe, end to end against localstripe: its keys are saved encrypted, checkout charges through
the Stripe provider, and staff capture and refund through the same API as on the sandbox."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cart.services import CartService
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core import pg
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.customers.models import Customer
from app.customers.services import CustomerService
from app.main import create_app
from app.payments.credentials import ProviderCredentialService
from app.payments.models import PaymentIntent
from app.payments.provider import CardDetails
from app.payments.providers import StripeProvider
from app.payments.registry import ProviderNotReady, provider_of
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import Shopper, make_shop, place_order
from tests.integration.test_payment_operations import _consistent, _key, _set, _url
from tests.integration.test_payment_panel import _intent_of
from tests.localstripe import STRIPE_TEST_KEY, STRIPE_WEBHOOK_SECRET, localstripe_server


@pytest.fixture(scope="module")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with localstripe_server(Path(tmp_path_factory.mktemp("localstripe"))) as url:
        yield url


@pytest.fixture
def stripe_settings(settings: Settings, localstripe_url: str) -> Settings:
    return dataclasses.replace(settings, stripe_api_base=localstripe_url)


@pytest.fixture
async def stripe_client(stripe_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(stripe_settings), base_url="http://testserver.local") as client:
        yield client


async def test_a_store_on_stripe_charges_captures_and_refunds_through_stripe(
    stripe_client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    stripe_settings: Settings,
) -> None:
    shop = await make_shop(world)
    await _set(sessions, shop.store, payment_provider="stripe", payment_mode="test", capture_policy="at_fulfilment")
    with pytest.raises(ProviderNotReady, match="no keys for test mode"):
        await provider_of(sessions, shop.store, redis, stripe_settings)
    async with sessions() as session, session.begin():
        await ProviderCredentialService(session, shop.store.id).save(
            provider="stripe",
            mode="test",
            secret_key=STRIPE_TEST_KEY,
            publishable_key="pk_test_till_providers",
            webhook_secret=STRIPE_WEBHOOK_SECRET,
        )
    provider = await provider_of(sessions, shop.store, redis, stripe_settings)
    assert isinstance(provider, StripeProvider)

    order = await place_order(sessions, shop, redis, stripe_settings, {"MUG-1": 1}, provider=provider)
    intent = await _intent_of(sessions, order)
    assert (intent.provider, intent.status, intent.provider_ref[:3]) == ("stripe", "authorized", "pi_")
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    captured = await stripe_client.post(_url(order, intent, "capture"), json={}, headers={**auth, **_key()})
    assert captured.status_code == 200, captured.text
    refund = {"amount_minor": 400, "reason": "chipped"}
    refunded = await stripe_client.post(_url(order, intent, "refund"), json=refund, headers={**auth, **_key()})
    assert refunded.status_code == 200 and refunded.json()["payment_status"] == "partially_refunded"
    too_much = {"amount_minor": order.total_minor, "reason": "all"}
    refused = await stripe_client.post(_url(order, intent, "refund"), json=too_much, headers={**auth, **_key()})
    assert refused.status_code == 422  # checked against the intent before Stripe is asked
    after = await _consistent(sessions, intent.id)
    seen = await provider.get_transaction(intent.provider_ref)  # Stripe's own view agrees with the ledger
    assert (seen.captured.amount_minor, seen.refunded.amount_minor) == (after.captured_minor, after.refunded_minor)
    assert after.refunded_minor == 400
    await provider.aclose()


async def test_on_stripes_real_api_the_card_form_is_stripe_js_and_no_card_reaches_us(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The app's settings name no STRIPE_API_BASE (Stripe's real API): the review page mounts Stripe.js with the
    store's publishable key under a CSP that allows Stripe's frames, and the pay form wants a pm_ token."""
    shop = await make_shop(world)
    async with sessions() as session, session.begin():
        await ProviderCredentialService(session, shop.store.id).save(
            provider="stripe",
            mode="test",
            secret_key="sk_test_real_api_never_called_0123456789",
            publishable_key="pk_test_shown_to_shoppers_0123456789",
            webhook_secret="whsec_shown_to_nobody_0123456789",
        )
    await _set(sessions, shop.store, payment_provider="stripe", payment_mode="test")
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1")
    snapshot_id = await shopper.quote()
    review = await client.get(f"/s/{shop.store.slug}/checkout/{snapshot_id}")
    assert 'data-stripe-key="pk_test_shown_to_shoppers_0123456789"' in review.text
    assert 'name="card_number"' not in review.text and "sk_test_" not in review.text
    assert "https://js.stripe.com" in review.headers["content-security-policy"]
    answer = await shopper.pay(snapshot_id)  # posts card fields, no payment method token
    assert answer.status_code == 422 and "Enter your card details." in answer.text
    async with sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.count()).select_from(PaymentIntent)) == 0


async def test_a_signed_in_shopper_is_one_stripe_customer_across_orders(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    stripe_settings: Settings,
    localstripe_url: str,
) -> None:
    shop = await make_shop(world)
    await _set(sessions, shop.store, payment_provider="stripe", payment_mode="test")
    async with sessions() as session, session.begin():
        await ProviderCredentialService(session, shop.store.id).save(
            provider="stripe",
            mode="test",
            secret_key=STRIPE_TEST_KEY,
            publishable_key="pk_test_till_providers",
            webhook_secret=STRIPE_WEBHOOK_SECRET,
        )
        customer = await CustomerService(session, shop.store.id).sign_up(
            email="regular@example.com", name="Rita Regular", password="correct horse battery"
        )
    provider = await provider_of(sessions, shop.store, redis, stripe_settings)
    refs = []
    for _ in range(2):
        async with sessions() as session, session.begin():
            carts = CartService(session, shop.store.id, shop.store.currency)
            cart = await carts.get_or_create(None)
            await carts.add(cart, shop.variants["CRO-1"], 1)
            snapshot = await QuoteService(await pg.writer(session), shop.store).create(
                QuoteRequest(cart_token=cart.token, email=customer.email, customer_id=customer.id)
            )
        saga = CheckoutSaga(sessions, shop.store, provider)
        card = CardDetails("4242424242424242", 12, 2034, "123")
        outcome = await saga.complete(snapshot.id, uuid.uuid4().hex, PaymentInput(card=card), fingerprint="f")
        assert outcome.order is not None, outcome.message
        intent = await _intent_of(sessions, outcome.order)
        async with httpx.AsyncClient(auth=(STRIPE_TEST_KEY, "")) as http:
            seen = (await http.get(f"{localstripe_url}/v1/payment_intents/{intent.provider_ref}")).json()
        refs.append(seen["customer"])
    async with sessions() as session:
        system_scope(session)
        kept = await session.get(Customer, customer.id)
    assert kept is not None and kept.stripe_customer_id.startswith("cus_")
    assert refs == [kept.stripe_customer_id] * 2  # made once, then reused
    await provider.aclose()  # type: ignore[attr-defined]
