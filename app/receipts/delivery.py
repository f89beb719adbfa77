"""Delivering one receipt on one channel (worker side; acts for every store).

Record before send, reconcile after: an attempt moves the delivery to ``sending`` and writes its attempt row in
its own short transaction, commits, then calls the channel, then records the outcome only if that attempt is
still the delivery's current one. Only the run that claimed the delivery sends, so a retry racing a slow
attempt (or a late success) never prints twice; a delivery ``sent`` is never sent again. The claim lasts
``CLAIM_LEASE`` (longer than any send may take), after which a worker that died mid-send is presumed gone.

A failed attempt is ``retrying`` and raises DeliveryDeferred (SAQ runs the job again with exponential backoff,
``MAX_ATTEMPTS`` in all). The last failure marks it ``failed`` and queues the next channel of the store's fallback
order (system deliveries only). Three attempts without success, or every channel failed, raise an alert on the
board. While the store's RECEIPTS_PAUSED kill switch is engaged nothing is sent: deliveries stay pending and the
sweep sends them after the release.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core import kill_switches
from app.core.outbox import emit
from app.core.tenancy import bind_store, system_scope
from app.receipts.channels import ChannelError, Outgoing, ReceiptChannel
from app.receipts.document import ReceiptDocument
from app.receipts.links import signed_path
from app.receipts.models import Receipt, ReceiptAttempt, ReceiptDelivery
from app.receipts.services import (
    RECEIPT_ALERT,
    RECEIPT_ALERT_CLEARED,
    ReceiptService,
    facts_of,
    fallback_order,
    first_channel,
)
from app.stores.models import Store

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5  # the relay enqueues consumers with retries=5 (SAQ: attempts in all), with exponential backoff
ALERT_AFTER = 3  # attempts without success before the board shows the receipt
SEND_TIMEOUT_S = 9.0  # below SAQ's 10 s job timeout: a slow channel is a recorded failure
CLAIM_LEASE = timedelta(minutes=1)  # far longer than a send may take (SEND_TIMEOUT_S)
STALE_AFTER = timedelta(minutes=2)  # pending/retrying this long: its job was lost (or receipts were paused)
SWEEP_BATCH = 20


class DeliveryDeferred(Exception):
    """The attempt failed and was recorded as ``retrying``: raised so that SAQ runs the job again later."""


def _one_line(text: str, limit: int = 500) -> str:
    return " ".join(text.split())[:limit]


async def receipts_paused(session: AsyncSession, store_id: uuid.UUID) -> bool:
    """The RECEIPTS_PAUSED kill switch, for this store or every store (app/core/kill_switches.py)."""
    return await kill_switches.is_engaged(session, kill_switches.Switch.RECEIPTS_PAUSED, store_id)


class ReceiptDeliveries:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        channels: Mapping[str, ReceiptChannel],
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.channels = channels

    def link(self, receipt_id: uuid.UUID) -> str:
        return self.settings.public_url.rstrip("/") + signed_path(self.settings.secret_key, receipt_id)

    async def deliver(self, delivery_id: uuid.UUID, *, final_attempt: bool = False) -> str:
        """ "sent", "failed", "paused", or what it already was ("sent", "failed", "in_flight", "missing").
        A failed attempt that may be tried again is recorded as ``retrying`` and raises DeliveryDeferred."""
        claimed = await self._claim(delivery_id)
        if isinstance(claimed, str):
            log.info("receipt.delivery_skipped", delivery_id=str(delivery_id), status=claimed)
            return claimed
        outgoing, channel_name = claimed
        channel = self.channels.get(channel_name)
        try:
            if channel is None:
                raise ChannelError(f"The {channel_name} channel is not configured here.", permanent=True)
            async with asyncio.timeout(SEND_TIMEOUT_S):
                reference = await channel.send(outgoing)
        except asyncio.CancelledError:  # the worker is stopping: the next run tries again
            await asyncio.shield(self._finish(outgoing, "retrying", error="Interrupted while sending."))
            raise
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            if not isinstance(exc, ChannelError):
                error = f"{type(exc).__name__}: {error}"
            if isinstance(exc, TimeoutError):
                error = f"No answer within {SEND_TIMEOUT_S:g} s."
            permanent = isinstance(exc, ChannelError) and exc.permanent
            last = permanent or final_attempt or outgoing.attempt >= MAX_ATTEMPTS
            ref = exc.external_ref if isinstance(exc, ChannelError) else ""
            await self._finish(outgoing, "failed" if last else "retrying", error=error, external_ref=ref)
            log.warning("receipt.attempt_failed", delivery_id=str(delivery_id), attempt=outgoing.attempt, error=error)
            if last:
                return "failed"
            raise DeliveryDeferred(error) from exc
        await self._finish(outgoing, "sent", external_ref=reference)
        log.info("receipt.sent", delivery_id=str(delivery_id), channel=channel_name, attempt=outgoing.attempt)
        return "sent"

    async def _claim(self, delivery_id: uuid.UUID) -> tuple[Outgoing, str] | str:
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            system_scope(session)
            current = await session.scalar(select(ReceiptDelivery).where(ReceiptDelivery.id == delivery_id))
            if current is None:
                return "missing"
            if await receipts_paused(session, current.store_id):
                return "paused"
            delivery = await session.scalar(
                update(ReceiptDelivery)
                .where(
                    ReceiptDelivery.id == delivery_id,
                    or_(
                        ReceiptDelivery.status.in_(("pending", "retrying")),
                        and_(ReceiptDelivery.status == "sending", ReceiptDelivery.updated_at < now - CLAIM_LEASE),
                    ),
                )
                .values(status="sending", attempts=ReceiptDelivery.attempts + 1, updated_at=now)
                .returning(ReceiptDelivery)
                .execution_options(populate_existing=True)
            )
            if delivery is None:
                status = current.status
                return "in_flight" if status == "sending" else status
            # An attempt left "sending" by a worker that died is superseded by this one.
            await session.execute(
                update(ReceiptAttempt)
                .where(ReceiptAttempt.delivery_id == delivery_id, ReceiptAttempt.outcome == "sending")
                .values(outcome="superseded", finished_at=now, error="Presumed lost (the worker stopped).")
            )
            session.add(ReceiptAttempt(store_id=delivery.store_id, delivery_id=delivery_id, number=delivery.attempts))
            receipt = await session.scalar(select(Receipt).where(Receipt.id == delivery.receipt_id))
            assert receipt is not None
            document = ReceiptDocument.from_json(receipt.content, number=receipt.number)
            outgoing = Outgoing(
                store_id=delivery.store_id,
                receipt_id=receipt.id,
                delivery_id=delivery.id,
                document=document,
                target=delivery.target,
                link=self.link(receipt.id),
                attempt=delivery.attempts,
                external_ref=delivery.external_ref,
            )
            return outgoing, delivery.channel

    async def _finish(self, outgoing: Outgoing, status: str, *, error: str = "", external_ref: str = "") -> None:
        """Record the outcome if this attempt is still the current one (else only on its attempt row)."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status, "last_error": _one_line(error), "updated_at": now}
        if external_ref:
            values["external_ref"] = external_ref
        if status == "sent":
            values["sent_at"] = now
        async with self.sessions() as session, session.begin():
            bind_store(session, outgoing.store_id)
            delivery = await session.scalar(
                update(ReceiptDelivery)
                .where(
                    ReceiptDelivery.id == outgoing.delivery_id,
                    ReceiptDelivery.status == "sending",
                    ReceiptDelivery.attempts == outgoing.attempt,
                )
                .values(**values)
                .returning(ReceiptDelivery)
                .execution_options(populate_existing=True)
            )
            outcome = "sent" if status == "sent" else "failed"
            if delivery is None:  # a later attempt took over meanwhile: keep what this one did, change nothing else
                outcome = "late_sent" if status == "sent" else "superseded"
            await session.execute(
                update(ReceiptAttempt)
                .where(ReceiptAttempt.delivery_id == outgoing.delivery_id, ReceiptAttempt.number == outgoing.attempt)
                .values(outcome=outcome, error=_one_line(error), finished_at=now)
            )
            if delivery is None:
                return
            receipt = await session.scalar(select(Receipt).where(Receipt.id == delivery.receipt_id))
            assert receipt is not None
            if status == "sent":
                if receipt.alerted_at is not None:  # the board takes it off (live, app/receipts/board.py)
                    emit(session, RECEIPT_ALERT_CLEARED, aggregate_type="receipt", aggregate_id=receipt.id,
                         store_id=receipt.store_id, payload={"number": receipt.number})  # fmt: skip
                receipt.alerted_at, receipt.alert_reason = None, ""
                return
            label = self._label(delivery.channel)
            if delivery.attempts >= ALERT_AFTER and status == "retrying":
                self._alert(session, receipt, f"{label}: {delivery.attempts} attempts failed ({_one_line(error, 120)})")
            if status == "failed":
                await self._fall_back(session, receipt, delivery, error)

    def _label(self, name: str) -> str:
        channel = self.channels.get(name)
        return channel.label if channel is not None else name

    async def _fall_back(self, session: AsyncSession, receipt: Receipt, delivery: ReceiptDelivery, error: str) -> None:
        """The next channel of the store's order; none left (or a staff request): the board hears of it."""
        if delivery.fallback:
            store = await session.get(Store, receipt.store_id)
            assert store is not None
            order = fallback_order(store, receipt.origin)
            chosen = await first_channel(self.channels, order, facts_of(receipt), after=delivery.channel)
            if chosen is not None:
                ReceiptService(session, receipt.store_id)._queue(
                    receipt, *chosen, requested_by="fallback", fallback=True
                )
                log.info("receipt.fallback", receipt_id=str(receipt.id), from_channel=delivery.channel, to=chosen[0])
                return
            self._alert(
                session,
                receipt,
                f"Every channel failed; last: {self._label(delivery.channel)}: {_one_line(error, 120)}",
            )
            return
        self._alert(session, receipt, f"{self._label(delivery.channel)} failed: {_one_line(error, 120)}")

    def _alert(self, session: AsyncSession, receipt: Receipt, reason: str) -> None:
        first = receipt.alerted_at is None
        receipt.alerted_at = receipt.alerted_at or datetime.now(UTC)
        receipt.alert_reason = _one_line(reason, 300)
        if first:
            emit(session, RECEIPT_ALERT, aggregate_type="receipt", aggregate_id=receipt.id, store_id=receipt.store_id,
                 payload={"number": receipt.number, "reason": receipt.alert_reason,
                          "order_id": str(receipt.order_id) if receipt.order_id else None})  # fmt: skip
        log.warning("receipt.alert", receipt_id=str(receipt.id), reason=reason)

    async def sweep(self) -> int:
        """Deliver what waits too long: a lost job, a worker that died mid-send, or a pause just released."""
        now = datetime.now(UTC)
        async with self.sessions() as session:
            system_scope(session)
            ids = list(
                await session.scalars(
                    select(ReceiptDelivery.id)
                    .where(
                        or_(
                            and_(ReceiptDelivery.status == "sending", ReceiptDelivery.updated_at < now - CLAIM_LEASE),
                            and_(
                                ReceiptDelivery.status.in_(("pending", "retrying")),
                                ReceiptDelivery.updated_at < now - STALE_AFTER,
                            ),
                        )
                    )
                    .order_by(ReceiptDelivery.created_at)
                    .limit(SWEEP_BATCH)
                )
            )
        sent = 0
        for delivery_id in ids:
            try:
                sent += await self.deliver(delivery_id) == "sent"
            except DeliveryDeferred:
                continue
        return sent

    async def provider_status(self, message_id: str, status: str, error: str = "") -> tuple[str, uuid.UUID | None]:
        """A channel's later word on a sent message (WhatsApp: sent, delivered, read, failed), taken once per
        (message, status): "recorded", "duplicate", "unknown status" or "unknown message", with the delivery's
        store (None when unknown). A failure fails the delivery and falls back."""
        from sqlalchemy.dialects.postgresql import insert

        from app.receipts.channels.whatsapp import STATUS_RANK
        from app.receipts.models import WhatsAppStatusEvent

        if status not in STATUS_RANK:
            return "unknown status", None
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            system_scope(session)
            delivery = await session.scalar(
                select(ReceiptDelivery)
                .where(ReceiptDelivery.channel == "whatsapp", ReceiptDelivery.external_ref == message_id)
                .with_for_update()
            )
            if delivery is None:
                return "unknown message", None
            inserted = await session.scalar(
                insert(WhatsAppStatusEvent)
                .values(
                    id=uuid.uuid4(),
                    store_id=delivery.store_id,
                    message_id=message_id,
                    status=status,
                    delivery_id=delivery.id,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["message_id", "status"])
                .returning(WhatsAppStatusEvent.id)
            )
            if inserted is None:
                return "duplicate", delivery.store_id
            if STATUS_RANK[status] > STATUS_RANK.get(delivery.provider_status, 0):
                delivery.provider_status = status  # out of order: "read" is never taken back by a late "delivered"
            if status == "failed" and delivery.status == "sent":
                delivery.status, delivery.last_error = "failed", _one_line(error or "WhatsApp could not deliver it.")
                delivery.updated_at = now
                receipt = await session.scalar(select(Receipt).where(Receipt.id == delivery.receipt_id))
                assert receipt is not None
                await self._fall_back(session, receipt, delivery, delivery.last_error)
            store_id = delivery.store_id
        return "recorded", store_id
