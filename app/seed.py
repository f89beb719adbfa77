"""The demo store that `till up` creates on an empty database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

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
