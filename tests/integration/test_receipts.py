"""Receipts: made once from the outbox, delivered per channel with retries, fallback, alerts and no duplicate
print; the e-mail reaches a real SMTP server (aiosmtpd on 127.0.0.1), the thermal bytes a fake printer."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.outbox import OutboxEvent
from app.core.tenancy import bind_store, system_scope
from app.notifications.models import OutboundMessage
from app.orders.models import Order
from app.receipts.channels.registry import default_channels
from app.receipts.delivery import ReceiptDeliveries
from app.receipts.models import Receipt, ReceiptDelivery
from app.receipts.services import DELIVERY_QUEUED, create_from_event
from app.stores.models import Store
from tests.integration.conftest import World
from tests.integration.shop import make_shop, place_order
from tests.integration.test_outbound_email import Inbox, smtp_server

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    with smtp_server(box) as port:
        yield box, port


def smtp_settings(settings: Settings, port: int) -> Settings:
    return dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{port}", mail_from="Shop <shop@example.com>")


async def events_of(sessions: Sessions, store: Store, *types: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        bind_store(session, store.id)
        rows = await session.scalars(select(OutboxEvent).where(OutboxEvent.type.in_(types)).order_by(OutboxEvent.id))
        return [
            {"id": r.id, "store_id": str(r.store_id), "type": r.type, "aggregate_type": r.aggregate_type,
             "aggregate_id": r.aggregate_id, "payload": r.payload}
            for r in rows
        ]  # fmt: skip


async def receipts_of(sessions: Sessions, store: Store) -> list[Receipt]:
    async with sessions() as session:
        bind_store(session, store.id)
        return list(await session.scalars(select(Receipt).order_by(Receipt.created_at)))


async def delivery(sessions: Sessions, delivery_id: uuid.UUID) -> ReceiptDelivery:
    async with sessions() as session:
        system_scope(session)
        found = await session.scalar(select(ReceiptDelivery).where(ReceiptDelivery.id == delivery_id))
        assert found is not None
        return found


async def paid_order(world: World, sessions: Sessions, redis: Redis, settings: Settings) -> tuple[Store, Order]:
    shop = await make_shop(world)
    order = await place_order(sessions, shop, redis, settings, lines={"BEAN-1": 2, "MUG-1": 1}, email="ann@example.com")
    return shop.store, order


async def test_a_paid_order_gets_one_receipt_and_its_email_reaches_the_smtp_server(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    smtp = smtp_settings(settings, port)
    store, order = await paid_order(world, sessions, redis, settings)
    channels = default_channels(sessions, smtp)
    events = await events_of(sessions, store, "order.placed")
    assert len(events) == 1
    assert await create_from_event(sessions, events[0], channels) == 1
    assert await create_from_event(sessions, events[0], channels) == 0  # the same event again: no second receipt
    [receipt] = await receipts_of(sessions, store)
    assert (receipt.kind, receipt.order_id, receipt.email) == ("sale", order.id, "ann@example.com")
    [queued] = receipt.deliveries
    assert (queued.channel, queued.status, queued.target) == ("email", "pending", "ann@example.com")
    assert [e["aggregate_id"] for e in await events_of(sessions, store, DELIVERY_QUEUED)] == [str(queued.id)]

    assert await ReceiptDeliveries(sessions, smtp, channels).deliver(queued.id) == "sent"
    [(sender, recipients, message)] = box.messages
    assert sender == "shop@example.com" and recipients == ["ann@example.com"]
    assert f"Order #{order.number}" in message["Subject"]
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    assert "Total: €37.80" in text and "2 × Espresso beans" in text  # 2 × 11.90 + 14.00
    assert "incl. tax 7 %: €1.56" in text and "incl. tax 19 %: €2.24" in text
    assert "Visa ending 4242: €37.80" in text
    assert f"/r/{receipt.id}.pdf?exp=" in text
    assert "€37.80" in html.get_content()
    done = await delivery(sessions, queued.id)
    assert (done.status, done.attempts, done.last_error) == ("sent", 1, "")
    assert [a.outcome for a in done.history] == ["sent"]
    async with sessions() as session:  # the same message is listed at /staff/outbox
        bind_store(session, store.id)
        outbound = await session.scalar(
            select(OutboundMessage).where(OutboundMessage.id == uuid.UUID(done.external_ref))
        )
    assert outbound is not None and outbound.purpose == "receipt" and outbound.status == "sent"
    assert await ReceiptDeliveries(sessions, smtp, channels).deliver(queued.id) == "sent"  # never twice
    assert len(box.messages) == 1
