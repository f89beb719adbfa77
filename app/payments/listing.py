"""The staff payments list: a store's payment intents with their orders, filtered, a page at a time (keyset,
newest first), and totals by status for the same filters (one GROUP BY in the database)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import cursors
from app.core.days import day_range
from app.core.errors import ValidationFailed
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.orders.states import PAYMENT_STATUSES
from app.payments.fees import PROCESSING_FEES
from app.payments.models import PaymentIntent
from app.payments.provider import PaymentStatus

INTENT_STATUSES = tuple(str(s) for s in PaymentStatus)
PROVIDERS = tuple(PROCESSING_FEES)
# An intent in one of these got its amount authorised (some of it may since be captured, refunded or voided).
AUTHORISED_STATUSES = ("authorized", "captured", "refunded", "voided")
PAGE_MAX = 200

PI = PaymentIntent  # short, for the SQL expressions below

# The order payment axis of one intent, as app.payments.services.order_payment_status derives it (the test
# tests/integration/test_payments_list.py checks the two agree on every status and amount shape).
payment_axis: ColumnElement[str] = case(
    (PI.disputed_minor > 0, literal("disputed")),
    (PI.dispute_lost_minor > 0, literal("charged_back")),
    (PI.status.in_(("declined", "failed")), literal("unpaid")),
    (PI.status == "voided", literal("voided")),
    (and_(PI.refunded_minor > 0, PI.refunded_minor >= PI.captured_minor), literal("refunded")),
    (PI.refunded_minor > 0, literal("partially_refunded")),
    (
        or_(PI.captured_minor >= PI.amount_minor, and_(PI.captured_minor > 0, PI.status.in_(("captured", "refunded")))),
        literal("paid"),
    ),
    (PI.captured_minor > 0, literal("partially_paid")),
    (PI.status == "authorized", literal("authorized")),
    else_=literal("unpaid"),
)
authorised_amount: ColumnElement[int] = case((PI.status.in_(AUTHORISED_STATUSES), PI.amount_minor), else_=0)
fees_amount: ColumnElement[int] = PI.processing_fee_minor + PI.application_fee_minor


@dataclass(frozen=True)
class PaymentFilter:
    payment_status: str | None = None  # the order payment axis (PAYMENT_STATUSES), derived per intent
    status: str | None = None  # the intent's own status (INTENT_STATUSES)
    provider: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None  # exclusive
    order_number: int | None = None


@dataclass(frozen=True)
class PaymentQuery:
    """The list's filters as the page's form and the API's query send them; the next-page link reuses them.

    Dates are whole days in the store's time zone, both ends included. ``q`` is an order number (``#`` optional).
    """

    payment: str = ""
    status: str = ""
    provider: str = ""
    since: str = ""  # YYYY-MM-DD
    until: str = ""
    q: str = ""

    def filters(self, timezone: str, *, strict: bool = False) -> PaymentFilter:
        """The service's filter. Bad dates and a search that is not an order number are a ValidationFailed
        naming the field; so is an unknown choice when ``strict`` (the API), which the page reads as "any"."""
        errors: dict[str, str] = {}
        try:
            since, until = day_range(self.since, self.until, timezone)
        except ValidationFailed as exc:
            errors.update(exc.fields)
            since = until = None
        choices: dict[str, str | None] = {}
        for name, value, allowed in (
            ("payment", self.payment, PAYMENT_STATUSES),
            ("status", self.status, INTENT_STATUSES),
            ("provider", self.provider, PROVIDERS),
        ):
            choices[name] = value if value in allowed else None
            if strict and value and value not in allowed:
                errors[name] = "Choose one of: " + ", ".join(allowed) + "."
        number = self.q.strip().removeprefix("#").strip()
        if number and not (number.isdigit() and len(number) <= 18):
            errors["q"] = "Enter an order number, such as 1042."
        if errors:
            raise ValidationFailed("Check the filters.", fields=errors)
        return PaymentFilter(
            payment_status=choices["payment"],
            status=choices["status"],
            provider=choices["provider"],
            created_from=since,
            created_to=until,
            order_number=int(number) if number else None,
        )

    def query_string(self, **extra: str) -> str:
        return urlencode({k: v for k, v in {**dataclasses.asdict(self), **extra}.items() if v})


@dataclass(frozen=True)
class PaymentRow:
    id: uuid.UUID
    order_id: uuid.UUID | None
    order_number: int | None
    email: str | None
    created_at: datetime
    provider: str
    status: str
    payment_status: str
    card_brand: str
    card_last4: str
    currency: str
    amount_minor: int
    authorised_minor: int
    captured_minor: int
    refunded_minor: int
    processing_fee_minor: int
    application_fee_minor: int

    @property
    def fees_minor(self) -> int:
        return self.processing_fee_minor + self.application_fee_minor


@dataclass(frozen=True)
class StatusTotal:
    status: str
    currency: str
    count: int
    authorised_minor: int
    captured_minor: int
    refunded_minor: int
    fees_minor: int


def encode_cursor(row: PaymentRow) -> str:
    return cursors.encode_cursor(row.created_at, row.id)


decode_cursor = cursors.decode_cursor


class PaymentListing:
    """Reads only; the ledger (app.payments.services) stays the one writer of these tables."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    def _filtered(self, stmt: Select[Any], filters: PaymentFilter) -> Select[Any]:
        # The explicit store conditions repeat what tenancy adds, so the planner sees them for the index
        # ix_payment_intents_store_created (store_id, created_at, id).
        stmt = stmt.outerjoin(Order, and_(Order.id == PI.order_id, Order.store_id == PI.store_id)).where(
            PI.store_id == self.store_id
        )
        if filters.payment_status:
            stmt = stmt.where(payment_axis == filters.payment_status)
        if filters.status:
            stmt = stmt.where(PI.status == filters.status)
        if filters.provider:
            stmt = stmt.where(PI.provider == filters.provider)
        if filters.created_from:
            stmt = stmt.where(PI.created_at >= filters.created_from)
        if filters.created_to:
            stmt = stmt.where(PI.created_at < filters.created_to)
        if filters.order_number is not None:
            stmt = stmt.where(Order.number == filters.order_number)
        return stmt

    async def page(
        self, filters: PaymentFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[PaymentRow], str | None]:
        """One page of payments, newest first, by keyset: stable while new payments arrive."""
        if not 1 <= limit <= PAGE_MAX:
            raise ValidationFailed("Choose a page size.", fields={"limit": f"From 1 to {PAGE_MAX}."})
        stmt = self._filtered(
            select(
                PI.id,
                PI.order_id,
                Order.number.label("order_number"),
                Order.email,
                PI.created_at,
                PI.provider,
                PI.status,
                payment_axis.label("payment_status"),
                PI.card_brand,
                PI.card_last4,
                PI.currency,
                PI.amount_minor,
                authorised_amount.label("authorised_minor"),
                PI.captured_minor,
                PI.refunded_minor,
                PI.processing_fee_minor,
                PI.application_fee_minor,
            ),
            filters,
        )
        if cursor:
            stmt = stmt.where(tuple_(PI.created_at, PI.id) < tuple_(*[literal(v) for v in decode_cursor(cursor)]))
        result = await self.session.execute(stmt.order_by(PI.created_at.desc(), PI.id.desc()).limit(limit + 1))
        rows = [PaymentRow(**row._asdict()) for row in result]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]) if more else None

    async def totals(self, filters: PaymentFilter) -> list[StatusTotal]:
        """Count and sums by intent status and currency over every payment the filters keep (not one page),
        largest count first."""
        count = func.count().label("count")
        stmt = self._filtered(
            select(
                PI.status,
                PI.currency,
                count,
                func.coalesce(func.sum(authorised_amount), 0).label("authorised_minor"),
                func.coalesce(func.sum(PI.captured_minor), 0).label("captured_minor"),
                func.coalesce(func.sum(PI.refunded_minor), 0).label("refunded_minor"),
                func.coalesce(func.sum(fees_amount), 0).label("fees_minor"),
            ),
            filters,
        ).group_by(PI.status, PI.currency)
        result = await self.session.execute(stmt.order_by(count.desc(), PI.status, PI.currency))
        return [StatusTotal(**row._asdict()) for row in result]  # PostgreSQL's bigint sums arrive as int
