"""A shift's report: its sales and refunds by tender, discounts, tax, voids, cash in and out, and the drawer
(expected = float + cash in - cash out + cash sales - cash refunds; over/short = counted - expected).

Tenders by kind (``TENDER_KINDS``): cash, card, gift card, store credit, loyalty points — what the sales took of
each and what refunds at the till gave back to each. Only cash is in the drawer: a gift card, store credit or
points paid (or given back) moves a ledger balance, never the expected cash.

Every amount is a sum of rows (pos_tenders, cash_movements, the sales' orders), so the tenders always add up to
the sales: ``sales_minor == sum(sales_by_tender)`` and ``refunds_minor == sum(refunds_by_tender)``. A closed
shift keeps the expected cash it was closed with; a sale that syncs after the close shows in its totals (and on
the review list) but does not move what was counted then.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import Order
from app.pos.models import CashMovement, PosRefund, PosSale, PosTender, PosVoid, ReaderPayment, Register, Shift
from app.stores.models import Store, User

__all__ = ["TENDER_KINDS", "ShiftReport", "report_csv", "shift_json", "shift_report", "tender_label"]

# Every tender kind a POS sale or refund has, in the report's order, with its words. Stored value (gift card, store
# credit, points) is paid from a ledger balance: it never counts in the drawer's expected cash.
TENDER_KINDS: dict[str, str] = {
    "cash": "Cash",
    "card": "Card",
    "gift_card": "Gift card",
    "store_credit": "Store credit",
    "loyalty": "Loyalty points",
}
IN_DRAWER = frozenset({"cash"})
STORED_VALUE = frozenset({"gift_card", "store_credit", "loyalty"})


def tender_label(kind: str) -> str:
    return TENDER_KINDS.get(kind, kind.replace("_", " ").capitalize())


@dataclass(frozen=True)
class ShiftReport:
    shift: Shift
    register_name: str
    opened_by: str
    closed_by: str
    currency: str
    sales_count: int
    refunds_count: int
    voids_count: int  # tickets and lines voided before they were sold (app/pos/voids.py)
    gross_minor: int  # the sales at list price, before discounts
    discounts_minor: int
    tax_minor: int
    sales_minor: int  # what the sales came to (= the sales' tenders)
    refunds_minor: int  # what was given back (= the refunds' tenders)
    cash_in_minor: int
    cash_out_minor: int
    expected_cash_minor: int
    counted_cash_minor: int | None
    over_short_minor: int | None
    sales_by_tender: dict[str, int] = field(default_factory=dict)
    refunds_by_tender: dict[str, int] = field(default_factory=dict)
    review_count: int = 0  # sales of this shift waiting on the managers' review list
    voided_tickets: int = 0
    voided_lines: int = 0
    voided_minor: int = 0  # what the voided tickets and lines came to
    card_voids_count: int = 0  # card payments given back before their sale closed

    @property
    def net_minor(self) -> int:
        return self.sales_minor - self.refunds_minor

    @property
    def tenders(self) -> list[dict[str, Any]]:
        """Every tender kind (the five known ones always, then any other found), with what the sales took and
        what refunds gave back by it, and whether it is in the cash drawer."""
        kinds = [*TENDER_KINDS, *sorted((set(self.sales_by_tender) | set(self.refunds_by_tender)) - set(TENDER_KINDS))]
        return [
            {
                "kind": kind,
                "label": tender_label(kind),
                "sales_minor": self.sales_by_tender.get(kind, 0),
                "refunds_minor": self.refunds_by_tender.get(kind, 0),
                "in_drawer": kind in IN_DRAWER,
            }
            for kind in kinds
        ]

    @property
    def stored_value_sales_minor(self) -> int:
        return sum(amount for kind, amount in self.sales_by_tender.items() if kind in STORED_VALUE)

    @property
    def stored_value_refunds_minor(self) -> int:
        return sum(amount for kind, amount in self.refunds_by_tender.items() if kind in STORED_VALUE)

    def as_json(self) -> dict[str, Any]:
        return {
            "shift": shift_json(self.shift, self.register_name, self.opened_by),
            "currency": self.currency,
            "sales_count": self.sales_count,
            "refunds_count": self.refunds_count,
            "voids_count": self.voids_count,
            "voided_tickets": self.voided_tickets,
            "voided_lines": self.voided_lines,
            "voided_minor": self.voided_minor,
            "card_voids_count": self.card_voids_count,
            "gross_minor": self.gross_minor,
            "discounts_minor": self.discounts_minor,
            "tax_minor": self.tax_minor,
            "sales_minor": self.sales_minor,
            "refunds_minor": self.refunds_minor,
            "net_minor": self.net_minor,
            "sales_by_tender": self.sales_by_tender,
            "refunds_by_tender": self.refunds_by_tender,
            "tenders": self.tenders,
            "stored_value_sales_minor": self.stored_value_sales_minor,
            "stored_value_refunds_minor": self.stored_value_refunds_minor,
            "cash_in_minor": self.cash_in_minor,
            "cash_out_minor": self.cash_out_minor,
            "expected_cash_minor": self.expected_cash_minor,
            "counted_cash_minor": self.counted_cash_minor,
            "over_short_minor": self.over_short_minor,
            "review_count": self.review_count,
        }


def shift_json(shift: Shift, register_name: str, opened_by: str, offline_key: str | None = None) -> dict[str, Any]:
    return {
        "id": str(shift.id),
        "register_id": str(shift.register_id),
        "register_name": register_name,
        "opened_at": shift.opened_at.isoformat(),
        "opened_by": opened_by,
        "opening_float_minor": shift.opening_float_minor,
        "closed_at": shift.closed_at.isoformat() if shift.closed_at else None,
        "offline_key": offline_key,
    }


async def shift_report(session: AsyncSession, shift: Shift) -> ShiftReport:
    """The shift's report from its rows (the session is bound to the shift's store)."""
    sales = (
        await session.execute(
            select(
                func.count(PosSale.id),
                func.coalesce(func.sum(Order.subtotal_minor), 0),
                func.coalesce(func.sum(Order.discount_minor), 0),
                func.coalesce(func.sum(Order.tax_minor), 0),
                func.coalesce(func.sum(case((PosSale.review_status == "open", 1), else_=0)), 0),
            )
            .join(Order, Order.id == PosSale.order_id)
            .where(PosSale.shift_id == shift.id)
        )
    ).one()
    by_tender: dict[tuple[str, bool], int] = {}
    for kind, is_refund, amount in await session.execute(
        select(PosTender.kind, PosTender.refund_id.is_not(None), func.sum(PosTender.amount_minor))
        .where(PosTender.shift_id == shift.id)
        .group_by(PosTender.kind, PosTender.refund_id.is_not(None))
    ):
        by_tender[(kind, bool(is_refund))] = int(amount)
    moved = dict(
        (kind, int(amount))
        for kind, amount in await session.execute(
            select(CashMovement.kind, func.sum(CashMovement.amount_minor))
            .where(CashMovement.shift_id == shift.id)
            .group_by(CashMovement.kind)
        )
    )
    refunds_count = await session.scalar(
        select(func.count(PosRefund.id)).where(PosRefund.shift_id == shift.id, PosRefund.status == "done")
    )
    voided = dict(
        (kind, (int(count), int(amount)))
        for kind, count, amount in await session.execute(
            select(PosVoid.kind, func.count(PosVoid.id), func.sum(PosVoid.amount_minor))
            .where(PosVoid.shift_id == shift.id)
            .group_by(PosVoid.kind)
        )
    )
    card_voids_count = await session.scalar(
        select(func.count(ReaderPayment.id)).where(
            ReaderPayment.register_id == shift.register_id,
            ReaderPayment.status == "voided",
            ReaderPayment.created_at >= shift.opened_at,
            ReaderPayment.created_at <= (shift.closed_at or datetime.now(UTC)),
        )
    )
    sales_by_tender = {kind: amount for (kind, refund), amount in sorted(by_tender.items()) if not refund}
    refunds_by_tender = {kind: -amount for (kind, refund), amount in sorted(by_tender.items()) if refund}
    cash_in, cash_out = moved.get("in", 0), moved.get("out", 0)
    expected = (  # only cash is in the drawer: card and stored-value tenders never count here
        shift.opening_float_minor
        + cash_in
        - cash_out
        + sales_by_tender.get("cash", 0)
        - refunds_by_tender.get("cash", 0)
    )
    if shift.closed_at is not None and shift.expected_cash_minor is not None:
        expected = shift.expected_cash_minor
    register = await session.get(Register, shift.register_id)
    store = await session.get(Store, shift.store_id)
    opened = await session.get(User, shift.opened_by_id) if shift.opened_by_id else None
    closed = await session.get(User, shift.closed_by_id) if shift.closed_by_id else None
    count, gross, discounts, tax, review = (int(v) for v in sales)
    return ShiftReport(
        shift=shift,
        register_name=register.name if register else "",
        opened_by=opened.name if opened else "",
        closed_by=closed.name if closed else "",
        currency=store.currency if store else "",
        sales_count=count,
        refunds_count=int(refunds_count or 0),
        voids_count=voided.get("ticket", (0, 0))[0] + voided.get("line", (0, 0))[0],
        gross_minor=gross,
        discounts_minor=discounts,
        tax_minor=tax,
        sales_minor=sum(sales_by_tender.values()),
        refunds_minor=sum(refunds_by_tender.values()),
        cash_in_minor=cash_in,
        cash_out_minor=cash_out,
        expected_cash_minor=expected,
        counted_cash_minor=shift.counted_cash_minor,
        over_short_minor=shift.over_short_minor,
        sales_by_tender=sales_by_tender,
        refunds_by_tender=refunds_by_tender,
        review_count=review,
        voided_tickets=voided.get("ticket", (0, 0))[0],
        voided_lines=voided.get("line", (0, 0))[0],
        voided_minor=sum(amount for _, amount in voided.values()),
        card_voids_count=int(card_voids_count or 0),
    )


def report_csv(report: ShiftReport) -> str:
    """The report as CSV, one figure a row (amounts in minor units, as the API gives them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    shift = report.shift
    writer.writerow(["field", "value"])
    rows: list[tuple[str, Any]] = [
        ("register", report.register_name),
        ("shift_id", shift.id),
        ("opened_at", shift.opened_at.isoformat()),
        ("opened_by", report.opened_by),
        ("closed_at", shift.closed_at.isoformat() if shift.closed_at else ""),
        ("closed_by", report.closed_by),
        ("currency", report.currency),
        ("opening_float_minor", shift.opening_float_minor),
        ("sales_count", report.sales_count),
        ("gross_minor", report.gross_minor),
        ("discounts_minor", report.discounts_minor),
        ("tax_minor", report.tax_minor),
        ("sales_minor", report.sales_minor),
        *((f"sales_{t['kind']}_minor", t["sales_minor"]) for t in report.tenders),
        ("sales_stored_value_minor", report.stored_value_sales_minor),
        ("refunds_count", report.refunds_count),
        ("refunds_minor", report.refunds_minor),
        *((f"refunds_{t['kind']}_minor", t["refunds_minor"]) for t in report.tenders),
        ("refunds_stored_value_minor", report.stored_value_refunds_minor),
        ("voids_count", report.voids_count),
        ("voided_tickets", report.voided_tickets),
        ("voided_lines", report.voided_lines),
        ("voided_minor", report.voided_minor),
        ("card_voids_count", report.card_voids_count),
        ("cash_in_minor", report.cash_in_minor),
        ("cash_out_minor", report.cash_out_minor),
        ("expected_cash_minor", report.expected_cash_minor),
        ("counted_cash_minor", "" if report.counted_cash_minor is None else report.counted_cash_minor),
        ("over_short_minor", "" if report.over_short_minor is None else report.over_short_minor),
        ("review_count", report.review_count),
        ("close_note", shift.close_note),
    ]
    for name, value in rows:
        writer.writerow([name, _safe(value)])
    return out.getvalue()


def _safe(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (names and notes are typed by people)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not text.lstrip("-").isdigit() else text
