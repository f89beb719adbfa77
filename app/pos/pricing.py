"""A POS ticket's arithmetic, pure (no I/O): pricing with the store's tax rules, discount limits, and tenders.

The same rules as the tablet's offline pricing (static/pos/money.js ``priceTicket``): each line's own discount
first, then the ticket discount shared across the lines in proportion to what is left of them (``allocate``:
the shares add up to the discount exactly), then tax per line through the store's TaxProvider (BuiltinTax, as
checkout). Money is integer minor units throughout (invariant 1).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.errors import ValidationFailed
from app.core.money import Money, allocate
from app.tax.providers import TaxableLine, TaxProvider

__all__ = [
    "BPS",
    "MAX_LINES",
    "MAX_MINOR",
    "MAX_QUANTITY",
    "PricedLine",
    "PricedTicket",
    "Tender",
    "TenderInput",
    "TicketLine",
    "discounts_over_limit",
    "price_ticket",
    "settle_tenders",
    "ticket_problems",
]

BPS = 10_000
MAX_QUANTITY = 9_999
MAX_LINES = 200
MAX_MINOR = 100_000_000  # a million in a two-decimal currency: more is a typo, and stays far from int32
STORED_VALUE_KINDS = ("gift_card", "store_credit", "loyalty")  # app/stored_value: spent in the sale's statement
TENDER_KINDS = ("cash", "card", *STORED_VALUE_KINDS)


@dataclass(frozen=True)
class TicketLine:
    variant_id: uuid.UUID
    quantity: int
    unit_price_minor: int
    discount_minor: int
    tax_class: str

    @property
    def gross_minor(self) -> int:
        return self.unit_price_minor * self.quantity


@dataclass(frozen=True)
class PricedLine:
    variant_id: uuid.UUID
    quantity: int
    unit_price_minor: int
    discount_minor: int  # the line's own discount and its share of the ticket's
    tax_minor: int
    tax_rate_bps: int
    total_minor: int  # what the line costs, tax included either way


@dataclass(frozen=True)
class PricedTicket:
    lines: tuple[PricedLine, ...]
    subtotal_minor: int  # before any discount
    discount_minor: int
    tax_minor: int
    total_minor: int


def ticket_problems(lines: Sequence[TicketLine], ticket_discount_minor: int) -> dict[str, str]:
    """Each field of a ticket that cannot be priced, by its path in the request."""
    fields: dict[str, str] = {}
    if not lines:
        fields["lines"] = "A sale needs at least one line."
    elif len(lines) > MAX_LINES:
        fields["lines"] = f"At most {MAX_LINES} lines in one sale."
    base = 0
    for i, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_QUANTITY:
            fields[f"lines.{i}.quantity"] = f"From 1 to {MAX_QUANTITY}."
            continue
        if not 0 <= line.unit_price_minor <= MAX_MINOR:
            fields[f"lines.{i}.unit_price_minor"] = "Not a price."
            continue
        if line.gross_minor > MAX_MINOR:
            fields[f"lines.{i}.quantity"] = "Too much for one line."
            continue
        if not 0 <= line.discount_minor <= line.gross_minor:
            fields[f"lines.{i}.discount_minor"] = f"From 0 to the line's price ({line.gross_minor})."
            continue
        base += line.gross_minor - line.discount_minor
    if not fields and not 0 <= ticket_discount_minor <= base:
        fields["ticket_discount_minor"] = f"From 0 to what the lines come to after their discounts ({base})."
    return fields


def price_ticket(
    lines: Sequence[TicketLine],
    ticket_discount_minor: int,
    *,
    tax: TaxProvider,
    country: str,
    prices_include_tax: bool,
    currency: str,
) -> PricedTicket:
    """The ticket priced at the lines' unit prices; ValidationFailed (fields by path) for a ticket that is not one."""
    fields = ticket_problems(lines, ticket_discount_minor)
    if fields:
        raise ValidationFailed("The sale's lines or discounts are not right; nothing was written.", fields=fields)
    after_line = [line.gross_minor - line.discount_minor for line in lines]
    base = sum(after_line)
    shares = allocate(ticket_discount_minor, after_line) if ticket_discount_minor and base > 0 else [0] * len(lines)
    amounts = [after - share for after, share in zip(after_line, shares, strict=True)]
    quote = tax.quote(
        [
            TaxableLine(str(i), Money(amount, currency), line.tax_class)
            for i, (amount, line) in enumerate(zip(amounts, lines, strict=True))
        ],
        country=country,
        prices_include_tax=prices_include_tax,
    )
    priced = []
    for line, amount, share, taxed in zip(lines, amounts, shares, quote.lines, strict=True):
        line_tax = taxed.tax.amount_minor
        priced.append(
            PricedLine(
                variant_id=line.variant_id,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                discount_minor=line.discount_minor + share,
                tax_minor=line_tax,
                tax_rate_bps=taxed.rate_bps,
                total_minor=amount if prices_include_tax else amount + line_tax,
            )
        )
    return PricedTicket(
        lines=tuple(priced),
        subtotal_minor=sum(line.gross_minor for line in lines),
        discount_minor=sum(p.discount_minor for p in priced),
        tax_minor=sum(p.tax_minor for p in priced),
        total_minor=sum(p.total_minor for p in priced),
    )


def discounts_over_limit(
    lines: Sequence[TicketLine], ticket_discount_minor: int, limit_bps: int | None
) -> dict[str, str]:
    """The discounts over ``limit_bps`` of what each is taken from (a line's price; the ticket after its line
    discounts), by path; {} when none is, or there is no limit (None). The tablet asks for a PIN by the same rule."""
    if limit_bps is None:
        return {}
    percent = f"{limit_bps / 100:g} %"
    fields = {
        f"lines.{i}.discount_minor": f"Over the discount limit of {percent}."
        for i, line in enumerate(lines)
        if line.discount_minor > 0 and line.discount_minor * BPS > limit_bps * line.gross_minor
    }
    base = sum(line.gross_minor - line.discount_minor for line in lines)
    if ticket_discount_minor > 0 and ticket_discount_minor * BPS > limit_bps * base:
        fields["ticket_discount_minor"] = f"Over the discount limit of {percent}."
    return fields


@dataclass(frozen=True)
class TenderInput:
    kind: str
    amount_minor: int
    tendered_minor: int | None = None
    reader_payment_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Tender:
    kind: str
    amount_minor: int  # what it paid of the sale
    tendered_minor: int  # cash handed over (0 for a card)
    change_minor: int  # cash handed back
    reader_payment_id: uuid.UUID | None = None


def settle_tenders(tenders: Sequence[TenderInput], total_minor: int) -> tuple[list[Tender], int]:
    """The tenders as they pay ``total_minor`` and the change to hand back; ValidationFailed (fields by path) when
    they do not cover it, a card pays more than is owed, or one is malformed. Cash handed over beyond what is
    owed is change (``amount_minor`` of cash beyond it too: it is taken off the last cash tenders)."""
    fields: dict[str, str] = {}
    cards: set[uuid.UUID] = set()  # several cards may pay one sale (a bill split between friends), each once
    for i, tender in enumerate(tenders):
        if tender.kind not in TENDER_KINDS:
            fields[f"tenders.{i}.kind"] = "Cash, card, gift card, store credit or points."
            continue
        if not 0 < tender.amount_minor <= MAX_MINOR:
            fields[f"tenders.{i}.amount_minor"] = "More than zero."
        if tender.kind == "cash":
            handed = tender.amount_minor if tender.tendered_minor is None else tender.tendered_minor
            if handed < tender.amount_minor or handed > MAX_MINOR:
                fields[f"tenders.{i}.tendered_minor"] = "At least the amount it pays."
        elif tender.kind in STORED_VALUE_KINDS:
            pass  # its balance is checked in the sale's statement (app/stored_value/fragments.py)
        elif tender.reader_payment_id is None:
            fields[f"tenders.{i}.reader_payment_id"] = "A card tender names its approved reader payment."
        elif tender.reader_payment_id in cards:
            fields[f"tenders.{i}.reader_payment_id"] = "This card payment is on the sale already."
        else:
            cards.add(tender.reader_payment_id)
    if not tenders and total_minor > 0:
        fields["tenders"] = "The sale is not paid."
    if fields:
        raise ValidationFailed("The payments are not right; nothing was written.", fields=fields)
    non_cash = sum(t.amount_minor for t in tenders if t.kind != "cash")
    if non_cash > total_minor:
        index = next(i for i, t in enumerate(tenders) if t.kind != "cash")
        raise ValidationFailed(
            "A card may not pay more than is owed; nothing was written.",
            fields={f"tenders.{index}.amount_minor": f"The sale comes to {total_minor}."},
        )
    paid = sum(t.amount_minor for t in tenders)
    if paid < total_minor:
        raise ValidationFailed(
            "The payments do not cover the total; nothing was written.",
            fields={"tenders": f"They pay {paid} of {total_minor}."},
        )
    over = paid - total_minor  # all of it cash (cards are within what is owed)
    settled: list[Tender] = []
    for tender in reversed(tenders):
        if tender.kind != "cash":
            settled.append(Tender(tender.kind, tender.amount_minor, 0, 0, tender.reader_payment_id))
            continue
        handed = tender.amount_minor if tender.tendered_minor is None else tender.tendered_minor
        cut = min(over, tender.amount_minor)
        over -= cut
        amount = tender.amount_minor - cut
        settled.append(Tender("cash", amount, handed, handed - amount))
    settled.reverse()
    return settled, sum(t.change_minor for t in settled)
