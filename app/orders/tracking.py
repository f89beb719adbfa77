"""The shopper's order page, live: its status fragment again whenever that order changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from litestar.response import ServerSentEventMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.outbox import PublishedEvent
from app.core.tenancy import bind_store
from app.orders.models import Order


@dataclass(frozen=True)
class OrderStatusFragments:
    """An event of one order as its shopper's page shows it (``storefront/_order_status.html``)."""

    sessions: async_sessionmaker[AsyncSession]
    store_id: uuid.UUID
    order_id: uuid.UUID
    render: Callable[..., str]

    def concerns(self, event: PublishedEvent) -> bool:
        return event.aggregate_type == "order" and event.aggregate_id == str(self.order_id)

    async def message(self, event: PublishedEvent) -> bytes | None:
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            order = await session.get(Order, self.order_id)
            if order is None:
                return None
            html = self.render(order=order)
        return ServerSentEventMessage(data=html, event="order", id=event.seq).encode()
