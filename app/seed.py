"""The demo store that `till up` creates on an empty database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.demo_data import CATEGORIES, PRODUCTS
from app.catalog.models import Product, Variant
from app.catalog.services import CatalogService
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.inventory.models import StockLevel
from app.inventory.services import InventoryService
from app.stores.hours import parse_hours
from app.stores.models import Store
from app.stores.services import UserService

if TYPE_CHECKING:
    from app.config import Settings

DEMO_SLUG = "demo"
DEMO_PASSWORD = "till-demo-2026"  # noqa: S105  (the public demo account)


@dataclass(frozen=True)
class DemoAccount:
    email: str
    name: str
    role: Role


DEMO_ACCOUNTS = (
    DemoAccount("owner@demo.till", "Olivia Owner", Role.OWNER),
    DemoAccount("manager@demo.till", "Max Manager", Role.MANAGER),
    DemoAccount("staff@demo.till", "Sam Staff", Role.STAFF),
    DemoAccount("cashier@demo.till", "Cara Cashier", Role.CASHIER),
)


def demo_hours(today: date) -> dict[str, Any]:
    """The café's opening hours: weekdays 07:30-18:00, Saturdays 09:00-16:00, closed on Sundays, at Christmas and
    on New Year's Day; pickup every 15 minutes from 15 minutes on, up to a week ahead."""
    return parse_hours(
        {
            "weekly": {
                **{day: [["07:30", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
                "sat": [["09:00", "16:00"]],
                "sun": [],
            },
            "closed_dates": [f"{today.year}-12-25", f"{today.year}-12-26", f"{today.year + 1}-01-01"],
            "pickup": {"lead_minutes": 15, "interval_minutes": 15, "days_ahead": 7},
        }
    )


async def seed_demo(session: AsyncSession) -> bool:
    """Create the demo store and its staff. Returns False when it exists already."""
    if await session.scalar(select(Store.id).where(Store.slug == DEMO_SLUG)):
        return False
    users = UserService(session)
    store = await users.create_store(name="Corner Café", slug=DEMO_SLUG, currency="EUR", timezone="Europe/Berlin")
    store.settings = {**store.settings, "hours": demo_hours(datetime.now(UTC).date())}
    for account in DEMO_ACCOUNTS:
        user = await users.create_user(email=account.email, name=account.name, password=DEMO_PASSWORD)
        await users.add_member(store, user, account.role)
    await seed_catalog(session, store)
    return True


async def seed_catalog(session: AsyncSession, store: Store) -> None:
    """The café's demo catalog with stock on hand (see app/catalog/demo_data.py)."""
    bind_store(session, store.id)
    catalog = CatalogService(session, store.id)
    categories = {}
    for position, category in enumerate(CATEGORIES):
        categories[category.slug] = await catalog.ensure_category(
            category.slug, category.name, category.description, position
        )
    location = await InventoryService(session, store.id).default_location()
    for item in PRODUCTS:
        product = Product(
            slug=item.slug,
            name=item.name,
            description=item.description,
            category_id=categories[item.category].id,
            tax_class=item.tax_class,
            image=item.image,
            variants=[
                Variant(
                    store_id=store.id,
                    sku=v.sku,
                    options=dict(v.options),
                    price_minor=v.price_minor,
                    compare_at_minor=v.compare_at_minor,
                    weight_grams=v.weight_grams,
                    position=i,
                )
                for i, v in enumerate(item.variants)
            ],
        )
        session.add(product)
        await session.flush()
        for variant, demo in zip(product.variants, item.variants, strict=True):
            session.add(StockLevel(variant_id=variant.id, location_id=location.id, on_hand=demo.stock, reserved=0))
    await session.flush()


# The orders `till up` puts on a new demo store, so the board and the order list are not empty on first start:
# shopper e-mail, what they bought (SKU → quantity), and how far staff have moved it.
DEMO_ORDERS = (
    ("lena@example.com", {"BAK-CROIS": 2, "BAK-PAIN-CHOC": 1}, "placed"),
    ("jonas@example.com", {"BAK-CHEESECAKE": 1, "BAK-COOKIE": 2}, "accepted"),
    ("mia@example.com", {"BEAN-HOUSE-250-ES": 1}, "in_progress"),
    ("tom@example.com", {"BAK-BANANA-SLICE": 2, "TEA-CHAI-100": 1}, "ready"),
    ("ada@example.com", {"BEAN-ETH-250-FI": 1, "BAK-FRANZ": 1}, "completed"),
)
_STEPS = ("placed", "accepted", "in_progress", "ready", "completed")


async def seed_demo_orders(settings: Settings) -> list[str]:
    """Web orders on the demo store, each through the real checkout (cart, quote, the saga with the sandbox's
    test Visa), then moved along the board by "Demo seed". Returns "#number status" for each order placed; an
    order that cannot be placed now (no pickup slot free, a SKU not in the catalog) is left out."""
    from redis.asyncio import Redis

    from app.cart.services import CartService
    from app.checkout.quotes import QuoteRequest, QuoteService
    from app.checkout.saga import CheckoutSaga, PaymentInput
    from app.core import pg
    from app.core.db import create_engine, dispose, session_maker
    from app.core.errors import TillError
    from app.orders.services import Actor, OrderService
    from app.orders.states import Axis
    from app.payments.provider import CardDetails
    from app.payments.registry import provider_for

    assert settings.database_url and settings.redis_url
    engine = create_engine(settings.database_url, pool_size=2)
    redis = Redis.from_url(settings.redis_url)
    sessions = session_maker(engine)
    placed: list[str] = []
    try:
        async with sessions() as session:
            store = await session.scalar(select(Store).where(Store.slug == DEMO_SLUG))
            assert store is not None
            bind_store(session, store.id)
            variants = {v.sku: v.id for v in await session.scalars(select(Variant))}
        actor = Actor(Role.OWNER, "Demo seed", "system")
        for email, lines, status in DEMO_ORDERS:
            if any(sku not in variants for sku in lines):
                continue
            try:
                async with sessions() as session, session.begin():
                    carts = CartService(session, store.id, store.currency)
                    cart = await carts.get_or_create(None)
                    for sku, quantity in lines.items():
                        await carts.add(cart, variants[sku], quantity)
                    snapshot = await QuoteService(await pg.writer(session), store).create(
                        QuoteRequest(cart_token=cart.token, email=email)
                    )
                saga = CheckoutSaga(sessions, store, provider_for(store, redis, settings))
                card = CardDetails("4242424242424242", 12, datetime.now(UTC).year + 3, "123")
                outcome = await saga.complete(
                    snapshot.id, f"demo-{snapshot.id}", PaymentInput(card=card), fingerprint="demo"
                )
            except TillError:
                continue
            if outcome.order is None:
                continue
            async with sessions() as session, session.begin():
                orders = OrderService(session, store.id)
                for step in _STEPS[1 : _STEPS.index(status) + 1]:
                    await orders.change_status(outcome.order.id, Axis.ORDER, step, actor=actor)
            placed.append(f"#{outcome.order.number} {status}")
    finally:
        await redis.aclose()
        await dispose(engine)
    return placed
