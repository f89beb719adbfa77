"""Promotions in and out: the staff form's fields (text as typed) and the API's JSON shapes, both to one
``PromotionSpec`` that the service checks."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import msgspec.structs

from app.core.errors import ValidationFailed
from app.core.money import amount_text, parse_amount
from app.promotions.models import Promotion
from app.promotions.services import (
    PromotionRow,
    PromotionSpec,
    Report,
    UsageEntry,
    describe,
)

# The form's money and percentage fields, and the spec's (API) names the service's errors use.
FORM_FIELDS = {
    "percent": "percent_bps",
    "amount": "amount_minor",
    "min_subtotal": "min_subtotal_minor",
    "max_discount": "max_discount_minor",
}
_PERCENT = re.compile(r"^\s*(\d{1,3})(?:[.,](\d{1,2}))?\s*%?\s*$")
CHECKBOXES = ("first_order_only", "customers_only", "combinable")


def form_errors(fields: dict[str, str]) -> dict[str, str]:
    """The service's field errors under the form's names."""
    by_spec = {spec: form for form, spec in FORM_FIELDS.items()}
    return {by_spec.get(name, name): message for name, message in fields.items()}


def _percent(text: str) -> int | None:
    match = _PERCENT.match(text or "")
    if not match:
        return None
    whole, fraction = match.groups()
    return int(Decimal(f"{whole}.{fraction or '0'}") * 100)


def spec_from_form(form: dict[str, str], currency: str) -> PromotionSpec:
    """The form as a spec, or ValidationFailed naming each field whose text is not a number, amount or date."""
    fields: dict[str, str] = {}
    kind = form.get("kind", "")

    def amount(name: str, *, optional: bool) -> int | None:
        text = form.get(name, "").strip()
        if not text:
            return None if optional else 0
        value = parse_amount(text, currency)
        if value is None or value < 0:
            fields[name] = f"An amount in {currency}, such as {amount_text(500, currency)}."
        return value

    def whole(name: str, *, optional: bool, default: int = 0) -> int | None:
        text = form.get(name, "").strip()
        if not text:
            return None if optional else default
        if not re.fullmatch(r"-?\d{1,6}", text):
            fields[name] = "A whole number."
            return None
        return int(text)

    def day(name: str) -> date | None:
        text = form.get(name, "").strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            fields[name] = "A date such as 2026-12-24."
            return None

    percent_bps = 0
    if kind in ("percentage", "buy_x_get_y"):
        text = form.get("percent", "").strip() or ("100" if kind == "buy_x_get_y" else "")
        parsed = _percent(text)
        if parsed is None:
            fields["percent"] = "A percentage such as 10 or 12.5."
        percent_bps = parsed or 0
    spec = PromotionSpec(
        name=form.get("name", ""),
        kind=kind,
        code=form.get("code", "").strip() if form.get("mode", "code") == "code" else None,
        percent_bps=percent_bps,
        amount_minor=(amount("amount", optional=False) or 0) if kind == "fixed" else 0,
        buy_quantity=(whole("buy_quantity", optional=False) or 0) if kind == "buy_x_get_y" else 0,
        get_quantity=(whole("get_quantity", optional=False) or 0) if kind == "buy_x_get_y" else 0,
        applies_to=form.get("applies_to", "all"),
        product_ids=tuple(k.removeprefix("product-") for k, v in form.items() if k.startswith("product-") and v),
        category_ids=tuple(k.removeprefix("category-") for k, v in form.items() if k.startswith("category-") and v),
        min_subtotal_minor=amount("min_subtotal", optional=False) or 0,
        first_order_only=bool(form.get("first_order_only")),
        customers_only=bool(form.get("customers_only")),
        starts_on=day("starts_on"),
        ends_on=day("ends_on"),
        max_discount_minor=amount("max_discount", optional=True),
        usage_limit=whole("usage_limit", optional=True),
        per_customer_limit=whole("per_customer_limit", optional=True),
        combinable=bool(form.get("combinable")),
        priority=whole("priority", optional=False) or 0,
    )
    if kind == "percentage" and not form.get("percent", "").strip():
        fields["percent"] = "How much off, in percent."
    if fields:
        raise ValidationFailed("Check the highlighted fields.", fields=fields)
    return spec


def form_values(spec: PromotionSpec, currency: str) -> dict[str, str]:
    """A spec as the form shows it for editing."""

    def money(value: int | None) -> str:
        return amount_text(value, currency) if value else ""

    values = {
        "name": spec.name,
        "mode": "code" if spec.code else "automatic",
        "code": spec.code or "",
        "kind": spec.kind,
        "percent": f"{Decimal(spec.percent_bps) / 100:f}".rstrip("0").rstrip(".") if spec.percent_bps else "",
        "amount": money(spec.amount_minor),
        "buy_quantity": str(spec.buy_quantity or ""),
        "get_quantity": str(spec.get_quantity or ""),
        "applies_to": spec.applies_to,
        "min_subtotal": money(spec.min_subtotal_minor),
        "starts_on": spec.starts_on.isoformat() if spec.starts_on else "",
        "ends_on": spec.ends_on.isoformat() if spec.ends_on else "",
        "max_discount": money(spec.max_discount_minor),
        "usage_limit": "" if spec.usage_limit is None else str(spec.usage_limit),
        "per_customer_limit": "" if spec.per_customer_limit is None else str(spec.per_customer_limit),
        "priority": str(spec.priority),
    }
    values.update({name: "on" for name in CHECKBOXES if getattr(spec, name)})
    values.update({f"product-{pid}": "on" for pid in spec.product_ids})
    values.update({f"category-{cid}": "on" for cid in spec.category_ids})
    return values


# ---- the API ---------------------------------------------------------------------------------------------------

_KIND = "percentage | fixed | free_shipping | buy_x_get_y"
_DAY = "A whole day in the store's time zone (YYYY-MM-DD)"


class PromotionIn(msgspec.Struct, forbid_unknown_fields=True):
    """A promotion to create (every field) or the fields to change (PATCH: only those sent)."""

    name: str
    kind: Annotated[str, msgspec.Meta(description=_KIND)]
    code: Annotated[
        str | None,
        msgspec.Meta(description="The code shoppers type, case-insensitive (kept upper-case); null: automatic"),
    ] = None
    percent_bps: Annotated[
        int,
        msgspec.Meta(description="percentage: how much off (1000 = 10 %); buy_x_get_y: off the Y items (10000 = free)"),
    ] = 0
    amount_minor: Annotated[int, msgspec.Meta(description="fixed: the amount off, in minor units")] = 0
    buy_quantity: int = 0
    get_quantity: int = 0
    applies_to: Annotated[str, msgspec.Meta(description="all | products | categories")] = "all"
    product_ids: list[uuid.UUID] = msgspec.field(default_factory=list)
    category_ids: list[uuid.UUID] = msgspec.field(default_factory=list)
    min_subtotal_minor: int = 0
    first_order_only: bool = False
    customers_only: Annotated[bool, msgspec.Meta(description="Only for signed-in shoppers")] = False
    starts_on: Annotated[date | None, msgspec.Meta(description=f"The first day. {_DAY}")] = None
    ends_on: Annotated[date | None, msgspec.Meta(description=f"The last day (included). {_DAY}")] = None
    max_discount_minor: int | None = None
    usage_limit: Annotated[int | None, msgspec.Meta(description="Uses in all; null: no limit")] = None
    per_customer_limit: Annotated[int | None, msgspec.Meta(description="Uses per shopper e-mail; null: none")] = None
    combinable: Annotated[
        bool, msgspec.Meta(description="false: exclusive (applies alone); true: adds up with other combinable ones")
    ] = False
    priority: Annotated[int, msgspec.Meta(description="Higher applies first (-1000 to 1000)")] = 0

    def spec(self) -> PromotionSpec:
        return PromotionSpec(
            name=self.name,
            kind=self.kind,
            code=self.code,
            percent_bps=self.percent_bps,
            amount_minor=self.amount_minor,
            buy_quantity=self.buy_quantity,
            get_quantity=self.get_quantity,
            applies_to=self.applies_to,
            product_ids=tuple(str(i) for i in self.product_ids),
            category_ids=tuple(str(i) for i in self.category_ids),
            min_subtotal_minor=self.min_subtotal_minor,
            first_order_only=self.first_order_only,
            customers_only=self.customers_only,
            starts_on=self.starts_on,
            ends_on=self.ends_on,
            max_discount_minor=self.max_discount_minor,
            usage_limit=self.usage_limit,
            per_customer_limit=self.per_customer_limit,
            combinable=self.combinable,
            priority=self.priority,
        )


class PromotionPatch(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH: any of PromotionIn's fields, and ``status`` (active | paused) to pause or resume."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    kind: str | msgspec.UnsetType = msgspec.UNSET
    code: str | msgspec.UnsetType | None = msgspec.UNSET
    percent_bps: int | msgspec.UnsetType = msgspec.UNSET
    amount_minor: int | msgspec.UnsetType = msgspec.UNSET
    buy_quantity: int | msgspec.UnsetType = msgspec.UNSET
    get_quantity: int | msgspec.UnsetType = msgspec.UNSET
    applies_to: str | msgspec.UnsetType = msgspec.UNSET
    product_ids: list[uuid.UUID] | msgspec.UnsetType = msgspec.UNSET
    category_ids: list[uuid.UUID] | msgspec.UnsetType = msgspec.UNSET
    min_subtotal_minor: int | msgspec.UnsetType = msgspec.UNSET
    first_order_only: bool | msgspec.UnsetType = msgspec.UNSET
    customers_only: bool | msgspec.UnsetType = msgspec.UNSET
    starts_on: date | msgspec.UnsetType | None = msgspec.UNSET
    ends_on: date | msgspec.UnsetType | None = msgspec.UNSET
    max_discount_minor: int | msgspec.UnsetType | None = msgspec.UNSET
    usage_limit: int | msgspec.UnsetType | None = msgspec.UNSET
    per_customer_limit: int | msgspec.UnsetType | None = msgspec.UNSET
    combinable: bool | msgspec.UnsetType = msgspec.UNSET
    priority: int | msgspec.UnsetType = msgspec.UNSET
    status: Annotated[str | msgspec.UnsetType, msgspec.Meta(description="active | paused")] = msgspec.UNSET

    def changes(self) -> dict[str, Any]:
        """The spec fields sent (ids as text, as the spec keeps them)."""
        sent = {k: v for k, v in msgspec.structs.asdict(self).items() if v is not msgspec.UNSET and k != "status"}
        for key in ("product_ids", "category_ids"):
            if key in sent:
                sent[key] = tuple(str(i) for i in sent[key])
        return sent


class UsageOut(msgspec.Struct):
    orders: int
    discount_minor: int
    revenue_minor: int
    held: Annotated[int, msgspec.Meta(description="Uses held by checkouts paying right now")]


class PromotionOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    code: str | None
    kind: str
    summary: Annotated[str, msgspec.Meta(description="The offer in words: 10 % off over €20.00")]
    state: Annotated[str, msgspec.Meta(description="active | scheduled | paused | expired | used_up | deleted")]
    percent_bps: int
    amount_minor: int
    buy_quantity: int
    get_quantity: int
    applies_to: str
    product_ids: list[str]
    category_ids: list[str]
    min_subtotal_minor: int
    first_order_only: bool
    customers_only: bool
    starts_on: date | None
    ends_on: date | None
    starts_at: datetime | None
    ends_at: Annotated[datetime | None, msgspec.Meta(description="The first moment it no longer applies (UTC)")]
    max_discount_minor: int | None
    usage_limit: int | None
    per_customer_limit: int | None
    combinable: bool
    priority: int
    usage: UsageOut
    created_at: datetime
    deleted_at: datetime | None

    @classmethod
    def of(cls, row: PromotionRow, timezone: str, currency: str) -> PromotionOut:
        p: Promotion = row.promotion
        spec = PromotionSpec.of(p, timezone)
        u = row.usage
        return cls(
            id=p.id,
            name=p.name,
            code=p.code,
            kind=p.kind,
            summary=describe(p, currency),
            state=row.state,
            percent_bps=p.percent_bps,
            amount_minor=p.amount_minor,
            buy_quantity=p.buy_quantity,
            get_quantity=p.get_quantity,
            applies_to=p.applies_to,
            product_ids=list(p.product_ids),
            category_ids=list(p.category_ids),
            min_subtotal_minor=p.min_subtotal_minor,
            first_order_only=p.first_order_only,
            customers_only=p.customers_only,
            starts_on=spec.starts_on,
            ends_on=spec.ends_on,
            starts_at=p.starts_at,
            ends_at=p.ends_at,
            max_discount_minor=p.max_discount_minor,
            usage_limit=p.usage_limit,
            per_customer_limit=p.per_customer_limit,
            combinable=p.combinable,
            priority=p.priority,
            usage=UsageOut(u.orders, u.discount_minor, u.revenue_minor, u.held),
            created_at=p.created_at,
            deleted_at=p.deleted_at,
        )


class UseOut(msgspec.Struct):
    at: datetime
    status: Annotated[str, msgspec.Meta(description="held | used | released | returned")]
    code: str
    customer: str
    discount_minor: int
    currency: str
    channel: str
    order_id: uuid.UUID | None
    order_number: int | None
    order_total_minor: int | None

    @classmethod
    def of(cls, entry: UsageEntry) -> UseOut:
        r = entry.redemption
        return cls(
            at=r.created_at,
            status=r.status,
            code=r.code,
            customer=entry.email,
            discount_minor=r.discount_minor,
            currency=r.currency,
            channel=r.channel,
            order_id=r.order_id,
            order_number=entry.order_number,
            order_total_minor=entry.order_total_minor,
        )


class DayOut(msgspec.Struct):
    day: date
    orders: int
    discount_minor: int
    revenue_minor: int


class UsageReportOut(msgspec.Struct):
    promotion_id: uuid.UUID
    totals: UsageOut
    days: Annotated[list[DayOut], msgspec.Meta(description="Per day on the store's clock, newest first")]
    uses: Annotated[list[UseOut], msgspec.Meta(description="Every use, newest first (up to 200)")]

    @classmethod
    def of(cls, promotion_id: uuid.UUID, report: Report, uses: list[UsageEntry]) -> UsageReportOut:
        u = report.usage
        return cls(
            promotion_id=promotion_id,
            totals=UsageOut(u.orders, u.discount_minor, u.revenue_minor, u.held),
            days=[DayOut(d.day, d.orders, d.discount_minor, d.revenue_minor) for d in report.days],
            uses=[UseOut.of(entry) for entry in uses],
        )


__all__ = [
    "FORM_FIELDS",
    "PromotionIn",
    "PromotionOut",
    "PromotionPatch",
    "UsageReportOut",
    "form_errors",
    "form_values",
    "spec_from_form",
]
