"""Receipts: made once from the outbox, delivered per channel with retries, fallback, alerts and no duplicate
print; the e-mail reaches a real SMTP server (aiosmtpd on 127.0.0.1), the thermal bytes a fake printer."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from saq import Worker
from sqlalchemy import select, update
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.notifications.models import OutboundMessage
from app.orders.models import Order
from app.receipts.builders import sale_document
from app.receipts.channels import ChannelError, Facts, Outgoing, ReceiptChannel
from app.receipts.channels.registry import default_channels
from app.receipts.delivery import DeliveryDeferred, ReceiptDeliveries
from app.receipts.document import ReceiptDocument
from app.receipts.models import Receipt, ReceiptDelivery, WhatsAppStatusEvent
from app.receipts.services import DELIVERY_QUEUED, NewReceipt, ReceiptService, create_from_event
from app.receipts.thermal import escpos_text
from app.stores.models import Store
from app.webhooks.processing import Deps, WebhookProcessor, process_event
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.pos import add_register
from tests.integration.receipt_printer import fake_printer, threaded_fake_printer
from tests.integration.receipt_whatsapp import FakeWhatsApp, fake_whatsapp
from tests.integration.shop import make_shop, place_order
from tests.integration.test_outbound_email import Inbox, smtp_server
from workers.context import TillContext
from workers.settings import build_worker

Sessions = async_sessionmaker[AsyncSession]
Client = AsyncTestClient[Litestar]


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
    assert f"/r/{receipt.id}?exp=" in text
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


# ---- delivery: retries, fallback, alerts, races -------------------------------------------------------------


class FakeChannel:
    """A channel that fails its first ``failures`` sends (permanently when ``permanent``)."""

    def __init__(self, name: str, *, failures: int = 0, permanent: bool = False, target: str = "somewhere") -> None:
        self.name, self.label = name, name.capitalize()
        self.failures, self.permanent, self.target = failures, permanent, target
        self.sent: list[Outgoing] = []
        self.calls = 0

    async def target_for(self, facts: Facts) -> str | None:
        return self.target or None

    async def send(self, outgoing: Outgoing) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ChannelError(f"{self.name} down ({self.calls})", permanent=self.permanent)
        self.sent.append(outgoing)
        return f"{self.name}-ref"


async def pos_receipt(
    world: World,
    sessions: Sessions,
    redis: Redis,
    settings: Settings,
    channels: dict[str, ReceiptChannel],
    *,
    with_printer: int | None = None,
    phone: str = "",
) -> tuple[Store, Receipt, Order]:
    """A paid order's receipt as if it were a counter sale on a register (with a printer on ``with_printer``)."""
    store, order = await paid_order(world, sessions, redis, settings)
    register_id = await add_register(sessions, store)
    if with_printer is not None:
        async with sessions() as session, session.begin():
            await ReceiptService(session, store.id).set_printer(register_id, "127.0.0.1", str(with_printer), "80")
    async with sessions() as session, session.begin():
        service = ReceiptService(session, store.id)
        found = await session.get(Store, store.id)
        assert found is not None
        loaded = await session.scalar(select(Order).where(Order.id == order.id))
        assert loaded is not None
        doc = await sale_document(session, found, loaded)
        new = NewReceipt("sale", f"sale:{order.id}", "pos", doc, order_id=order.id, register_id=register_id,
                         email=order.email, phone=phone)  # fmt: skip
        receipt = await service.create(new, channels, found)
        assert receipt is not None
    return store, await reload(sessions, receipt.id), order


async def reload(sessions: Sessions, receipt_id: uuid.UUID) -> Receipt:
    async with sessions() as session:
        system_scope(session)
        receipt = await session.scalar(select(Receipt).where(Receipt.id == receipt_id))
        assert receipt is not None
        return receipt


async def test_thermal_prints_the_same_totals_on_the_registers_printer(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    async with fake_printer() as printer:
        channels = default_channels(sessions, settings)
        _, receipt, order = await pos_receipt(world, sessions, redis, settings, channels, with_printer=printer.port)
        [queued] = receipt.deliveries
        assert (queued.channel, queued.target) == ("thermal", f"127.0.0.1:{printer.port}/80mm")
        assert await ReceiptDeliveries(sessions, settings, channels).deliver(queued.id) == "sent"
        assert await ReceiptDeliveries(sessions, settings, channels).deliver(queued.id) == "sent"  # not twice
    [job] = printer.jobs
    text = escpos_text(job)
    assert f"Order #{order.number}" in text and "Receipt R-" in text
    assert "2 × €11.90" in text and "Total" in text and "€37.80" in text
    assert "incl. tax 7 %" in text and "€1.56" in text and "Visa ending 4242" in text
    assert b"\x1d(k" in job and job.endswith(b"\x1dV\x00")  # a QR code, then the cut
    assert f"/r/{receipt.id}?exp=".encode() in job  # the QR code's data: the digital receipt


@pytest.mark.parametrize(
    ("printer_options", "error"),
    [({"paper": False}, "out of paper"), ({"answers": False}, "did not answer its status query")],
)
async def test_a_printer_without_paper_or_answer_is_a_failed_attempt_retried_later(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, printer_options: dict[str, bool], error: str
) -> None:
    async with fake_printer(**printer_options) as printer:
        channels = default_channels(sessions, settings)
        _, receipt, _ = await pos_receipt(world, sessions, redis, settings, channels, with_printer=printer.port)
        deliveries = ReceiptDeliveries(sessions, settings, channels)
        with pytest.raises(DeliveryDeferred):
            await deliveries.deliver(receipt.deliveries[0].id)
        failed = await delivery(sessions, receipt.deliveries[0].id)
        assert (failed.status, failed.attempts) == ("retrying", 1) and error in failed.last_error
        assert [(a.outcome, error in a.error) for a in failed.history] == [("failed", True)]
        printer.paper = printer.answers = True  # paper loaded: the retry prints
        assert await deliveries.deliver(receipt.deliveries[0].id) == "sent"
    assert len(printer.jobs) == 1
    done = await delivery(sessions, receipt.deliveries[0].id)
    assert [a.outcome for a in done.history] == ["failed", "sent"] and done.attempts == 2


async def test_a_refused_printer_falls_back_to_email_after_the_last_attempt(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    smtp = smtp_settings(settings, port)
    channels = default_channels(sessions, smtp)
    closed = _closed_port()
    _store, receipt, _ = await pos_receipt(world, sessions, redis, settings, channels, with_printer=closed)
    deliveries = ReceiptDeliveries(sessions, smtp, channels)
    thermal = receipt.deliveries[0]
    for _ in range(4):
        with pytest.raises(DeliveryDeferred):
            await deliveries.deliver(thermal.id)
    assert await deliveries.deliver(thermal.id) == "failed"  # the 5th attempt is the last
    failed = await delivery(sessions, thermal.id)
    assert failed.attempts == 5 and "refused" in failed.last_error
    after = await reload(sessions, receipt.id)
    assert [(d.channel, d.status, d.requested_by) for d in after.deliveries] == [
        ("thermal", "failed", "system"),
        ("email", "pending", "fallback"),
    ]
    assert after.alerted_at is not None  # stuck after 3 attempts: on the board until a channel succeeds
    assert await deliveries.deliver(after.deliveries[1].id) == "sent"
    assert len(box.messages) == 1
    assert (await reload(sessions, receipt.id)).alerted_at is None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_every_channel_failing_raises_an_alert_on_the_board(
    client: Client, world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    thermal = FakeChannel("thermal", failures=9, permanent=True)
    email = FakeChannel("email", failures=9, permanent=True)
    channels: dict[str, ReceiptChannel] = {"thermal": thermal, "email": email}
    store, receipt, _order = await pos_receipt(world, sessions, redis, settings, channels)
    deliveries = ReceiptDeliveries(sessions, settings, channels)
    assert await deliveries.deliver(receipt.deliveries[0].id) == "failed"  # permanent: at once, then e-mail
    second = (await reload(sessions, receipt.id)).deliveries[1]
    assert second.channel == "email"
    assert await deliveries.deliver(second.id) == "failed"
    stuck = await reload(sessions, receipt.id)
    assert stuck.alerted_at is not None and "Every channel failed" in stuck.alert_reason
    assert len(await events_of(sessions, store, "receipt.alert")) == 1
    async with sessions() as session:
        assert [r.id for r in await ReceiptService(session, store.id).stuck()] == [receipt.id]
    staff = await world.staff(store, Role.CASHIER)
    await sign_in(client, staff.email)
    board = await client.get("/staff/board")
    assert board.status_code == 200 and 'data-testid="receipt-alerts"' in board.text
    assert f"R-{receipt.number:06d}" in board.text and "Every channel failed" in board.text


async def test_three_failed_attempts_raise_the_alert_and_a_success_clears_it(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    email = FakeChannel("email", failures=3)
    channels: dict[str, ReceiptChannel] = {"email": email}
    store, _order = await paid_order(world, sessions, redis, settings)
    [event] = await events_of(sessions, store, "order.placed")
    await create_from_event(sessions, event, channels)
    [receipt] = await receipts_of(sessions, store)
    deliveries = ReceiptDeliveries(sessions, settings, channels)
    for attempt in (1, 2, 3):
        with pytest.raises(DeliveryDeferred):
            await deliveries.deliver(receipt.deliveries[0].id)
        alerted = (await reload(sessions, receipt.id)).alerted_at
        assert (alerted is not None) == (attempt == 3)
    assert await deliveries.deliver(receipt.deliveries[0].id) == "sent"
    assert (await reload(sessions, receipt.id)).alerted_at is None
    assert len(email.sent) == 1 and email.sent[0].attempt == 4


async def test_receipt_alerts_arrive_on_the_boards_stream_and_clear_when_the_receipt_is_delivered(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, app: Litestar
) -> None:
    from litestar.channels import ChannelsPlugin
    from litestar.channels.backends.redis import RedisChannelsPubSubBackend
    from saq import Queue

    from app.core import live
    from app.core.outbox import OutboxRelay
    from app.orders.board import BoardCards, board_messages
    from app.receipts.board import TEMPLATE, BoardReceiptAlerts
    from tests.integration.test_live_stream import Frame

    relay = OutboxRelay(sessions, RedisChannelsPubSubBackend(redis=redis), Queue.from_url(settings.redis_url or ""))
    email = FakeChannel("email", failures=3)
    channels: dict[str, ReceiptChannel] = {"email": email}
    store, _order = await paid_order(world, sessions, redis, settings)
    [event] = await events_of(sessions, store, "order.placed")
    await create_from_event(sessions, event, channels)
    [receipt] = await receipts_of(sessions, store)
    await relay.drain()
    async with sessions() as session:
        bind_store(session, store.id)
        rendered_at = await live.last_seq(session, store.id)  # the board page was rendered now: no alert yet
    engine = app.template_engine
    assert engine is not None
    cards = BoardCards(sessions, store.id, engine.get_template("orders/_card.html").render, timedelta(minutes=10))
    alerts = BoardReceiptAlerts(sessions, store.id, engine.get_template(TEMPLATE).render)
    plugin = ChannelsPlugin(backend=RedisChannelsPubSubBackend(redis=redis), arbitrary_channels_allowed=True)
    async with plugin:
        hub = live.Hub(plugin)
        stream = hub.stream(sessions, store.id, rendered_at, "board", board_messages(cards, alerts))
        try:

            async def next_receipts_frame() -> Frame:
                deadline = asyncio.get_running_loop().time() + 10
                while True:
                    left = deadline - asyncio.get_running_loop().time()
                    assert left > 0, "no receipts frame on the board's stream"
                    frame = Frame.parse(await asyncio.wait_for(anext(stream), timeout=left))
                    if frame.event == "receipts":
                        return frame

            assert Frame.parse(await asyncio.wait_for(anext(stream), timeout=5)).comment == "connected"
            deliveries = ReceiptDeliveries(sessions, settings, channels)
            for _ in range(3):  # the 3rd failed attempt raises the alert
                with pytest.raises(DeliveryDeferred):
                    await deliveries.deliver(receipt.deliveries[0].id)
            await relay.drain()
            raised = await next_receipts_frame()
            data = json.loads(raised.data)
            assert (data["type"], data["count"]) == ("receipt.alert", 1)
            assert 'data-testid="receipt-alerts"' in data["html"] and f"R-{receipt.number:06d}" in data["html"]
            assert "3 attempts failed" in data["html"] and int(raised.id) > rendered_at

            assert await deliveries.deliver(receipt.deliveries[0].id) == "sent"  # delivered after all
            await relay.drain()
            cleared = await next_receipts_frame()
            data = json.loads(cleared.data)
            assert (data["type"], data["count"]) == ("receipt.alert_cleared", 0)
            assert "Receipts not delivered" not in data["html"] and f"R-{receipt.number:06d}" not in data["html"]
            assert int(cleared.id) > int(raised.id)
        finally:
            await stream.aclose()
            await hub.close()
    assert len(await events_of(sessions, store, "receipt.alert_cleared")) == 1


async def test_a_retry_racing_a_slow_print_does_not_print_twice(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    async with fake_printer(delay=0.6) as printer:
        channels = default_channels(sessions, settings)
        _, receipt, _ = await pos_receipt(world, sessions, redis, settings, channels, with_printer=printer.port)
        delivery_id = receipt.deliveries[0].id
        deliveries = ReceiptDeliveries(sessions, settings, channels)
        slow = asyncio.create_task(deliveries.deliver(delivery_id))
        for _ in range(100):  # the first attempt is recorded (sending) before it prints
            if (await delivery(sessions, delivery_id)).status == "sending":
                break
            await asyncio.sleep(0.02)
        assert await deliveries.deliver(delivery_id) == "in_flight"  # the retry sees it and does not print
        assert await slow == "sent"  # the late success is recorded
        assert await deliveries.deliver(delivery_id) == "sent"
        await asyncio.sleep(0)  # let the printer's handler keep the job
    assert len(printer.jobs) == 1
    done = await delivery(sessions, delivery_id)
    assert (done.status, done.attempts, [a.outcome for a in done.history]) == ("sent", 1, ["sent"])


async def test_a_late_success_after_a_takeover_is_recorded_without_changing_the_delivery(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    """A worker presumed dead (its claim's lease ran out) finishes after another attempt took over: its outcome is
    kept on its own attempt row ('late_sent'), the delivery keeps the current attempt's."""
    email = FakeChannel("email")
    channels: dict[str, ReceiptChannel] = {"email": email}
    store, _order = await paid_order(world, sessions, redis, settings)
    [event] = await events_of(sessions, store, "order.placed")
    await create_from_event(sessions, event, channels)
    [receipt] = await receipts_of(sessions, store)
    deliveries = ReceiptDeliveries(sessions, settings, channels)
    first = await deliveries._claim(receipt.deliveries[0].id)
    assert not isinstance(first, str)
    async with sessions() as session, session.begin():  # the lease runs out
        system_scope(session)
        await session.execute(
            update(ReceiptDelivery).where(ReceiptDelivery.id == receipt.deliveries[0].id)
            .values(updated_at=datetime.now(UTC) - timedelta(minutes=5))
        )  # fmt: skip
    assert await deliveries.deliver(receipt.deliveries[0].id) == "sent"  # attempt 2 takes over and sends
    await deliveries._finish(first[0], "sent")  # attempt 1's late success
    done = await delivery(sessions, receipt.deliveries[0].id)
    assert (done.status, done.attempts) == ("sent", 2)
    assert [a.outcome for a in done.history] == ["late_sent", "sent"]


async def test_receipts_paused_leave_deliveries_pending_until_release(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    from app.core import kill_switches

    email = FakeChannel("email")
    channels: dict[str, ReceiptChannel] = {"email": email}
    store, _order = await paid_order(world, sessions, redis, settings)
    async with sessions() as session, session.begin():
        await kill_switches.engage(
            session, kill_switches.Switch.RECEIPTS_PAUSED, store.id, principal=None, actor="test"
        )
    [event] = await events_of(sessions, store, "order.placed")
    await create_from_event(sessions, event, channels)
    [receipt] = await receipts_of(sessions, store)
    deliveries = ReceiptDeliveries(sessions, settings, channels)
    assert await deliveries.deliver(receipt.deliveries[0].id) == "paused"
    assert (await delivery(sessions, receipt.deliveries[0].id)).status == "pending" and email.sent == []
    async with sessions() as session, session.begin():
        await kill_switches.release(
            session, kill_switches.Switch.RECEIPTS_PAUSED, store.id, principal=None, actor="test"
        )
        system_scope(session)
        await session.execute(  # the job's run was a while ago: the sweep picks it up
            update(ReceiptDelivery).where(ReceiptDelivery.id == receipt.deliveries[0].id)
            .values(updated_at=datetime.now(UTC) - timedelta(minutes=5))
        )  # fmt: skip
    assert await deliveries.sweep() == 1
    assert (await delivery(sessions, receipt.deliveries[0].id)).status == "sent" and len(email.sent) == 1


# ---- pages, links and the API --------------------------------------------------------------------------------


async def _made_and_sent(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> tuple[Store, Order, Receipt]:
    """A paid order with its receipt made and e-mailed (the dev outbox folder: no SMTP server configured)."""
    store, order = await paid_order(world, sessions, redis, settings)
    channels = default_channels(sessions, settings)
    [event] = await events_of(sessions, store, "order.placed")
    await create_from_event(sessions, event, channels)
    [receipt] = await receipts_of(sessions, store)
    assert await ReceiptDeliveries(sessions, settings, channels).deliver(receipt.deliveries[0].id) == "sent"
    return store, order, await reload(sessions, receipt.id)


def pdf_text(data: bytes, tmp_path: Any) -> str:
    import subprocess

    path = tmp_path / "receipt.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


async def test_staff_see_the_receipt_resend_it_and_download_the_pdf(
    client: Client, world: World, sessions: Sessions, redis: Redis, settings: Settings, tmp_path: Any
) -> None:
    store, order, receipt = await _made_and_sent(world, sessions, redis, settings)
    staff = await world.staff(store, Role.CASHIER)
    await sign_in(client, staff.email)
    page = await client.get(f"/staff/orders/{order.id}")
    assert page.status_code == 200
    assert f"R-{receipt.number:06d}" in page.text and 'data-testid="delivery-email"' in page.text
    assert ">sent</span>" in page.text and "ann@example.com" in page.text
    resend = await client.post(
        f"/staff/orders/{order.id}/receipts",
        data={
            "receipt_id": str(receipt.id),
            "channel": "email",
            "target": "bob@example.com",
            "_csrf_token": csrf_from(page.text),
        },
    )
    assert resend.status_code == 303
    after = await reload(sessions, receipt.id)
    assert [(d.target, d.status, d.requested_by) for d in after.deliveries][1] == (
        "bob@example.com",
        "pending",
        staff.user.name,
    )
    bad = await client.post(
        f"/staff/orders/{order.id}/receipts",
        data={
            "receipt_id": str(receipt.id),
            "channel": "email",
            "target": "not an address",
            "_csrf_token": csrf_from(page.text),
        },
    )
    assert bad.status_code == 303
    assert "Enter a valid e-mail address." in (await client.get(f"/staff/orders/{order.id}")).text
    assert len((await reload(sessions, receipt.id)).deliveries) == 2  # nothing half-written
    reprint = await client.post(  # a web order has no register: no reprint, said
        f"/staff/orders/{order.id}/receipts",
        data={"receipt_id": str(receipt.id), "channel": "thermal", "_csrf_token": csrf_from(page.text)},
    )
    assert reprint.status_code == 303
    assert "No receipt printer is set up for this register." in (await client.get(f"/staff/orders/{order.id}")).text

    pdf = await client.get(f"/staff/receipts/{receipt.id}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content, tmp_path)
    for expected in (
        "Espresso beans",
        "2 × €11.90",
        "€23.80",
        "Enamel mug",
        "€14.00",
        "Total",
        "€37.80",
        "incl. tax 7 %",
        "€1.56",
        "incl. tax 19 %",
        "€2.24",
        "Visa ending 4242",
        f"Order #{order.number}",
    ):
        assert expected in text, expected  # fmt: skip

    other_store = await world.store()
    other = await world.staff(other_store)
    await sign_in(client, other.email)
    assert (await client.get(f"/staff/receipts/{receipt.id}/pdf")).status_code == 404  # another store's


async def test_the_signed_link_works_without_an_account_and_refuses_tampering_and_expiry(
    client: Client, world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    import time

    from app.receipts.links import signed_path

    store, order, receipt = await _made_and_sent(world, sessions, redis, settings)
    shopper_page = await client.get(f"/s/{store.slug}/orders/{order.id}?key={order.access_token}")
    assert shopper_page.status_code == 200
    assert f"Your receipt R-{receipt.number:06d} was e-mailed to ann@example.com." in shopper_page.text
    link = re.search(r'href="(/r/[^"]+)" data-testid="receipt-link"', shopper_page.text)
    assert link is not None
    url = link.group(1).replace("&amp;", "&")
    client.cookies.clear()
    opened = await client.get(url)
    assert opened.status_code == 200 and opened.content.startswith(b"%PDF")

    other_id = uuid.uuid4()
    tampered_id = url.replace(str(receipt.id), str(other_id))
    assert (await client.get(tampered_id)).status_code == 403
    exp = re.search(r"exp=(\d+)", url)
    assert exp is not None
    later = url.replace(f"exp={exp.group(1)}", f"exp={int(exp.group(1)) + 3600}")
    assert (await client.get(later)).status_code == 403
    assert (await client.get(url[:-2] + ("00" if not url.endswith("00") else "11"))).status_code == 403
    expired = signed_path(settings.secret_key, receipt.id, now=time.time() - 10, lifetime_s=5)
    refused = await client.get(expired)
    assert refused.status_code == 410 and "This receipt link has expired." in refused.text
    assert (await client.get(f"/r/{receipt.id}")).status_code == 403


async def test_the_api_lists_and_queues_receipts_with_problem_json_on_bad_input(
    client: Client, world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    store, order, receipt = await _made_and_sent(world, sessions, redis, settings)
    headers = bearer(await issue_token(world, store))
    listed = await client.get(f"/api/v1/orders/{order.id}/receipts", headers=headers)
    assert listed.status_code == 200
    [body] = listed.json()
    assert body["number"] == f"R-{receipt.number:06d}" and body["total_minor"] == 3780 and body["currency"] == "EUR"
    assert [(d["channel"], d["status"], d["attempts"]) for d in body["deliveries"]] == [("email", "sent", 1)]
    assert body["pdf_url"].startswith(f"/r/{receipt.id}?exp=")

    queued = await client.post(
        f"/api/v1/orders/{order.id}/receipts", json={"channel": "email", "target": "eve@example.com"}, headers=headers
    )
    assert queued.status_code == 202, queued.text
    assert [(d["target"], d["status"]) for d in queued.json()["deliveries"]][-1] == ("eve@example.com", "pending")

    for payload, field in (({"channel": "fax"}, "channel"), ({"channel": "email", "target": "nope"}, "target"),
                           ({"channel": "thermal"}, "channel")):  # fmt: skip
        refused = await client.post(f"/api/v1/orders/{order.id}/receipts", json=payload, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert field in str(refused.json()), refused.json()
    missing = await client.post(f"/api/v1/orders/{order.id}/receipts", json={"nope": 1}, headers=headers)
    assert missing.status_code == 400 and missing.headers["content-type"].startswith("application/problem+json")
    other = await world.store()
    other_headers = bearer(await issue_token(world, other))
    assert (await client.get(f"/api/v1/orders/{order.id}/receipts", headers=other_headers)).status_code == 404
    assert len((await reload(sessions, receipt.id)).deliveries) == 2  # the refused requests wrote nothing


# ---- through the outbox and a real worker -------------------------------------------------------------------


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker[TillContext]]:
    running = build_worker(settings, concurrency=4, run_webhooks=False)
    task = asyncio.create_task(running.start())
    yield running
    await running.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def wait_for(sessions: Sessions, store: Store, check: Any, what: str) -> list[Receipt]:
    for _ in range(300):
        receipts = await receipts_of(sessions, store)
        if check(receipts):
            return receipts
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: {[(r.kind, [(d.channel, d.status) for d in r.deliveries]) for r in receipts]}")


async def test_a_counter_sale_its_refund_and_the_shift_close_each_print_once_through_the_worker(
    worker: Worker[TillContext], client: Client, world: World, sessions: Sessions, settings: Settings
) -> None:
    from tests.integration.pos import API, open_till, sale_body

    async with fake_printer() as printer:
        till = await open_till(client, world, sessions)
        async with sessions() as session, session.begin():
            await ReceiptService(session, till.store.id).set_printer(
                till.register_id, "127.0.0.1", str(printer.port), "58"
            )
        sale = sale_body(
            till, {"CRO-1": 2, "BEAN-1": 1}, tenders=[{"kind": "cash", "amount_minor": 1670, "tendered_minor": 2000}]
        )
        assert sale["total_minor"] == 1670
        made = await client.post(f"{API}/sales", json=sale, headers=till.headers)
        assert made.status_code == 201, made.text
        number = made.json()["order_number"]
        refund = await client.post(
            f"{API}/refunds",
            json={"order_number": number, "register_id": str(till.register_id), "shift_id": str(till.shift_id),
                  "lines": None, "amount_minor": 240, "to": "cash", "reason": "Stale croissant"},
            headers=till.headers,
        )  # fmt: skip
        assert refund.status_code in (200, 201), refund.text
        closed = await client.post(
            f"{API}/shifts/{till.shift_id}/close",
            json={"counted_cash_minor": 10_000 + 1670 - 240},
            headers=till.headers,
        )
        assert closed.status_code == 200, closed.text

        def all_printed(receipts: list[Receipt]) -> bool:
            return sorted(r.kind for r in receipts) == ["refund", "sale", "shift"] and all(
                d.status == "sent" for r in receipts for d in r.deliveries
            )

        receipts = await wait_for(sessions, till.store, all_printed, "three receipts printed")
        for _ in range(100):
            if len(printer.jobs) == 3:
                break
            await asyncio.sleep(0.02)
    assert [[d.channel for d in r.deliveries] for r in receipts] == [["thermal"]] * 3
    texts = sorted(escpos_text(job) for job in printer.jobs)
    assert len(texts) == 3
    sale_text = next(t for t in texts if "Receipt R-" in t)
    assert "2 × €2.40" in sale_text and "€16.70" in sale_text and "Cash given" in sale_text and "€20.00" in sale_text
    assert "Change" in sale_text and "€3.30" in sale_text
    refund_text = next(t for t in texts if "Refund receipt" in t)
    assert (
        "Refunded" in refund_text and "€2.40" in refund_text and "Given back" in refund_text and "Cash" in refund_text
    )
    assert "Stale croissant" in refund_text
    shift_text = next(t for t in texts if "Shift report" in t)
    assert "Net" in shift_text and "€14.30" in shift_text and "Counted cash" in shift_text


async def test_a_manager_sets_up_a_registers_printer_and_prints_a_test_receipt(
    client: Client, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    register_id = await add_register(sessions, store)
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    registers = await client.get("/staff/registers")
    assert f'href="/staff/registers/{register_id}/printer"' in registers.text
    page = await client.get(f"/staff/registers/{register_id}/printer")
    assert page.status_code == 200
    token = csrf_from(page.text)
    bad = await client.post(
        f"/staff/registers/{register_id}/printer",
        data={"host": "http://x", "port": "99999", "paper": "70", "_csrf_token": token},
    )
    assert bad.status_code == 422
    assert "A host name or IP address" in bad.text and "A port from 1 to 65535" in bad.text and "58 or 80" in bad.text
    assert 'value="http://x"' in bad.text  # kept
    async with sessions() as session:
        assert await ReceiptService(session, store.id).printer_of(register_id) is None  # nothing written
    with threaded_fake_printer() as printer:
        saved = await client.post(
            f"/staff/registers/{register_id}/printer",
            data={"host": "127.0.0.1", "port": str(printer.port), "paper": "58", "_csrf_token": token},
        )
        assert saved.status_code == 303
        tested = await client.post(f"/staff/registers/{register_id}/printer/test", data={"_csrf_token": token})
        assert tested.status_code == 303
        shown = (await client.get(f"/staff/registers/{register_id}/printer")).text
        assert "A test receipt was printed." in shown, shown[shown.find("<main") : shown.find("<main") + 600]
    assert len(printer.jobs) == 1 and "If you can read this" in escpos_text(printer.jobs[0])
    cashier = await world.staff(store, Role.CASHIER)
    await sign_in(client, cashier.email)
    assert (await client.get(f"/staff/registers/{register_id}/printer")).status_code == 403


async def test_the_test_print_holds_no_database_connection_during_the_printer_call(
    client: Client, app: Litestar, world: World, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.receipts import printer_pages
    from app.receipts.channels.thermal import print_bytes

    store = await world.store()
    register_id = await add_register(sessions, store)
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    token = csrf_from((await client.get(f"/staff/registers/{register_id}/printer")).text)
    held: list[int] = []
    real_print = print_bytes

    async def watched_print(host: str, port: int, data: bytes) -> None:
        held.append(app.state.engine.pool.checkedout())  # the page's connections out of the pool right now
        await real_print(host, port, data)

    monkeypatch.setattr(printer_pages, "print_bytes", watched_print)
    with threaded_fake_printer(delay=0.2) as printer:
        saved = await client.post(
            f"/staff/registers/{register_id}/printer",
            data={"host": "127.0.0.1", "port": str(printer.port), "paper": "80", "_csrf_token": token},
        )
        assert saved.status_code == 303
        tested = await client.post(f"/staff/registers/{register_id}/printer/test", data={"_csrf_token": token})
        assert tested.status_code == 303
        assert "A test receipt was printed." in (await client.get(f"/staff/registers/{register_id}/printer")).text
    assert len(printer.jobs) == 1
    refused_port = _closed_port()
    await client.post(
        f"/staff/registers/{register_id}/printer",
        data={"host": "127.0.0.1", "port": str(refused_port), "paper": "80", "_csrf_token": token},
    )
    await client.post(f"/staff/registers/{register_id}/printer/test", data={"_csrf_token": token})
    shown = (await client.get(f"/staff/registers/{register_id}/printer")).text
    assert f"127.0.0.1:{refused_port} refused the connection" in shown
    assert held == [0, 0]  # the session was given back before each network call


async def test_a_discounted_orders_pdf_thermal_and_email_show_the_same_lines_discounts_taxes_and_tenders(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, inbox: tuple[Inbox, int], tmp_path: Any
) -> None:
    from app.receipts.pdf import render_pdf
    from app.receipts.thermal import render_escpos
    from tests.integration.promotions import make_promotion

    box, port = inbox
    smtp = smtp_settings(settings, port)
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store, name="Opening week", code=None, percent_bps=1000)
    order = await place_order(sessions, shop, redis, settings, lines={"BEAN-1": 2, "MUG-1": 1})
    assert order.discount_minor == 378 and order.total_minor == 3402
    channels = default_channels(sessions, smtp)
    [event] = await events_of(sessions, shop.store, "order.placed")
    await create_from_event(sessions, event, channels)
    [receipt] = await receipts_of(sessions, shop.store)
    assert await ReceiptDeliveries(sessions, smtp, channels).deliver(receipt.deliveries[0].id) == "sent"
    doc = ReceiptDocument.from_json(receipt.content, number=receipt.number)
    expected = ["2 × €11.90", "€23.80", "-€2.38", "1 × €14.00", "-€1.40", "Subtotal", "€37.80", "Opening week",
                "-€3.78", "Total", "€34.02", "incl. tax 7 %", "incl. tax 19 %", "Visa ending 4242"]  # fmt: skip
    taxes = [doc.fmt(row.amount_minor) for row in doc.tax_lines]
    assert sum(row.amount_minor for row in doc.tax_lines) == order.tax_minor
    pdf = pdf_text(render_pdf(doc), tmp_path)
    thermal = escpos_text(render_escpos(doc, paper_mm=58, qr_url="http://127.0.0.1:8000/r/x"))
    [(_, _, message)] = box.messages
    plain = message.get_body(("plain",))
    assert plain is not None
    mail = plain.get_content()
    for text in expected + taxes:
        assert text in pdf, ("pdf", text)
        assert text in thermal, ("thermal", text)
    for text in ["Total: €34.02", "Opening week: -€3.78", "Subtotal: €37.80", *taxes, "Visa ending 4242: €34.02"]:
        assert text in mail, ("mail", text)


async def test_points_an_order_earned_print_as_points_on_the_pdf_the_paper_and_the_email(
    world: World,
    sessions: Sessions,
    redis: Redis,
    settings: Settings,
    engine: AsyncEngine,
    inbox: tuple[Inbox, int],
    tmp_path: Any,
) -> None:
    from app.receipts.pdf import render_pdf
    from app.receipts.thermal import render_escpos
    from app.stored_value.loyalty.jobs import loyalty_points
    from app.stored_value.loyalty.models import LoyaltyAccrual
    from app.stored_value.loyalty.program import Program, Tier
    from app.stored_value.loyalty.services import LoyaltyProgramService

    box, port = inbox
    smtp = smtp_settings(settings, port)
    shop = await make_shop(world)
    program = Program(
        enabled=True, points_per_unit=1, tiers=(Tier("Member", 0, 10_000),), expiry_days=None,
        redeem_points=100, redeem_value_minor=100, min_redeem_points=10,
    )  # fmt: skip
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, shop.store.id).save(program.as_dict(), actor=None)
    ctx = {"engine": engine, "sessions": sessions}
    first = await place_order(sessions, shop, redis, settings, lines={"MUG-1": 2}, email="ann@example.com")
    [placed] = await events_of(sessions, shop.store, "order.placed")
    assert await loyalty_points(ctx, event=placed) == "earned 28, reversed 0"  # ann has 28 points
    order = await place_order(sessions, shop, redis, settings, lines={"MUG-1": 1, "BEAN-1": 1}, email="ann@example.com")
    event = (await events_of(sessions, shop.store, "order.placed"))[-1]
    assert event["aggregate_id"] == str(order.id) and first.id != order.id
    channels = default_channels(sessions, smtp)
    # The receipt is made before the loyalty consumer has seen the event: the points are worked out as it will.
    await create_from_event(sessions, event, channels)
    [receipt] = await receipts_of(sessions, shop.store)
    doc = ReceiptDocument.from_json(receipt.content, number=receipt.number)
    assert [(r.label, r.amount_minor, r.unit) for r in doc.loyalty] == [
        ("Points earned", 25, "points"),  # €25.90 of goods, 1 point per euro
        ("Points balance", 53, "points"),
    ]
    assert await loyalty_points(ctx, event=event) == "earned 25, reversed 0"  # the same as the receipt said
    async with sessions() as session:
        bind_store(session, shop.store.id)
        accrual = await session.scalar(select(LoyaltyAccrual).where(LoyaltyAccrual.order_id == order.id))
    assert accrual is not None and accrual.points == 25

    assert await ReceiptDeliveries(sessions, smtp, channels).deliver(receipt.deliveries[0].id) == "sent"
    pdf = pdf_text(render_pdf(doc), tmp_path)
    thermal = escpos_text(render_escpos(doc, paper_mm=58, qr_url="http://127.0.0.1:8000/r/x"))
    [(_, _, message)] = box.messages
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    mail, mail_html = plain.get_content(), html.get_content()
    for name, rendered in (("pdf", pdf), ("thermal", thermal)):
        assert re.search(r"Points earned\s+25\n", rendered), (name, rendered)
        assert re.search(r"Points balance\s+53\n", rendered), (name, rendered)
        assert "€0.25" not in rendered and "€0.53" not in rendered, name  # never as money
    assert "Points earned: 25" in mail and "Points balance: 53" in mail
    assert re.search(r"<td>Points earned</td><td[^>]*>25</td>", mail_html)
    assert re.search(r"<td>Points balance</td><td[^>]*>53</td>", mail_html)
    assert "€0.25" not in mail + mail_html

    # Once the accrual is recorded a receipt made again (a reprint's document) reads it: same numbers.
    async with sessions() as session:
        bind_store(session, shop.store.id)
        fresh = await session.scalar(select(Order).where(Order.id == order.id))
        assert fresh is not None
        again = await sale_document(session, shop.store, fresh)
    assert [(r.label, r.amount_minor) for r in again.loyalty] == [("Points earned", 25), ("Points balance", 53)]


async def test_an_order_without_a_customer_or_a_program_has_no_points_rows(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    store, order = await paid_order(world, sessions, redis, settings)  # the shop has no loyalty program
    async with sessions() as session:
        bind_store(session, store.id)
        fresh = await session.scalar(select(Order).where(Order.id == order.id))
        assert fresh is not None
        assert (await sale_document(session, store, fresh)).loyalty == []


# ---- WhatsApp (a local fake of the Cloud API) -----------------------------------------------------------------


WA_SECRET = "wa-app-secret"


def whatsapp_settings(settings: Settings, api: FakeWhatsApp) -> Settings:
    return dataclasses.replace(
        settings, whatsapp_api_url=api.api_url, whatsapp_token="wa-token", whatsapp_app_secret="wa-app-secret"
    )


def signed_status(message_id: str, status: str, secret: str = WA_SECRET) -> tuple[bytes, dict[str, str]]:
    import hashlib
    import hmac
    import json

    value: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": "1764921600",
        "recipient_id": "4915112345678",
    }
    if status == "failed":
        value["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": [value]}}]}]}  # fmt: skip
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"x-hub-signature-256": signature, "content-type": "application/json"}


async def whatsapp_events(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sql("SELECT event_id, status, outcome FROM webhook_events WHERE provider = 'whatsapp' ORDER BY received_at")
        )
        return [(r.event_id, r.status, r.outcome) for r in rows]


async def test_whatsapp_sends_the_template_and_takes_signed_statuses_once(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, engine: AsyncEngine
) -> None:
    from app.main import create_app

    async with fake_whatsapp() as api:
        wa = whatsapp_settings(settings, api)
        channels = default_channels(sessions, wa)
        assert "whatsapp" not in default_channels(sessions, settings)  # off unless configured
        store, receipt, _ = await pos_receipt(world, sessions, redis, settings, channels, phone="+49 151 1234 5678")
        [queued] = receipt.deliveries
        assert (queued.channel, queued.target) == ("whatsapp", "4915112345678")
        assert await ReceiptDeliveries(sessions, wa, channels).deliver(queued.id) == "sent"
    [(path, headers, body)] = api.requests
    assert path == "/v21.0/1234567890/messages" and headers["authorization"] == "Bearer wa-token"
    assert body["to"] == "4915112345678" and body["type"] == "template" and body["template"]["name"] == "receipt"
    texts = [p["text"] for p in body["template"]["components"][0]["parameters"]]
    assert texts[1] == f"R-{receipt.number:06d}" and texts[2] == "€37.80" and f"/r/{receipt.id}?exp=" in texts[3]
    sent = await delivery(sessions, queued.id)
    assert (sent.status, sent.external_ref) == ("sent", "wamid.TEST1")

    deps = Deps(engine=engine, sessions=sessions, redis=redis, settings=wa)
    async with AsyncTestClient(app=create_app(wa), base_url="http://testserver.local") as hook:
        # Stored and acknowledged, not processed: the request changes no delivery.
        body_bytes, hook_headers = signed_status("wamid.TEST1", "delivered")
        for duplicates in (0, 1):  # delivered twice: stored once
            answer = await hook.post("/webhooks/whatsapp", content=body_bytes, headers=hook_headers)
            assert answer.status_code == 200 and answer.json() == {"stored": 1 - duplicates, "duplicates": duplicates}
        assert await whatsapp_events(engine) == [("wamid.TEST1:delivered", "received", "")]
        assert (await delivery(sessions, queued.id)).provider_status == ""
        assert await WebhookProcessor(deps).drain() == 1  # the worker's processor: once
        assert await WebhookProcessor(deps).drain() == 0
        assert (await delivery(sessions, queued.id)).provider_status == "delivered"
        read, read_headers = signed_status("wamid.TEST1", "read")
        assert (await hook.post("/webhooks/whatsapp", content=read, headers=read_headers)).status_code == 200
        late, late_headers = signed_status("wamid.TEST1", "sent")  # out of order: changes nothing shown
        assert (await hook.post("/webhooks/whatsapp", content=late, headers=late_headers)).status_code == 200
        assert await WebhookProcessor(deps).drain() == 2
        forged, forged_headers = signed_status("wamid.TEST1", "failed", secret="not-the-secret")
        refused = await hook.post("/webhooks/whatsapp", content=forged, headers=forged_headers)
        assert refused.status_code == 400 and refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["fields"] == {"signature": "bad signature"}
        unsigned = await hook.post("/webhooks/whatsapp", content=forged)
        assert unsigned.status_code == 400
        import hashlib
        import hmac

        for garbage in (b"not json", b"[1, 2]"):  # signed, but not a webhook payload
            signature = "sha256=" + hmac.new(WA_SECRET.encode(), garbage, hashlib.sha256).hexdigest()
            refused = await hook.post("/webhooks/whatsapp", content=garbage, headers={"x-hub-signature-256": signature})
            assert refused.status_code == 400 and refused.json()["fields"] == {"signature": "malformed payload"}
        check = await hook.get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wa-app-secret&hub.challenge=42")
        assert check.status_code == 200 and check.text == "42"
        assert (
            await hook.get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1")
        ).status_code == 403
    assert await whatsapp_events(engine) == [  # the forged "failed" stored nothing
        ("wamid.TEST1:delivered", "processed", "delivered: recorded"),
        ("wamid.TEST1:read", "processed", "read: recorded"),
        ("wamid.TEST1:sent", "processed", "sent: recorded"),
    ]
    read_now = await delivery(sessions, queued.id)
    assert (read_now.status, read_now.provider_status) == ("sent", "read")
    async with sessions() as session:
        system_scope(session)
        kept = await session.scalars(
            select(WhatsAppStatusEvent.status).where(WhatsAppStatusEvent.message_id == "wamid.TEST1")
        )
        assert sorted(kept) == ["delivered", "read", "sent"]
    # A replay (the admin's, or the processor's retry of a row it already applied) changes nothing.
    async with engine.begin() as conn:
        await conn.execute(sql("UPDATE webhook_events SET status = 'received' WHERE provider = 'whatsapp'"))
    assert await WebhookProcessor(deps).drain() == 3
    assert [outcome for _, _, outcome in await whatsapp_events(engine)] == [
        "delivered: duplicate",
        "read: duplicate",
        "sent: duplicate",
    ]
    assert (await delivery(sessions, queued.id)).provider_status == "read"
    async with AsyncTestClient(app=create_app(wa), base_url="http://testserver.local") as staff_client:
        staff_client.follow_redirects = False
        await sign_in(staff_client, (await world.staff(store, Role.OWNER)).email)
        listed = await staff_client.get("/staff/webhooks", params={"type": "whatsapp."})
        assert listed.status_code == 200  # tied to the store once processed: on its webhook page, replayable
        assert "wamid.TEST1:delivered" in listed.text and "wamid.TEST1:read" in listed.text


async def test_a_whatsapp_status_for_a_message_not_recorded_yet_is_retried_then_ignored(
    sessions: Sessions, redis: Redis, settings: Settings, engine: AsyncEngine
) -> None:
    from app.main import create_app

    async with fake_whatsapp() as api:
        wa = whatsapp_settings(settings, api)
    deps = Deps(engine=engine, sessions=sessions, redis=redis, settings=wa)
    async with AsyncTestClient(app=create_app(wa), base_url="http://testserver.local") as hook:
        body_bytes, hook_headers = signed_status("wamid.NOT-OURS", "delivered")
        assert (await hook.post("/webhooks/whatsapp", content=body_bytes, headers=hook_headers)).status_code == 200
    async with engine.connect() as conn:
        row_id = (await conn.execute(sql("SELECT id FROM webhook_events WHERE provider = 'whatsapp'"))).scalar_one()
    assert await process_event(deps, row_id) == "failed"  # the send may not be recorded yet: tried again
    assert await process_event(deps, row_id) == "failed"
    assert await process_event(deps, row_id) == "ignored: no WhatsApp receipt message wamid.NOT-OURS"


async def test_whatsapp_refusals_retry_or_fall_back_and_a_failed_status_falls_back_to_email(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, engine: AsyncEngine
) -> None:
    from app.main import create_app

    async with fake_whatsapp(answers=[503, 400]) as api:
        wa = whatsapp_settings(settings, api)
        channels = default_channels(sessions, wa)
        _, receipt, _ = await pos_receipt(world, sessions, redis, settings, channels, phone="+4915112345678")
        deliveries = ReceiptDeliveries(sessions, wa, channels)
        with pytest.raises(DeliveryDeferred):  # 503: tried again later
            await deliveries.deliver(receipt.deliveries[0].id)
        assert await deliveries.deliver(receipt.deliveries[0].id) == "failed"  # 400: refused for good
        after = await reload(sessions, receipt.id)
        assert [(d.channel, d.status) for d in after.deliveries] == [("whatsapp", "failed"), ("email", "pending")]
        assert "not in allowed list" in after.deliveries[0].last_error

        second = await pos_receipt(world, sessions, redis, settings, channels, phone="+4915112345678")
        assert await deliveries.deliver(second[1].deliveries[0].id) == "sent"
    ref = (await delivery(sessions, second[1].deliveries[0].id)).external_ref
    async with AsyncTestClient(app=create_app(wa), base_url="http://testserver.local") as hook:
        failed, failed_headers = signed_status(ref, "failed")
        assert (await hook.post("/webhooks/whatsapp", content=failed, headers=failed_headers)).json() == {
            "stored": 1,
            "duplicates": 0,
        }
    assert await WebhookProcessor(Deps(engine=engine, sessions=sessions, redis=redis, settings=wa)).drain() == 1
    assert (await whatsapp_events(engine))[-1] == (f"{ref}:failed", "processed", "failed: recorded")
    moved = await reload(sessions, second[1].id)
    assert [(d.channel, d.status, d.provider_status) for d in moved.deliveries] == [
        ("whatsapp", "failed", "failed"),
        ("email", "pending", ""),
    ]
    assert moved.deliveries[0].last_error == "Message undeliverable"


async def test_the_till_prints_or_emails_the_receipt_right_after_a_sale(
    client: Client, world: World, sessions: Sessions
) -> None:
    from tests.integration.pos import API, open_till, sale_body

    till = await open_till(client, world, sessions)
    made = await client.post(f"{API}/sales", json=sale_body(till, {"CRO-1": 1}), headers=till.headers)
    assert made.status_code == 201, made.text
    order_id = made.json()["order_id"]
    url = f"/staff/orders/{order_id}/receipts/send"
    no_printer = await client.post(url, json={"channel": "thermal"}, headers=till.headers)
    assert no_printer.status_code == 422, no_printer.text
    assert "No receipt printer is set up for this register." in no_printer.text
    bad = await client.post(url, json={"channel": "email", "target": "nope"}, headers=till.headers)
    assert bad.status_code == 422 and "Enter a valid e-mail address." in bad.text
    sent = await client.post(url, json={"channel": "email", "target": "kim@example.com"}, headers=till.headers)
    assert sent.status_code == 202, sent.text
    assert sent.json()["channel"] == "email" and sent.json()["status"] == "pending"
    again = await client.post(url, json={"channel": "email", "target": "kim@example.com"}, headers=till.headers)
    assert again.json()["number"] == sent.json()["number"]  # one receipt, made once
    [receipt] = await receipts_of(sessions, till.store)
    assert [(d.channel, d.target) for d in receipt.deliveries] == [("email", "kim@example.com")] * 2


async def test_a_web_refund_gets_a_receipt_saying_what_went_back_and_how_once(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, tmp_path: Any
) -> None:
    from app.orders.services import Actor
    from app.payments.models import PaymentIntent
    from app.payments.operations import PaymentOperations
    from app.payments.registry import provider_for
    from app.receipts.pdf import render_pdf

    shop = await make_shop(world)
    order = await place_order(sessions, shop, redis, settings, lines={"MUG-1": 2})
    async with sessions() as session:
        system_scope(session)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
    assert intent is not None
    operations = PaymentOperations(sessions, shop.store.id, provider_for(shop.store, redis, settings))
    await operations.refund(order.id, intent.id, amount_minor=700, reason="One arrived chipped",
                            actor=Actor(Role.MANAGER, "Mia", "staff"))  # fmt: skip
    channels = default_channels(sessions, settings)
    events = await events_of(sessions, shop.store, "order.placed", "order.payment_changed")
    for event in events + events:  # every event twice (the relay is at-least-once): each receipt once
        await create_from_event(sessions, event, channels)
    receipts = await receipts_of(sessions, shop.store)
    assert sorted(r.kind for r in receipts) == ["refund", "sale"]
    refund = next(r for r in receipts if r.kind == "refund")
    doc = ReceiptDocument.from_json(refund.content, number=refund.number)
    assert doc.total_minor == 700 and [(t.label, t.amount_minor) for t in doc.tenders] == [("To Visa ending 4242", 700)]
    text = pdf_text(render_pdf(doc), tmp_path)
    for expected in ("Refund receipt", "Refunded", "€7.00", "Given back", "To Visa ending 4242",
                     "Reason: One arrived chipped", f"Order #{order.number}"):  # fmt: skip
        assert expected in text, expected
    assert [(d.channel, d.target) for d in refund.deliveries] == [("email", "ann@example.com")]
