"""Helpers for checkout tests: a small shop with stock, and a shopper driving the pages."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cart.services import CartService
from app.catalog.services import CatalogService, ProductInput, VariantInput
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core import pg
from app.inventory.services import InventoryService
from app.orders.models import Order
from app.payments.provider import CardDetails, PaymentProvider
from app.payments.registry import provider_for
from app.stores.models import Store
from tests.integration.conftest import World, csrf_from


@dataclass
class Shop:
    store: Store
    variants: dict[str, uuid.UUID]  # sku → variant id


async def make_shop(world: World, stock: dict[str, int] | None = None, slug: str | None = None) -> Shop:
    """Three products (espresso beans 11.90 reduced tax, mug 14.00 standard, croissant 2.40 reduced)."""
    store = await world.store(slug)
    stock = stock or {"BEAN-1": 50, "MUG-1": 50, "CRO-1": 50}
    items = [
        ("Espresso beans", "reduced", "BEAN-1", "11.90", "250"),
        ("Enamel mug", "standard", "MUG-1", "14.00", "400"),
        ("Croissant", "reduced", "CRO-1", "2.40", "80"),
    ]
    variants: dict[str, uuid.UUID] = {}
    async with world.sessions() as session, session.begin():
        catalog = CatalogService(session, store.id)
        inventory = InventoryService(session, store.id)
        for name, tax_class, sku, price, grams in items:
            product = await catalog.save_product(
                ProductInput(
                    name=name,
                    slug=sku.lower(),
                    description="",
                    category_id=None,
                    tax_class=tax_class,
                    image="",
                    is_active=True,
                    variants=[VariantInput(sku=sku, options={}, price=price, weight_grams=grams)],
                )
            )
            variants[sku] = product.variants[0].id
            if stock.get(sku):
                await inventory.adjust(product.variants[0].id, stock[sku], "received")
    return Shop(store, variants)


async def place_order(
    sessions: async_sessionmaker[AsyncSession],
    shop: Shop,
    redis: Redis,
    settings: Settings,
    lines: dict[str, int] | None = None,
    email: str = "ann@example.com",
    provider: PaymentProvider | None = None,
) -> Order:
    """A paid order, straight through the cart, quote and saga services (Visa, the store's capture policy);
    the sandbox unless another ``provider`` is given."""
    async with sessions() as session, session.begin():
        carts = CartService(session, shop.store.id, shop.store.currency)
        cart = await carts.get_or_create(None)
        for sku, quantity in (lines or {"MUG-1": 1}).items():
            await carts.add(cart, shop.variants[sku], quantity)
        quotes = QuoteService(await pg.writer(session), shop.store)
        snapshot = await quotes.create(QuoteRequest(cart_token=cart.token, email=email))
    saga = CheckoutSaga(sessions, shop.store, provider or provider_for(shop.store, redis, settings))
    card = CardDetails("4242424242424242", 12, 2034, "123")
    outcome = await saga.complete(snapshot.id, uuid.uuid4().hex, PaymentInput(card=card), fingerprint="f")
    assert outcome.order is not None, outcome.message
    return outcome.order


class Shopper:
    def __init__(self, client: AsyncTestClient[Litestar], shop: Shop) -> None:
        self.client = client
        self.shop = shop
        self.base = f"/s/{shop.store.slug}"
        self.csrf = ""

    async def open(self) -> None:
        self.csrf = csrf_from((await self.client.get(f"/s/{self.shop.store.slug}/p/bean-1")).text)

    async def add(self, sku: str, quantity: int = 1) -> int:
        response = await self.client.post(
            f"{self.base}/cart/lines",
            data={"variant_id": str(self.shop.variants[sku]), "quantity": str(quantity), "_csrf_token": self.csrf},
            headers={"hx-request": "true"},
        )
        return response.status_code

    async def quote(self, **fields: str) -> str:
        data = {"email": "ann@example.com", "shipping": "pickup", "_csrf_token": self.csrf, **fields}
        response = await self.client.post(f"{self.base}/checkout", data=data)
        assert response.status_code == 303, response.text
        return str(response.headers["location"]).rsplit("/", 1)[1]

    async def pay(
        self, snapshot_id: str, card: str = "4242424242424242", *, key: str | None = None, amount: str | None = None
    ) -> httpx.Response:
        review = await self.client.get(f"{self.base}/checkout/{snapshot_id}")
        form_key = key or re.search(r'name="idempotency_key" value="([^"]+)"', review.text).group(1)  # type: ignore[union-attr]
        total = amount or re.search(r'name="amount_minor" value="(\d+)"', review.text).group(1)  # type: ignore[union-attr]
        return await self.client.post(
            f"{self.base}/checkout/{snapshot_id}/pay",
            data={
                "card_number": card,
                "card_expiry": "12/34",
                "card_cvc": "123",
                "card_name": "Ann",
                "idempotency_key": form_key,
                "amount_minor": total,
                "_csrf_token": self.csrf,
            },
        )
