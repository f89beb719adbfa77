"""API shapes for receipts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from app.receipts.models import Receipt, ReceiptDelivery


class ReceiptRequestIn(msgspec.Struct):
    channel: str  # email | thermal | whatsapp
    receipt_id: uuid.UUID | None = None  # default: the order's sale receipt
    target: str = ""  # e-mail only: another address


class AttemptOut(msgspec.Struct):
    number: int
    outcome: str
    error: str
    started_at: datetime
    finished_at: datetime | None


class DeliveryOut(msgspec.Struct):
    id: uuid.UUID
    channel: str
    target: str
    status: str
    attempts: int
    last_error: str
    provider_status: str
    requested_by: str
    created_at: datetime
    sent_at: datetime | None
    history: list[AttemptOut]

    @classmethod
    def of(cls, delivery: ReceiptDelivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            channel=delivery.channel,
            target=delivery.target,
            status=delivery.status,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            provider_status=delivery.provider_status,
            requested_by=delivery.requested_by,
            created_at=delivery.created_at,
            sent_at=delivery.sent_at,
            history=[AttemptOut(a.number, a.outcome, a.error, a.created_at, a.finished_at) for a in delivery.history],
        )


class ReceiptOut(msgspec.Struct):
    id: uuid.UUID
    number: str
    kind: str
    order_id: uuid.UUID | None
    created_at: datetime
    total_minor: int
    currency: str
    pdf_url: str  # a signed link that works without an account, until it expires
    alert: str
    deliveries: list[DeliveryOut]
    content: dict[str, Any]

    @classmethod
    def of(cls, receipt: Receipt, pdf_url: str) -> ReceiptOut:
        from app.receipts.document import ReceiptDocument

        doc = ReceiptDocument.from_json(receipt.content, number=receipt.number)
        return cls(
            id=receipt.id,
            number=doc.display_number,
            kind=receipt.kind,
            order_id=receipt.order_id,
            created_at=receipt.created_at,
            total_minor=doc.total_minor,
            currency=doc.currency,
            pdf_url=pdf_url,
            alert=receipt.alert_reason if receipt.alerted_at else "",
            deliveries=[DeliveryOut.of(d) for d in receipt.deliveries],
            content=receipt.content,
        )
