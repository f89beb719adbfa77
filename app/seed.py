"""The demo store that `till up` creates on an empty database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.rbac import Role
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


async def seed_demo(session: AsyncSession) -> bool:
    """Create the demo store and its staff. Returns False when it exists already."""
    if await session.scalar(select(Store.id).where(Store.slug == DEMO_SLUG)):
        return False
    users = UserService(session)
    store = await users.create_store(name="Corner Café", slug=DEMO_SLUG, currency="EUR", timezone="Europe/Berlin")
    for account in DEMO_ACCOUNTS:
        user = await users.create_user(email=account.email, name=account.name, password=DEMO_PASSWORD)
        await users.add_member(store, user, account.role)
    return True
