"""The POS API's request bodies (docs/pos.md, "The POS API"), decoded with msgspec; a body that is not one is a 422
naming the field by its path (``lines.0.quantity``), as the rest of the contract's refusals are."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec

from app.core.errors import ValidationFailed

__all__ = [
    "CashMovementIn",
    "CloseShiftIn",
    "OpenShiftIn",
    "PriceIn",
    "PriceLineIn",
    "RefundIn",
    "RefundLineIn",
    "SaleIn",
    "SaleLineIn",
    "SyncEntryIn",
    "SyncIn",
    "TenderIn",
    "VoidIn",
    "VoidLineIn",
    "convert",
    "decode",
]

T = TypeVar("T")
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
Note = Annotated[str, msgspec.Meta(max_length=200)]


class OpenShiftIn(msgspec.Struct):
    register_id: uuid.UUID
    opening_float_minor: int


class CashMovementIn(msgspec.Struct):
    kind: str
    amount_minor: int
    reason: str = ""


class CloseShiftIn(msgspec.Struct):
    counted_cash_minor: int
    note: str = ""


class PriceLineIn(msgspec.Struct):
    variant_id: uuid.UUID
    quantity: int
    discount_minor: int = 0


Code = Annotated[str, msgspec.Meta(max_length=64)]


class PriceIn(msgspec.Struct):
    lines: list[PriceLineIn]
    ticket_discount_minor: int = 0
    promotion_code: Code | None = None
    customer_id: uuid.UUID | None = None


class SaleLineIn(msgspec.Struct):
    variant_id: uuid.UUID
    quantity: int
    unit_price_minor: int
    discount_minor: int = 0
    promotion_minor: int = 0  # the promotions' part of the line, as POST /pos/api/price gave it
    note: Note = ""


class TenderIn(msgspec.Struct):
    kind: str  # cash | card | gift_card | store_credit | loyalty (the sale's customer's)
    amount_minor: int
    tendered_minor: int | None = None
    reader_payment_id: uuid.UUID | None = None
    code: str | None = None  # a gift card's code


class SaleIn(msgspec.Struct):
    client_sale_id: uuid.UUID
    register_id: uuid.UUID
    shift_id: uuid.UUID
    sequence: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
    sold_at: AwareTime
    lines: list[SaleLineIn]
    total_minor: int
    offline: bool = False
    ticket_discount_minor: int = 0
    manager_pin: str | None = None
    customer_id: uuid.UUID | None = None
    promotion_code: Code | None = None
    tenders: list[TenderIn] = msgspec.field(default_factory=list)


class SyncEntryIn(msgspec.Struct):
    """One queued sale. ``sale`` stays as the tablet sent it: its checksum is over its canonical JSON."""

    client_sale_id: uuid.UUID
    sequence: int
    sold_at: AwareTime
    sale: dict[str, Any]
    checksum: str


class SyncIn(msgspec.Struct):
    register_id: uuid.UUID
    shift_id: uuid.UUID
    entries: list[Any]  # each decoded on its own: one bad entry does not refuse the others


class VoidLineIn(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=200)]
    quantity: int
    amount_minor: int
    variant_id: uuid.UUID | None = None


class VoidIn(msgspec.Struct):
    """A ticket or a line voided on the tablet (app/pos/voids.py)."""

    client_void_id: uuid.UUID
    register_id: uuid.UUID
    shift_id: uuid.UUID
    kind: str
    reason: str
    voided_at: AwareTime
    lines: list[VoidLineIn]


class RefundLineIn(msgspec.Struct):
    variant_id: uuid.UUID
    quantity: int


class RefundIn(msgspec.Struct):
    order_number: int
    register_id: uuid.UUID
    shift_id: uuid.UUID
    reason: str
    to: str = "original"
    lines: list[RefundLineIn] | None = None
    amount_minor: int | None = None
    manager_pin: str | None = None


_AT = re.compile(r" - at `\$(.*)`$")


def _path(where: str) -> str:
    """msgspec's ``$.lines[0].quantity`` as the contract names fields: ``lines.0.quantity``."""
    return re.sub(r"\[(\d+)\]", r".\1", where).lstrip(".") or "body"


def _invalid(exc: msgspec.ValidationError) -> ValidationFailed:
    message = str(exc)
    match = _AT.search(message)
    where = _path(match.group(1)) if match else "body"
    text = message[: match.start()] if match else message
    missing = re.match(r"Object missing required field `(\w+)`", text)
    if missing:
        where = f"{where}.{missing.group(1)}" if where != "body" else missing.group(1)
        text = "Required."
    return ValidationFailed("The request is not right; nothing was written.", fields={where: text.replace("`", "")})


def decode(raw: bytes, kind: type[T]) -> T:
    """The body as ``kind``, or ValidationFailed naming the field that is wrong."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except msgspec.DecodeError:
        raise ValidationFailed("The body is not JSON.", fields={"body": "Send a JSON object."}) from None


def convert(value: Any, kind: type[T]) -> T:
    """A decoded JSON value as ``kind`` (strings become uuids and times), or ValidationFailed naming the field."""
    try:
        return msgspec.convert(value, type=kind)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
