"""Receipts: made from the outbox exactly once (paid order, refund, closed shift), each with its first delivery
by the store's fallback order; staff and the API ask for more deliveries (resend, reprint).

The only writer of receipts, receipt_deliveries, receipt_attempts and receipt_printers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import NotFound, ValidationFailed
from app.core.outbox import emit
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.payments.models import PaymentTransaction
from app.pos.models import PosRefund, Shift
from app.receipts import builders
from app.receipts.channels import Facts, ReceiptChannel
from app.receipts.document import ReceiptDocument
from app.receipts.models import Receipt, ReceiptDelivery, ReceiptPrinter
from app.stores.details import Profile
from app.stores.models import Store

log = structlog.get_logger(__name__)

DELIVERY_QUEUED = "receipt.delivery_queued"  # consumed by the deliver_receipt job (workers/tasks.py)
RECEIPT_ALERT = "receipt.alert"  # a receipt stuck: the board shows it
RECEIPT_ALERT_CLEARED = "receipt.alert_cleared"  # delivered after all: off the board
PAID = frozenset({"paid", "authorized", "partially_paid"})
UNPAID = frozenset({"unpaid", "voided"})
DEFAULT_FALLBACK = {"pos": ("thermal", "whatsapp", "email"), "web": ("email",)}


def fallback_order(store: Store, origin: str) -> tuple[str, ...]:
    """The store's channel order for a receipt from ``origin`` (``settings.receipts.fallback.<origin>``)."""
    configured = ((store.settings or {}).get("receipts") or {}).get("fallback") or {}
    names = configured.get(origin)
    if isinstance(names, list) and names:
        return tuple(str(n) for n in names)
    return DEFAULT_FALLBACK.get(origin, ("email",))


def facts_of(receipt: Receipt) -> Facts:
    return Facts(receipt.store_id, receipt.origin, receipt.email, receipt.phone, receipt.register_id)


async def first_channel(
    channels: Mapping[str, ReceiptChannel], order: tuple[str, ...], facts: Facts, *, after: str | None = None
) -> tuple[str, str] | None:
    """The first channel of ``order`` (after ``after``) that can reach the receipt, with its target."""
    names = list(order)
    if after is not None:
        names = names[names.index(after) + 1 :] if after in names else []
    for name in names:
        channel = channels.get(name)
        if channel is None:
            continue
        target = await channel.target_for(facts)
        if target:
            return name, target
    return None


@dataclass(frozen=True)
class NewReceipt:
    kind: str
    source_key: str
    origin: str
    document: ReceiptDocument
    order_id: uuid.UUID | None = None
    shift_id: uuid.UUID | None = None
    register_id: uuid.UUID | None = None
    email: str = ""
    phone: str = ""


class ReceiptService:
    """One store's receipts (the session is bound to it)."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        bind_store(session, store_id)
        self.session = session
        self.store_id = store_id

    async def create(self, new: NewReceipt, channels: Mapping[str, ReceiptChannel], store: Store) -> Receipt | None:
        """Insert the receipt once (None when its source already has one) and queue its first delivery."""
        inserted = await self.session.scalar(
            insert(Receipt)
            .values(
                id=uuid.uuid4(),
                store_id=self.store_id,
                kind=new.kind,
                source_key=new.source_key,
                origin=new.origin,
                order_id=new.order_id,
                shift_id=new.shift_id,
                register_id=new.register_id,
                content=new.document.as_json(),
                email=new.email,
                phone=new.phone,
                alert_reason="",
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["store_id", "source_key"])
            .returning(Receipt.id)
        )
        if inserted is None:
            return None
        receipt = await self.get(inserted)
        chosen = await first_channel(channels, fallback_order(store, new.origin), facts_of(receipt))
        if chosen is not None:
            self._queue(receipt, *chosen, requested_by="system", fallback=True)
        log.info("receipt.created", receipt_id=str(receipt.id), kind=new.kind, channel=chosen[0] if chosen else None)
        return receipt

    def _queue(
        self, receipt: Receipt, channel: str, target: str, *, requested_by: str, fallback: bool
    ) -> ReceiptDelivery:
        delivery = ReceiptDelivery(
            id=uuid.uuid4(),
            receipt_id=receipt.id,
            channel=channel,
            target=target,
            status="pending",
            attempts=0,
            last_error="",
            external_ref="",
            provider_status="",
            requested_by=requested_by,
            fallback=fallback,
        )
        self.session.add(delivery)
        emit(self.session, DELIVERY_QUEUED, aggregate_type="receipt", aggregate_id=delivery.id,
             payload={"receipt_id": str(receipt.id), "channel": channel})  # fmt: skip
        return delivery

    async def get(self, receipt_id: uuid.UUID) -> Receipt:
        receipt = await self.session.scalar(select(Receipt).where(Receipt.id == receipt_id))
        if receipt is None:
            raise NotFound("We could not find that receipt.")
        return receipt

    async def for_order(self, order_id: uuid.UUID) -> list[Receipt]:
        rows = await self.session.scalars(
            select(Receipt).where(Receipt.order_id == order_id).order_by(Receipt.created_at)
        )
        return list(rows)

    async def request(
        self,
        receipt_id: uuid.UUID,
        channel: str,
        channels: Mapping[str, ReceiptChannel],
        *,
        requested_by: str,
        target: str = "",
    ) -> ReceiptDelivery:
        """Staff or the API ask for a delivery on one channel (resend, reprint): no fallback from it."""
        if channel not in channels:
            known = ", ".join(sorted(channels))
            raise ValidationFailed("Choose a receipt channel.", fields={"channel": f"One of: {known}."})
        receipt = await self.get(receipt_id)
        facts = facts_of(receipt)
        target = target.strip()
        if target and channel == "email":
            if "@" not in target or any(c.isspace() for c in target) or len(target) > 254:
                raise ValidationFailed(
                    "Enter a valid e-mail address.", fields={"target": "Enter a valid e-mail address."}
                )
        elif target:
            raise ValidationFailed(
                "Only an e-mail receipt goes to an address you type.", fields={"target": "Leave empty."}
            )
        target = target or await channels[channel].target_for(facts) or ""
        if not target:
            reason = {
                "thermal": "No receipt printer is set up for this register.",
                "email": "This order has no e-mail address.",
                "whatsapp": "This order has no phone number.",
            }.get(channel, "This channel cannot reach this receipt.")
            raise ValidationFailed(reason, fields={"channel": reason})
        return self._queue(receipt, channel, target, requested_by=requested_by, fallback=False)

    async def stuck(self, limit: int = 20) -> list[Receipt]:
        """Receipts with an open alert (the board)."""
        rows = await self.session.scalars(
            select(Receipt).where(Receipt.alerted_at.is_not(None)).order_by(Receipt.alerted_at.desc()).limit(limit)
        )
        return list(rows)

    async def printer_of(self, register_id: uuid.UUID) -> ReceiptPrinter | None:
        printer: ReceiptPrinter | None = await self.session.scalar(
            select(ReceiptPrinter).where(ReceiptPrinter.register_id == register_id)
        )
        return printer

    async def set_printer(self, register_id: uuid.UUID, host: str, port: str, paper: str) -> ReceiptPrinter | None:
        """Save (or, with an empty host, remove) a register's printer; ValidationFailed names each bad field."""
        host = host.strip()
        existing = await self.printer_of(register_id)
        if not host:
            if existing is not None:
                await self.session.delete(existing)
            return None
        fields: dict[str, str] = {}
        if len(host) > 255 or any(c.isspace() or c in "/:@" for c in host):
            fields["host"] = "A host name or IP address (no scheme, no port)."
        port_number = int(port) if port.strip().isdigit() else 0
        if not 1 <= port_number <= 65535:
            fields["port"] = "A port from 1 to 65535 (9100 for most printers)."
        if paper not in ("58", "80"):
            fields["paper"] = "58 or 80 (mm)."
        if fields:
            raise ValidationFailed("Check the printer.", fields=fields)
        printer = existing or ReceiptPrinter(register_id=register_id)
        printer.host, printer.port, printer.paper_mm = host, port_number, int(paper)
        self.session.add(printer)
        await self.session.flush()
        return printer


# ---- made from outbox events ---------------------------------------------------------------------------------


async def receipts_for_event(session: AsyncSession, event: dict[str, Any]) -> list[NewReceipt]:
    """What receipts an outbox event calls for (the session is bound to the event's store)."""
    store_id = uuid.UUID(event["store_id"])
    store = await session.get(Store, store_id)
    if store is None:
        return []
    payload = event.get("payload") or {}
    kind = event.get("type")
    if kind == "pos.shift_closed":
        shift = await session.scalar(select(Shift).where(Shift.id == uuid.UUID(event["aggregate_id"])))
        if shift is None or shift.closed_at is None:
            return []
        doc = await builders.shift_document(session, store, shift)
        return [NewReceipt("shift", f"shift:{shift.id}", "pos", doc, shift_id=shift.id, register_id=shift.register_id,
                           email=Profile.of(store.settings or {}).email)]  # fmt: skip
    if event.get("aggregate_type") != "order":
        return []
    order = await session.scalar(select(Order).where(Order.id == uuid.UUID(event["aggregate_id"])))
    if order is None:
        return []
    register_id = await builders.register_of_order(session, order.id) if order.channel == "pos" else None
    origin = "pos" if order.channel == "pos" else "web"

    def new(kind: str, key: str, doc: ReceiptDocument) -> NewReceipt:
        return NewReceipt(kind, key, origin, doc, order_id=order.id, register_id=register_id, email=order.email,
                          phone=order.phone)  # fmt: skip

    if kind == "order.payment_changed" and payload.get("operation") == "refund":
        if payload.get("source") == "pos":
            refunds = await session.scalars(
                select(PosRefund).where(PosRefund.order_id == order.id, PosRefund.status == "done")
            )
            return [
                new("refund", f"refund:{r.id}", await builders.pos_refund_document(session, store, order, r))
                for r in refunds
            ]
        tx_id = payload.get("transaction_id")
        tx = (
            await session.scalar(select(PaymentTransaction).where(PaymentTransaction.id == uuid.UUID(tx_id)))
            if tx_id
            else None
        )
        key = f"refund:{tx_id or event.get('id')}"
        amount = int(payload.get("amount_minor") or (tx.amount_minor if tx else 0))
        if amount <= 0:
            return []
        return [new("refund", key, await builders.web_refund_document(session, store, order, tx, amount))]
    # Paid when placed, or paid later: a status past "paid" (refunded meanwhile, ...) was paid first.
    paid_at_placing = kind == "order.placed" and order.payment_status not in UNPAID
    paid_later = kind == "order.payment_changed" and payload.get("to") in PAID and payload.get("from") in UNPAID
    if paid_at_placing or paid_later:
        return [new("sale", f"sale:{order.id}", await builders.sale_document(session, store, order))]
    return []


async def create_from_event(
    sessions: async_sessionmaker[AsyncSession], event: dict[str, Any], channels: Mapping[str, ReceiptChannel]
) -> int:
    """Make the receipts an event calls for, each once (a repeated event finds them made). Returns how many."""
    store_id = uuid.UUID(event["store_id"])
    made = 0
    async with sessions() as session, session.begin():
        service = ReceiptService(session, store_id)
        store = await session.get(Store, store_id)
        if store is None:
            return 0
        for new in await receipts_for_event(session, event):
            made += await service.create(new, channels, store) is not None
    return made


async def ensure_sale_receipt(
    session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID, channels: Mapping[str, ReceiptChannel]
) -> Receipt | None:
    """The order's sale receipt, made now if its job has not run yet (the same unique source key: made once)."""
    service = ReceiptService(session, store_id)
    existing = [r for r in await service.for_order(order_id) if r.kind == "sale"]
    if existing:
        return existing[0]
    event = {
        "type": "order.placed",
        "store_id": str(store_id),
        "aggregate_type": "order",
        "aggregate_id": str(order_id),
    }
    store = await session.get(Store, store_id)
    if store is None:
        return None
    for new in await receipts_for_event(session, event):
        await service.create(new, channels, store)
    await session.flush()
    made = [r for r in await service.for_order(order_id) if r.kind == "sale"]
    return made[0] if made else None
