"""From an order, a refund or a closed shift to a ReceiptDocument (reads other domains' rows, writes none)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import Order
from app.payments.models import PaymentIntent, PaymentTransaction
from app.pos.models import PosRefund, PosSale, PosTender, Register, Shift
from app.pos.reports import shift_report
from app.receipts.document import Line, ReceiptDocument, Row, tax_label, tender_label
from app.stores.details import Profile
from app.stores.models import Store

# Loyalty adds what an order earned (app/receipts/loyalty.py): ``async def (session, order) -> list[Row]``.
LoyaltySource = Callable[[AsyncSession, Order], Awaitable[list[Row]]]
_loyalty_sources: list[LoyaltySource] = []


def register_loyalty_source(source: LoyaltySource) -> None:
    if source not in _loyalty_sources:
        _loyalty_sources.append(source)


def _register_loyalty() -> None:
    from app.receipts.loyalty import loyalty_rows

    register_loyalty_source(loyalty_rows)


_register_loyalty()

# Other domains add lines of text under a sale (app/stored_value: the gift cards it activated, by their last 4 only).
NoteSource = Callable[[AsyncSession, Order], Awaitable[list[str]]]
_note_sources: list[NoteSource] = []


def register_note_source(source: NoteSource) -> None:
    if source not in _note_sources:
        _note_sources.append(source)


def _register_notes() -> None:
    from app.stored_value.receipt_notes import gift_card_notes

    register_note_source(gift_card_notes)


_register_notes()


def store_lines(store: Store) -> list[str]:
    profile = Profile.of(store.settings or {})
    return [p for p in (profile.address_line, profile.phone, profile.email) if p]


def store_footer(store: Store) -> str:
    receipts = (store.settings or {}).get("receipts") or {}
    return str(receipts.get("footer") or "Thank you for your visit.")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _tax_rows(order: Order) -> list[Row]:
    by_rate: dict[int, int] = defaultdict(int)
    for line in order.lines:
        by_rate[line.tax_rate_bps] += line.tax_minor
    rows = [Row(tax_label(rate, order.prices_include_tax), amount) for rate, amount in sorted(by_rate.items())]
    rest = order.tax_minor - sum(by_rate.values())  # the shipping's tax
    if rest:
        rows.append(Row("Tax on shipping", rest))
    return rows


async def _tenders(session: AsyncSession, order: Order) -> tuple[list[Row], int]:
    if order.channel == "pos":
        rows = await session.scalars(
            select(PosTender)
            .where(PosTender.order_id == order.id, PosTender.refund_id.is_(None))
            .order_by(PosTender.created_at)
        )
        tenders, change = [], 0
        for tender in rows:
            if tender.kind == "cash" and tender.tendered_minor:
                tenders.append(Row("Cash given", tender.tendered_minor))
            else:
                tenders.append(Row(tender_label(tender.kind), tender.amount_minor))
            change += tender.change_minor
        return tenders, change
    intents = await session.scalars(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
    return [
        Row(tender_label("card", brand=i.card_brand, last4=i.card_last4), i.captured_minor or i.amount_minor)
        for i in intents
    ], 0


def _order_lines(order: Order) -> list[Line]:
    return [
        Line(
            name=line.name,
            quantity=line.quantity,
            unit_minor=line.unit_price_minor,
            discount_minor=line.discount_minor,
            total_minor=line.total_minor,
            tax_rate_bps=line.tax_rate_bps,
        )
        for line in order.lines
    ]


async def sale_document(session: AsyncSession, store: Store, order: Order) -> ReceiptDocument:
    totals = [Row("Subtotal", order.subtotal_minor)]
    for discount in order.discounts or []:
        label = str(discount.get("name") or "Discount")
        if discount.get("code"):
            label = f"{label} ({discount['code']})"
        totals.append(Row(label, -int(discount.get("amount_minor", 0)) - int(discount.get("shipping_minor", 0))))
    if not order.discounts and order.discount_minor:
        totals.append(Row("Discount", -order.discount_minor))
    if order.shipping_minor or order.fulfilment_method != "pickup":
        totals.append(Row(str((order.shipping or {}).get("label") or "Shipping"), order.shipping_minor))
    if not order.prices_include_tax and order.tax_minor:
        totals.append(Row("Tax", order.tax_minor))
    totals.append(Row("Total", order.total_minor, strong=True))
    tenders, change = await _tenders(session, order)
    loyalty: list[Row] = []
    for source in _loyalty_sources:
        loyalty += await source(session, order)
    notes = [note for source in _note_sources for note in await source(session, order)]
    return ReceiptDocument(
        kind="sale",
        title="Receipt",
        reference=f"Order #{order.number}",
        issued_at=order.placed_at.isoformat(),
        currency=order.currency,
        store_name=store.name,
        store_lines=store_lines(store),
        lines=_order_lines(order),
        totals=totals,
        tax_lines=_tax_rows(order),
        tenders=tenders,
        change_minor=change,
        loyalty=loyalty,
        notes=notes,
        footer=store_footer(store),
    )


async def pos_refund_document(session: AsyncSession, store: Store, order: Order, refund: PosRefund) -> ReceiptDocument:
    by_position = {line.position: line for line in order.lines}
    lines = []
    for item in refund.lines or []:
        original = by_position.get(int(item.get("position", -1)))
        quantity = int(item.get("quantity", 0))
        amount = int(item.get("amount_minor", 0))
        name = original.name if original else "Item"
        lines.append(Line(name, quantity, amount // quantity if quantity else amount, 0, amount))
    given = [Row(tender_label(str(part.get("kind", ""))), int(part.get("amount_minor", 0))) for part in refund.parts]
    return _refund(store, order, refund.amount_minor, lines, given, refund.reason)


async def web_refund_document(
    session: AsyncSession, store: Store, order: Order, transaction: PaymentTransaction | None, amount_minor: int
) -> ReceiptDocument:
    intent = await session.get(PaymentIntent, transaction.intent_id) if transaction is not None else None
    label = tender_label("card", brand=intent.card_brand, last4=intent.card_last4) if intent else "Original payment"
    reason = transaction.reason if transaction is not None else ""
    return _refund(store, order, amount_minor, [], [Row(f"To {label}", amount_minor)], reason)


def _refund(
    store: Store, order: Order, amount_minor: int, lines: list[Line], given: list[Row], reason: str
) -> ReceiptDocument:
    notes = [f"Refund on order #{order.number}."]
    if reason:
        notes.append(f"Reason: {reason}")
    return ReceiptDocument(
        kind="refund",
        title="Refund receipt",
        reference=f"Order #{order.number}",
        issued_at=_now(),
        currency=order.currency,
        store_name=store.name,
        store_lines=store_lines(store),
        lines=lines,
        totals=[Row("Refunded", amount_minor, strong=True)],
        tenders=given,
        notes=notes,
        footer=store_footer(store),
    )


async def shift_document(session: AsyncSession, store: Store, shift: Shift) -> ReceiptDocument:
    report = await shift_report(session, shift)
    totals = [
        Row(f"Sales ({report.sales_count})", report.gross_minor),
        Row("Discounts", -report.discounts_minor),
        Row("Refunds", -report.refunds_minor),
        Row("Net", report.net_minor, strong=True),
        Row("Cash in", report.cash_in_minor),
        Row("Cash out", -report.cash_out_minor),
        Row("Expected cash", report.expected_cash_minor),
    ]
    if report.counted_cash_minor is not None:
        totals.append(Row("Counted cash", report.counted_cash_minor))
    if report.over_short_minor is not None:
        totals.append(Row("Over / short", report.over_short_minor))
    tenders = [Row(tender_label(kind), amount) for kind, amount in sorted(report.sales_by_tender.items())]
    tenders += [
        Row(f"Refunds {tender_label(kind).lower()}", -amount) for kind, amount in report.refunds_by_tender.items()
    ]
    notes = [f"Opened by {report.opened_by}", f"Closed by {report.closed_by}"]
    if shift.close_note:
        notes.append(shift.close_note)
    return ReceiptDocument(
        kind="shift",
        title="Shift report",
        reference=report.register_name,
        issued_at=(shift.closed_at or datetime.now(UTC)).isoformat(),
        currency=report.currency,
        store_name=store.name,
        store_lines=store_lines(store),
        totals=totals,
        tax_lines=[Row("Tax collected", report.tax_minor)],
        tenders=tenders,
        notes=notes,
        footer="",
    )


async def register_of_order(session: AsyncSession, order_id: uuid.UUID) -> uuid.UUID | None:
    register_id: uuid.UUID | None = await session.scalar(
        select(PosSale.register_id).where(PosSale.order_id == order_id)
    )
    return register_id


async def register_name(session: AsyncSession, register_id: uuid.UUID) -> str:
    return str(await session.scalar(select(Register.name).where(Register.id == register_id)) or "")
