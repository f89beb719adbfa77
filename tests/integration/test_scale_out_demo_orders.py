"""First impression (issue 20): a new demo store from `till up` has orders along the board, each placed through
the real checkout."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.seed import DEMO_SLUG, seed_demo, seed_demo_orders
from app.stores.models import Store


async def test_a_new_demo_store_has_orders_in_every_column(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session, session.begin():
        assert await seed_demo(session)
    placed = await seed_demo_orders(settings)
    assert [p.split(" ", 1)[1] for p in placed] == ["placed", "accepted", "in_progress", "ready", "completed"]
    async with sessions() as session:
        store = await session.scalar(select(Store).where(Store.slug == DEMO_SLUG))
        assert store is not None
        bind_store(session, store.id)
        orders = (await session.scalars(select(Order).order_by(Order.number))).all()
    assert [(f"#{o.number} {o.status}", o.channel) for o in orders] == [(p, "web") for p in placed]
    assert all(o.payment_status not in ("unpaid", "failed") for o in orders)
