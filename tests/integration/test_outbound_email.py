"""Outbound e-mail: queued with the change that caused it, delivered by the worker over SMTP (a real aiosmtpd
server on 127.0.0.1) or into the dev outbox folder, retried with backoff and failed after the last attempt,
never sent twice."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller as SmtpController
from aiosmtpd.smtp import AuthResult, LoginPassword
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.jobs import enqueue
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.main import create_app
from app.notifications.models import OutboundMessage
from app.notifications.services import MESSAGE_QUEUED, DeliveryDeferred, EmailDelivery, queue_email
from app.notifications.transports import NO_SMTP, outbox_folder
from app.stores.models import Store
from tests.integration.conftest import World, sign_in
from workers.context import TillContext
from workers.settings import build_worker

Sessions = async_sessionmaker[AsyncSession]


class Inbox:
    """An aiosmtpd handler keeping what it received; ``delay`` holds each DATA to widen race windows."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.delay = delay
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = _parse(envelope.content)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data == LoginPassword(b"till", b"s3cret/pw"))


def _parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def smtp_server(inbox: Inbox) -> Iterator[int]:
    port = _free_port()
    controller = SmtpController(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    with smtp_server(box) as port:
        yield box, port


async def _queue(sessions: Sessions, store: Store, *, to: str = "ada@example.com", subject: str = "Hello") -> uuid.UUID:
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        message = await queue_email(
            session,
            to=to,
            subject=subject,
            text="Open http://127.0.0.1:8000/invite/abc to join.\n",
            html="<p>Open <a href='http://127.0.0.1:8000/invite/abc'>the link</a></p>",
            purpose="test",
            reference="ref-1",
        )
        return message.id


async def _message(sessions: Sessions, message_id: uuid.UUID) -> OutboundMessage:
    async with sessions() as session:
        system_scope(session)
        found = await session.get(OutboundMessage, message_id)
        assert found is not None
        return found


async def test_queue_email_commits_the_message_and_its_event_together(world: World, sessions: Sessions) -> None:
    store = await world.store()
    message_id = await _queue(sessions, store)
    async with sessions() as session:
        bind_store(session, store.id)
        message = await session.scalar(select(OutboundMessage).where(OutboundMessage.id == message_id))
        event = await session.scalar(select(OutboxEvent).where(OutboxEvent.aggregate_id == str(message_id)))
    assert message is not None and message.status == "pending" and message.attempts == 0
    assert event is not None and event.type == MESSAGE_QUEUED

    async with sessions() as session, session.begin():  # rolled back: neither stays
        bind_store(session, store.id)
        rolled = await queue_email(session, to="x@example.com", subject="s", text="t", purpose="test")
        await session.rollback()
    async with sessions() as session:
        bind_store(session, store.id)
        assert await session.get(OutboundMessage, rolled.id) is None
        assert await session.scalar(select(OutboxEvent).where(OutboxEvent.aggregate_id == str(rolled.id))) is None


async def test_without_smtp_dev_writes_an_eml_to_the_outbox_folder_once(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    store = await world.store()
    message_id = await _queue(sessions, store, subject="Folder mail")
    delivery = EmailDelivery(sessions, settings)
    assert await delivery.deliver(message_id) == "sent"
    path = outbox_folder(settings) / f"{message_id}.eml"
    parsed = _parse(path.read_bytes())
    assert parsed["Subject"] == "Folder mail" and parsed["To"] == "ada@example.com"
    assert parsed["Message-ID"] == f"<{message_id}@localhost>"
    body = parsed.get_body(("plain",))
    assert body is not None and "http://127.0.0.1:8000/invite/abc" in body.get_content()
    message = await _message(sessions, message_id)
    assert (message.status, message.transport, message.attempts) == ("sent", "outbox", 1)
    assert message.sent_at is not None

    path.unlink()
    assert await delivery.deliver(message_id) == "sent"  # already sent: skipped, not sent again
    assert not path.exists()
    assert (await _message(sessions, message_id)).attempts == 1


async def test_production_without_smtp_marks_the_message_failed(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    store = await world.store()
    message_id = await _queue(sessions, store)
    production = dataclasses.replace(settings, env="production")
    assert await EmailDelivery(sessions, production).deliver(message_id) == "failed"
    message = await _message(sessions, message_id)
    assert message.status == "failed" and message.last_error == NO_SMTP


async def test_smtp_delivery_reaches_a_real_server(
    world: World, sessions: Sessions, settings: Settings, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    store = await world.store()
    message_id = await _queue(sessions, store, to="grace@example.com", subject="Über SMTP")
    smtp = dataclasses.replace(
        settings, smtp_url=f"smtp://till:s3cret%2Fpw@127.0.0.1:{port}", mail_from="Shop <s@ex.com>"
    )
    assert await EmailDelivery(sessions, smtp).deliver(message_id) == "sent"
    assert len(box.messages) == 1
    sender, recipients, received = box.messages[0]
    assert sender == "s@ex.com" and recipients == ["grace@example.com"]
    assert box.logins == [(b"till", b"s3cret/pw")]
    assert received["Subject"] == "Über SMTP" and received["From"] == "Shop <s@ex.com>"
    plain, html = received.get_body(("plain",)), received.get_body(("html",))
    assert plain is not None and "/invite/abc to join" in plain.get_content()
    assert html is not None and "<a href='http://127.0.0.1:8000/invite/abc'>" in html.get_content()
    message = await _message(sessions, message_id)
    assert (message.status, message.transport, message.last_error) == ("sent", "smtp", "")


async def test_refused_connection_retries_then_fails_after_the_last_attempt(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    store = await world.store()
    message_id = await _queue(sessions, store)
    refused = dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{_free_port()}")  # nothing listens
    delivery = EmailDelivery(sessions, refused)
    for attempt in (1, 2):
        with pytest.raises(DeliveryDeferred):
            await delivery.deliver(message_id)
        message = await _message(sessions, message_id)
        assert (message.status, message.attempts) == ("retrying", attempt)
        assert message.last_error and message.transport == "smtp"
    assert await delivery.deliver(message_id, final_attempt=True) == "failed"
    message = await _message(sessions, message_id)
    assert (message.status, message.attempts) == ("failed", 3)
    assert "connect" in message.last_error.lower() or "refused" in message.last_error.lower()
    assert await delivery.deliver(message_id) == "failed"  # failed stays failed
    assert (await _message(sessions, message_id)).attempts == 3


async def test_a_racing_retry_does_not_send_twice(world: World, sessions: Sessions, settings: Settings) -> None:
    box = Inbox(delay=0.5)
    store = await world.store()
    message_id = await _queue(sessions, store)
    with smtp_server(box) as port:
        smtp = dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{port}")
        first, second = await asyncio.gather(
            EmailDelivery(sessions, smtp).deliver(message_id), EmailDelivery(sessions, smtp).deliver(message_id)
        )
        assert sorted([first, second]) == ["in_flight", "sent"]
        assert await EmailDelivery(sessions, smtp).deliver(message_id) == "sent"
    assert len(box.messages) == 1
    assert (await _message(sessions, message_id)).attempts == 1


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker[TillContext]]:
    running = build_worker(settings, concurrency=2, run_webhooks=False)
    task = asyncio.create_task(running.start())
    yield running
    await running.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _wait_for_status(sessions: Sessions, message_id: uuid.UUID, statuses: set[str]) -> OutboundMessage:
    for _ in range(200):
        message = await _message(sessions, message_id)
        if message.status in statuses:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"message stayed {message.status}")


async def test_worker_delivers_a_queued_message_through_the_outbox_relay(
    worker: Worker[TillContext], world: World, sessions: Sessions, settings: Settings
) -> None:
    store = await world.store()
    message_id = await _queue(sessions, store, subject="Via the relay")
    message = await _wait_for_status(sessions, message_id, {"sent", "failed"})
    assert (message.status, message.transport) == ("sent", "outbox")
    assert (outbox_folder(settings) / f"{message_id}.eml").exists()


async def test_worker_job_marks_failed_on_its_last_attempt(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    refused = dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{_free_port()}")
    running = build_worker(refused, concurrency=1, run_relay=False, run_webhooks=False)
    task = asyncio.create_task(running.start())
    try:
        store = await world.store()
        message_id = await _queue(sessions, store)
        event = {"id": None, "store_id": str(store.id), "aggregate_id": str(message_id), "type": MESSAGE_QUEUED}
        job = await enqueue(running.queue, "deliver_email", retries=2, event=event)
        assert job is not None
        await job.refresh(until_complete=20)
        assert job.status == "complete" and job.result == "failed"
        assert job.attempts == 2
    finally:
        await running.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    message = await _message(sessions, message_id)
    assert (message.status, message.attempts) == ("failed", 2)
    assert message.last_error


async def test_dev_outbox_page_lists_the_stores_messages_with_links(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, settings: Settings
) -> None:
    store, other = await world.store(), await world.store()
    cashier = await world.staff(store, Role.CASHIER)
    await _queue(sessions, store, subject="Older")
    await _queue(sessions, store, subject="Newer")
    await _queue(sessions, other, subject="Someone else's")
    await sign_in(client, cashier.email)
    page = await client.get("/staff/outbox")
    assert page.status_code == 200
    assert page.text.index("Newer") < page.text.index("Older")
    assert "Someone else" not in page.text
    assert '<a href="http://127.0.0.1:8000/invite/abc">http://127.0.0.1:8000/invite/abc</a>' in page.text
    assert "pending" in page.text and "ada@example.com" in page.text


async def test_dev_outbox_page_is_not_found_in_production(world: World, settings: Settings) -> None:
    production = dataclasses.replace(settings, env="production")
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    async with AsyncTestClient(app=create_app(production), base_url="https://testserver.local") as client:
        client.follow_redirects = False
        await sign_in(client, owner.email)
        assert (await client.get("/staff")).status_code == 200
        assert (await client.get("/staff/outbox")).status_code == 404
