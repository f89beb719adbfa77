"""The receipt document: what every channel renders, frozen when the receipt is made (pure data, no I/O).

Money stays in integer minor units; ``money()`` formats it the one way the pages do. Every renderer (PDF,
ESC/POS, e-mail) walks the same rows, so the totals on paper, on screen and in the inbox cannot drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.core.money import Money

POINTS = "points"  # Row.unit of a count of loyalty points


def money(amount_minor: int, currency: str) -> str:
    return Money(amount_minor, currency).format()


@dataclass(frozen=True)
class Line:
    name: str
    quantity: int
    unit_minor: int
    discount_minor: int  # the line's share of every discount (shown under it)
    total_minor: int  # after the discount
    tax_rate_bps: int = 0


@dataclass(frozen=True)
class Row:
    """A labelled amount: a total, a tax line, a tender, the change (money), or a count of points."""

    label: str
    amount_minor: int  # minor units of the document's currency; with ``unit == "points"`` a number of points
    strong: bool = False
    unit: str = ""  # "" money | "points"


@dataclass(frozen=True)
class ReceiptDocument:
    kind: str  # sale | refund | shift
    title: str  # "Receipt", "Refund receipt", "Shift report"
    reference: str  # "Order #1042", "Counter 1"
    issued_at: str  # ISO 8601, UTC
    currency: str
    store_name: str
    store_lines: list[str] = field(default_factory=list)  # address, phone, e-mail
    lines: list[Line] = field(default_factory=list)
    totals: list[Row] = field(default_factory=list)  # subtotal, discounts, shipping, total
    tax_lines: list[Row] = field(default_factory=list)
    tenders: list[Row] = field(default_factory=list)  # how it was paid (a refund: how it was given back)
    change_minor: int = 0
    loyalty: list[Row] = field(default_factory=list)  # points earned / balance (app/receipts/loyalty.py)
    notes: list[str] = field(default_factory=list)  # a refund's reason, ...
    footer: str = "Thank you for your visit."
    number: int = 0  # the receipt's number, set once the row exists

    @property
    def total_minor(self) -> int:
        strong = [row.amount_minor for row in self.totals if row.strong]
        return strong[-1] if strong else 0

    @property
    def display_number(self) -> str:
        return f"R-{self.number:06d}" if self.number else "R-draft"

    def fmt(self, amount_minor: int) -> str:
        return money(amount_minor, self.currency)

    def value(self, row: Row) -> str:
        """A row's amount as every channel prints it: money, or points as a plain number ("1,240")."""
        return f"{row.amount_minor:,}" if row.unit == POINTS else self.fmt(row.amount_minor)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, number: int = 0) -> ReceiptDocument:
        values = dict(data)
        values["lines"] = [Line(**line) for line in data.get("lines", [])]
        for key in ("totals", "tax_lines", "tenders", "loyalty"):
            values[key] = [Row(**row) for row in data.get(key, [])]
        if number:
            values["number"] = number
        return cls(**values)


def tax_label(rate_bps: int, included: bool) -> str:
    rate = f"{rate_bps / 100:g} %"
    return f"incl. tax {rate}" if included else f"Tax {rate}"


def tender_label(kind: str, *, brand: str = "", last4: str = "") -> str:
    names = {
        "cash": "Cash",
        "card": "Card",
        "gift_card": "Gift card",
        "store_credit": "Store credit",
        "loyalty": "Loyalty points",
        "sandbox": "Card",
        "stripe": "Card",
        "original": "Original payment",
    }
    label = names.get(kind, kind.replace("_", " ").capitalize())
    if brand or last4:
        label = f"{brand.capitalize() or label} ending {last4}" if last4 else f"{label} ({brand})"
    return label
