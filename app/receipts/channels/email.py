"""E-mail: an HTML + text receipt through the notifications service (``queue_email``, then its EmailDelivery:
SMTP when SMTP_URL is set, else the dev outbox folder listed at /staff/outbox). No second transport."""

from __future__ import annotations

import functools
import uuid

from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.templating import make_environment
from app.core.tenancy import bind_store
from app.notifications.models import OutboundMessage
from app.notifications.services import DeliveryDeferred, EmailDelivery, queue_email
from app.receipts.channels import ChannelError, Facts, Outgoing
from app.receipts.document import ReceiptDocument

PURPOSE = "receipt"


@functools.cache
def _templates() -> Environment:
    return make_environment()


def render_receipt_email(doc: ReceiptDocument, link: str) -> tuple[str, str, str]:
    """(subject, text, html)."""
    env = _templates()
    context = {"doc": doc, "link": link}
    subject = f"{doc.title} {doc.display_number} · {doc.reference} · {doc.store_name}"
    text = env.get_template("receipts/email.txt").render(**context)
    return subject, text, env.get_template("receipts/email.html").render(**context)


class EmailChannel:
    name = "email"
    label = "E-mail"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    async def target_for(self, facts: Facts) -> str | None:
        return facts.email or None

    async def send(self, outgoing: Outgoing) -> str:
        message_id = await self._message(outgoing)
        try:
            outcome = await EmailDelivery(self.sessions, self.settings).deliver(message_id)
        except DeliveryDeferred as exc:
            raise ChannelError(str(exc), external_ref=str(message_id)) from exc
        if outcome == "sent":
            return str(message_id)
        if outcome == "in_flight":  # the mail job is sending it right now: look again on the next attempt
            raise ChannelError("The e-mail is being sent by the mail job.", external_ref=str(message_id))
        async with self.sessions() as session:
            bind_store(session, outgoing.store_id)
            error = await session.scalar(select(OutboundMessage.last_error).where(OutboundMessage.id == message_id))
        raise ChannelError(error or f"E-mail {outcome}.", permanent=True, external_ref=str(message_id))

    async def _message(self, outgoing: Outgoing) -> uuid.UUID:
        """The delivery's message: queued once (its first attempt), found again by the next ones."""
        if outgoing.external_ref:
            return uuid.UUID(outgoing.external_ref)
        subject, text, html = render_receipt_email(outgoing.document, outgoing.link)
        async with self.sessions() as session, session.begin():
            bind_store(session, outgoing.store_id)
            message = await queue_email(
                session,
                to=outgoing.target,
                subject=subject,
                text=text,
                html=html,
                purpose=PURPOSE,
                reference=str(outgoing.delivery_id),
            )
            return message.id
