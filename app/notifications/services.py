"""Outbound e-mail: ``queue_email`` records a message in the caller's transaction; a worker job delivers it.

A message goes pending → sending (an attempt is recorded before each send) → sent, or → retrying → … → failed
after the last attempt. Only the run that moved a message to ``sending`` sends it, so a retry racing a slow
attempt skips it, and a message already ``sent`` is never sent again. A worker that dies mid-send leaves the
message ``sending``; after ``CLAIM_LEASE`` the stalled-mail sweep may send it again (at-least-once at that edge,
with the same Message-ID).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta

import structlog
from jinja2 import Environment
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.errors import ValidationFailed
from app.core.outbox import emit
from app.core.templating import make_environment
from app.core.tenancy import system_scope
from app.notifications.models import OutboundMessage
from app.notifications.transports import NO_SMTP, Envelope, PermanentFailure, transport_for

log = structlog.get_logger(__name__)

MESSAGE_QUEUED = "message.queued"  # the outbox event the delivery job consumes (workers/tasks.py)
MAX_ATTEMPTS = 5  # the relay enqueues consumers with retries=5 (SAQ: attempts in all), with backoff
SEND_TIMEOUT_S = 8.0  # the whole send; below SAQ's 10 s job timeout, so a slow server is a recorded failure
CLAIM_LEASE = timedelta(minutes=2)  # a message "sending" for longer was left by a worker that died
STALE_AFTER = timedelta(minutes=10)  # pending/retrying this long: its job was lost; the sweep delivers it
REDELIVER_BATCH = 10  # per sweep: each send may take up to SEND_TIMEOUT_S
STATUSES = ("pending", "sending", "sent", "retrying", "failed")


class DeliveryDeferred(Exception):
    """This attempt failed and was recorded as ``retrying``: raised so that SAQ runs the job again later."""


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


async def queue_email(
    session: AsyncSession,
    *,
    to: str,
    subject: str,
    text: str,
    html: str = "",
    purpose: str,
    reference: str = "",
) -> OutboundMessage:
    """Record an e-mail to send (the session is bound to its store) and emit ``message.queued`` with it: both
    commit or roll back with the caller's change. The worker delivers it after the commit."""
    address = to.strip()
    if "@" not in address or any(c.isspace() for c in address) or len(address) > 254:
        raise ValidationFailed("Enter a valid e-mail address.", fields={"email": "Enter a valid e-mail address."})
    message = OutboundMessage(
        channel="email",
        purpose=purpose,
        reference=reference,
        to_address=address,
        subject=_one_line(subject, 200),
        text_body=text,
        html_body=html,
        status="pending",
        attempts=0,
        last_error="",
        transport="",
    )
    session.add(message)
    await session.flush()
    emit(session, MESSAGE_QUEUED, aggregate_type="message", aggregate_id=message.id, payload={"purpose": purpose})
    return message


@functools.cache
def _email_templates() -> Environment:
    return make_environment()


def render_email(template: str, **context: object) -> tuple[str, str]:
    """(text, html) of ``templates/email/<template>.txt`` and ``.html``."""
    env = _email_templates()
    text = env.get_template(f"email/{template}.txt").render(**context)
    return text, env.get_template(f"email/{template}.html").render(**context)


async def recent_messages(session: AsyncSession, *, limit: int = 100) -> list[OutboundMessage]:
    """The session's store's messages, newest first."""
    query = select(OutboundMessage).order_by(OutboundMessage.created_at.desc()).limit(limit)
    return list(await session.scalars(query))


async def latest_by_reference(session: AsyncSession, purpose: str, references: list[str]) -> dict[str, OutboundMessage]:
    """The newest message of ``purpose`` for each reference (an invitation's delivery status, …)."""
    if not references:
        return {}
    rows = await session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.purpose == purpose, OutboundMessage.reference.in_(references))
        .order_by(OutboundMessage.created_at)
    )
    return {row.reference: row for row in rows}


class EmailDelivery:
    """Delivers queued messages (worker side; acts for every store)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    async def deliver(self, message_id: uuid.UUID, *, final_attempt: bool = False) -> str:
        """Send one message: "sent", "failed", or what it already was ("sent", "failed", "in_flight", "missing").
        A failed attempt that may be tried again is recorded as ``retrying`` and raises DeliveryDeferred."""
        claimed = await self._claim(message_id)
        if isinstance(claimed, str):
            log.info("email.skipped", message_id=str(message_id), status=claimed)
            return claimed
        envelope, attempts = claimed
        transport = transport_for(self.settings)
        if transport is None:
            await self._finish(message_id, "failed", error=NO_SMTP)
            return "failed"
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await transport.send(envelope.to_email())
        except asyncio.CancelledError:  # the worker is stopping: let the next run try again
            await asyncio.shield(self._finish(message_id, "retrying", error="Interrupted while sending."))
            raise
        except PermanentFailure as exc:
            await self._finish(message_id, "failed", error=str(exc), transport=transport.name)
            return "failed"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            last = final_attempt or attempts >= MAX_ATTEMPTS
            await self._finish(message_id, "failed" if last else "retrying", error=error, transport=transport.name)
            log.warning("email.attempt_failed", message_id=str(message_id), attempts=attempts, error=error, last=last)
            if last:
                return "failed"
            raise DeliveryDeferred(error) from exc
        await self._finish(message_id, "sent", transport=transport.name)
        log.info("email.sent", message_id=str(message_id), transport=transport.name, attempts=attempts)
        return "sent"

    async def _claim(self, message_id: uuid.UUID) -> tuple[Envelope, int] | str:
        """Record the attempt (status ``sending``) before sending; a string says why there is nothing to send."""
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            system_scope(session)
            message = await session.scalar(
                update(OutboundMessage)
                .where(
                    OutboundMessage.id == message_id,
                    or_(
                        OutboundMessage.status.in_(("pending", "retrying")),
                        and_(OutboundMessage.status == "sending", OutboundMessage.updated_at < now - CLAIM_LEASE),
                    ),
                )
                .values(status="sending", attempts=OutboundMessage.attempts + 1, updated_at=now)
                .returning(OutboundMessage)
            )
            if message is None:
                status = await session.scalar(select(OutboundMessage.status).where(OutboundMessage.id == message_id))
                return "missing" if status is None else "in_flight" if status == "sending" else status
            envelope = Envelope(
                message_id=str(message.id),
                sender=self.settings.mail_from,
                to=message.to_address,
                subject=message.subject,
                text=message.text_body,
                html=message.html_body,
            )
            return envelope, message.attempts

    async def _finish(self, message_id: uuid.UUID, status: str, *, error: str = "", transport: str = "") -> None:
        now = datetime.now(UTC)
        values: dict[str, object] = {"status": status, "last_error": _one_line(error, 500), "updated_at": now}
        if transport:
            values["transport"] = transport
        if status == "sent":
            values["sent_at"] = now
        async with self.sessions() as session, session.begin():
            system_scope(session)
            await session.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id == message_id, OutboundMessage.status == "sending")
                .values(**values)
            )

    async def redeliver_stalled(self) -> int:
        """Deliver messages whose job was lost (pending or retrying for long) or whose worker died mid-send."""
        now = datetime.now(UTC)
        async with self.sessions() as session:
            system_scope(session)
            ids = list(
                await session.scalars(
                    select(OutboundMessage.id)
                    .where(
                        or_(
                            and_(OutboundMessage.status == "sending", OutboundMessage.updated_at < now - CLAIM_LEASE),
                            and_(
                                OutboundMessage.status.in_(("pending", "retrying")),
                                OutboundMessage.updated_at < now - STALE_AFTER,
                            ),
                        )
                    )
                    .order_by(OutboundMessage.created_at)
                    .limit(REDELIVER_BATCH)
                )
            )
        delivered = 0
        for message_id in ids:
            try:
                delivered += await self.deliver(message_id) == "sent"
            except DeliveryDeferred:
                continue  # recorded as retrying; the next sweep tries again
        return delivered
