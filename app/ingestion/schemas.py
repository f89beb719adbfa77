"""The body of POST /webhooks/orders/ingest, checked field by field (every problem at once, named by path).

```json
{
  "client_order_id": "pos-7-000123",
  "store": "corner-cafe",
  "customer": {"email": "ann@example.com", "name": "Ann", "phone": ""},
  "items": [{"sku": "BEAN-1", "quantity": 2, "unit_price_minor": 1190}],
  "totals": {"currency": "EUR", "subtotal_minor": 2380, "shipping_minor": 0, "tax_minor": 156, "total_minor": 2380},
  "payment": {"status": "paid"},
  "fulfilment_method": "pickup"
}
```

Money is integer minor units; a float, a string or a boolean where a whole number belongs is refused.
``payment`` (default unpaid) and ``fulfilment_method`` (default pickup) are optional; shipping and local
delivery need an ``address``. ``promotion_code`` (optional) names a code of the store's promotions: it is
validated like a shopper's (a code that does not apply is refused, naming it) and its discount is in the
totals (``totals.discount_minor``, optional, is checked when sent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.errors import ValidationFailed
from app.customers.services import EMAIL
from app.orders.states import METHODS
from app.shipping.addresses import Address, parse_address

MAX_ITEMS = 200
MAX_QUANTITY = 10_000
MAX_MINOR = 2**31 - 1  # the order columns are 32-bit integers
PAYMENT_STATUSES = ("paid", "unpaid")  # paid: the channel took the money; Till holds no payment for it
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,99}$")
REQUIRED = ("client_order_id", "store", "customer", "items", "totals")


@dataclass(frozen=True)
class IngestItem:
    sku: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True)
class IngestCustomer:
    email: str
    name: str
    phone: str


@dataclass(frozen=True)
class IngestTotals:
    currency: str
    subtotal_minor: int
    shipping_minor: int
    tax_minor: int
    total_minor: int
    discount_minor: int | None = None  # None: not sent (the total is still checked with the code's discount)


@dataclass(frozen=True)
class IngestOrder:
    client_order_id: str
    store: str
    customer: IngestCustomer
    items: tuple[IngestItem, ...]
    totals: IngestTotals
    payment_status: str
    fulfilment_method: str
    address: Address | None
    promotion_code: str = ""


def _whole(value: Any, *, low: int, high: int = MAX_MINOR) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _text(value: Any, *, limit: int) -> str | None:
    return value.strip() if isinstance(value, str) and len(value.strip()) <= limit else None


class _Check:
    """Collects field errors by path (``items[1].quantity``)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def fail(self, path: str, message: str) -> None:
        self.fields.setdefault(path, message)

    def whole(self, raw: Mapping[str, Any], key: str, path: str, *, low: int = 0, default: int | None = None) -> int:
        if key not in raw and default is not None:
            return default
        top = MAX_QUANTITY if key == "quantity" else MAX_MINOR
        value = _whole(raw.get(key), low=low, high=top)
        if value is None:
            self.fail(
                path,
                f"Required: a whole number from {low} to {top}."
                if key not in raw
                else f"A whole number from {low} to {top}{'' if key == 'quantity' else ' (minor units)'}.",
            )
            return 0
        return value

    def obj(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(path, "Required: an object." if value is None else "Must be an object.")
            return {}
        return value


def parse_order(payload: Any) -> IngestOrder:
    """The checked order, or ``ValidationFailed`` whose ``fields`` name every bad field by its path."""
    check = _Check()
    if not isinstance(payload, Mapping):
        raise ValidationFailed("The body must be a JSON object.", fields={"body": "Send a JSON object."})
    for required in REQUIRED:
        if payload.get(required) in (None, "", [], {}):
            check.fail(required, "Required.")

    client_order_id = payload.get("client_order_id")
    if "client_order_id" not in check.fields and not (
        isinstance(client_order_id, str) and _CLIENT_ID.match(client_order_id)
    ):
        check.fail("client_order_id", "Up to 100 letters, digits and . _ : / # -, starting with a letter or digit.")
    store = _text(payload.get("store"), limit=63)
    if "store" not in check.fields and not store:
        check.fail("store", "The store's address (slug) or id, as text.")

    customer_raw = check.obj(payload.get("customer"), "customer") if "customer" not in check.fields else {}
    email = (_text(customer_raw.get("email"), limit=254) or "").lower()
    if customer_raw and not EMAIL.match(email):
        check.fail("customer.email", "A valid e-mail address.")
    name = _text(customer_raw.get("name", ""), limit=120)
    if name is None:
        check.fail("customer.name", "Text, at most 120 characters.")
    phone = _text(customer_raw.get("phone", ""), limit=40)
    if phone is None:
        check.fail("customer.phone", "Text, at most 40 characters.")

    items: list[IngestItem] = []
    raw_items = payload.get("items")
    if "items" not in check.fields:
        if not isinstance(raw_items, list) or len(raw_items) > MAX_ITEMS:
            check.fail("items", f"A list of 1 to {MAX_ITEMS} items.")
        else:
            for i, raw in enumerate(raw_items):
                item = check.obj(raw, f"items[{i}]")
                if not item:
                    continue
                sku = _text(item.get("sku"), limit=64)
                if not sku:
                    check.fail(f"items[{i}].sku", "The variant's SKU, as text.")
                quantity = check.whole(item, "quantity", f"items[{i}].quantity", low=1)
                price = check.whole(item, "unit_price_minor", f"items[{i}].unit_price_minor")
                items.append(IngestItem(sku or "", quantity, price))

    totals_raw = check.obj(payload.get("totals"), "totals") if "totals" not in check.fields else {}
    currency = totals_raw.get("currency")
    if totals_raw and not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        check.fail("totals.currency", "An ISO-4217 code such as EUR.")
    totals = IngestTotals(
        currency=currency if isinstance(currency, str) else "",
        subtotal_minor=check.whole(totals_raw, "subtotal_minor", "totals.subtotal_minor") if totals_raw else 0,
        shipping_minor=check.whole(totals_raw, "shipping_minor", "totals.shipping_minor", default=0)
        if totals_raw
        else 0,
        tax_minor=check.whole(totals_raw, "tax_minor", "totals.tax_minor") if totals_raw else 0,
        total_minor=check.whole(totals_raw, "total_minor", "totals.total_minor") if totals_raw else 0,
        discount_minor=check.whole(totals_raw, "discount_minor", "totals.discount_minor")
        if totals_raw and "discount_minor" in totals_raw
        else None,
    )
    code = payload.get("promotion_code", "")
    if code is None:
        code = ""
    if not isinstance(code, str) or len(code.strip()) > 40:
        check.fail("promotion_code", "A promotion code, as text of up to 40 characters.")
        code = ""

    payment_raw = payload.get("payment", {"status": "unpaid"})
    payment_status = payment_raw.get("status") if isinstance(payment_raw, Mapping) else None
    if payment_status not in PAYMENT_STATUSES:
        check.fail("payment.status", "paid (the channel took the money) or unpaid.")
    method = payload.get("fulfilment_method", "pickup")
    if method not in METHODS:
        check.fail("fulfilment_method", f"One of {', '.join(METHODS)}.")
    address: Address | None = None
    address_raw = payload.get("address")
    if address_raw is not None or method in ("shipping", "local_delivery"):
        if not isinstance(address_raw, Mapping):
            check.fail("address", "Required for shipping and local delivery: an object.")
        else:
            try:
                address = parse_address({k: v for k, v in address_raw.items() if isinstance(v, str)})
            except ValidationFailed as exc:
                for key, message in exc.fields.items():
                    check.fail(f"address.{key}", message)

    if check.fields:
        raise ValidationFailed("Check the highlighted fields of the order.", fields=check.fields)
    assert isinstance(client_order_id, str) and store  # checked above
    return IngestOrder(
        client_order_id=client_order_id,
        store=store,
        customer=IngestCustomer(email=email, name=name or "", phone=phone or ""),
        items=tuple(items),
        totals=totals,
        payment_status=str(payment_status),
        fulfilment_method=str(method),
        address=address,
        promotion_code=code.strip(),
    )
