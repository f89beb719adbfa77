"""API shapes for payments."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

import msgspec

from app.payments.listing import PaymentRow, StatusTotal


class PaymentOut(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID | None
    order_number: int | None
    email: str | None
    created_at: datetime
    provider: str
    status: str  # the intent's own status
    payment_status: str  # the order payment axis this intent amounts to
    card_brand: str
    card_last4: str
    currency: str
    amount_minor: int  # asked for
    authorised_minor: int  # 0 when never authorised (declined, failed, waiting for 3-D Secure)
    captured_minor: int
    refunded_minor: int
    processing_fee_minor: int
    application_fee_minor: int

    @classmethod
    def of(cls, row: PaymentRow) -> PaymentOut:
        return cls(**dataclasses.asdict(row))


class StatusTotalOut(msgspec.Struct):
    status: str
    currency: str
    count: int
    authorised_minor: int
    captured_minor: int
    refunded_minor: int
    fees_minor: int  # processing + application fees

    @classmethod
    def of(cls, total: StatusTotal) -> StatusTotalOut:
        return cls(**dataclasses.asdict(total))


class PaymentPage(msgspec.Struct):
    items: list[PaymentOut]
    next_cursor: str | None  # pass as ?cursor= for the next page; None on the last page
    totals: list[StatusTotalOut]  # by status and currency, over every payment the filters keep (not this page)
