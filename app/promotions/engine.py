"""The pricing engine: which promotions apply to priced lines, for how much, and on which lines. Pure (no I/O),
integer minor units only (invariant 1), the same for a storefront checkout, an ingested order and a POS ticket.

    applied = apply_promotions(lines, offers, currency="EUR", now=now, timezone="Europe/Berlin", codes=["SUMMER10"])
    applied.line_discount("0")   # this line's part of every discount
    applied.rejected             # {"SUMMER10": "Spend €5.00 more to use this code."}

Rules, in order:
- A code the shopper gave is checked (status, validity window in the store's time zone, usage limits, signed-in
  and first-order conditions, minimum subtotal, the products or categories it covers); each refusal is a
  sentence for the shopper. An automatic promotion that does not qualify is simply left out.
- Stacking: the qualifying promotions are taken by priority (higher first; then automatic before codes, then
  oldest first). An exclusive promotion applies alone: taken first it ends the list, met later it is left out;
  combinable ones add up.
- Each discount is computed on what the lines still cost after the discounts before it, capped by its maximum,
  and split across the lines it covers in proportion to their remaining amounts (largest remainder), so the
  parts add up exactly and no line goes below zero. Free shipping only takes off the delivery charge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.core.money import Money, allocate

__all__ = [
    "BPS",
    "Applied",
    "Discount",
    "Offer",
    "PricedLine",
    "Shopper",
    "apply_promotions",
    "normalise_code",
    "why_not",
    "window",
]

BPS = 10_000  # basis points in 100 %


def normalise_code(raw: str) -> str:
    """Codes are case-insensitive: kept and compared upper-case, without surrounding spaces."""
    return raw.strip().upper()


@dataclass(frozen=True)
class PricedLine:
    """A line as priced before any promotion. ``key`` names it in the result (a quote uses its position)."""

    key: str
    quantity: int
    unit_price_minor: int
    product_id: str = ""
    category_id: str = ""

    @property
    def total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


def _ids(value: Any) -> frozenset[str]:
    return frozenset(str(v) for v in value or ())


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class Offer:
    """A promotion as the engine reads it (``Offer.of`` takes a ``promotions`` row as a mapping)."""

    id: str
    name: str
    kind: str  # percentage | fixed | free_shipping | buy_x_get_y
    code: str | None = None  # None: automatic
    percent_bps: int = 0
    amount_minor: int = 0
    buy_quantity: int = 0
    get_quantity: int = 0
    applies_to: str = "all"  # all | products | categories
    product_ids: frozenset[str] = frozenset()
    category_ids: frozenset[str] = frozenset()
    min_subtotal_minor: int = 0
    first_order_only: bool = False
    customers_only: bool = False
    starts_at: datetime | None = None
    ends_at: datetime | None = None  # exclusive
    max_discount_minor: int | None = None
    usage_limit: int | None = None
    uses_claimed: int = 0
    per_customer_limit: int | None = None
    combinable: bool = False
    priority: int = 0
    status: str = "active"
    deleted: bool = False
    created_at: datetime | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Offer:
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            kind=str(row["kind"]),
            code=row.get("code"),
            percent_bps=int(row.get("percent_bps") or 0),
            amount_minor=int(row.get("amount_minor") or 0),
            buy_quantity=int(row.get("buy_quantity") or 0),
            get_quantity=int(row.get("get_quantity") or 0),
            applies_to=str(row.get("applies_to") or "all"),
            product_ids=_ids(row.get("product_ids")),
            category_ids=_ids(row.get("category_ids")),
            min_subtotal_minor=int(row.get("min_subtotal_minor") or 0),
            first_order_only=bool(row.get("first_order_only")),
            customers_only=bool(row.get("customers_only")),
            starts_at=_moment(row.get("starts_at")),
            ends_at=_moment(row.get("ends_at")),
            max_discount_minor=row.get("max_discount_minor"),
            usage_limit=row.get("usage_limit"),
            uses_claimed=int(row.get("uses_claimed") or 0),
            per_customer_limit=row.get("per_customer_limit"),
            combinable=bool(row.get("combinable")),
            priority=int(row.get("priority") or 0),
            status=str(row.get("status") or "active"),
            deleted=row.get("deleted_at") is not None,
            created_at=_moment(row.get("created_at")),
        )

    @property
    def label(self) -> str:
        """How a shopper sees it next to a line: its code, else its name."""
        return self.code or self.name

    def covers(self, line: PricedLine) -> bool:
        if self.applies_to == "products":
            return line.product_id in self.product_ids
        if self.applies_to == "categories":
            return line.category_id in self.category_ids
        return True


@dataclass(frozen=True)
class Shopper:
    """What the conditions ask of the shopper."""

    signed_in: bool = False
    first_order: bool | None = None  # None: not known yet (a guest's cart before the e-mail): not refused
    uses: Mapping[str, int] = field(default_factory=dict)  # promotion id → this shopper's uses so far


@dataclass(frozen=True)
class Discount:
    """One promotion's part of the result: each line's amount (by key, only lines it reduces) and shipping's."""

    promotion_id: str
    name: str
    code: str  # "" for an automatic promotion
    kind: str
    lines: Mapping[str, int]
    shipping_minor: int = 0

    @property
    def goods_minor(self) -> int:
        return sum(self.lines.values())

    @property
    def amount_minor(self) -> int:
        return self.goods_minor + self.shipping_minor

    @property
    def label(self) -> str:
        return self.code or self.name

    def as_dict(self) -> dict[str, Any]:
        """As a quote freezes it (``checkout_snapshots.discounts``) and an order keeps it."""
        return {
            "promotion_id": self.promotion_id,
            "name": self.name,
            "code": self.code,
            "kind": self.kind,
            "amount_minor": self.amount_minor,
            "shipping_minor": self.shipping_minor,
            "lines": dict(self.lines),
        }


@dataclass(frozen=True)
class Applied:
    currency: str
    discounts: tuple[Discount, ...] = ()
    rejected: Mapping[str, str] = field(default_factory=dict)  # code → the reason, for the shopper

    def line_discount(self, key: str) -> int:
        return sum(d.lines.get(key, 0) for d in self.discounts)

    def line_labels(self, key: str) -> list[dict[str, Any]]:
        """Each discount on one line: [{"label": "SUMMER10", "amount_minor": 119}]."""
        return [{"label": d.label, "amount_minor": d.lines[key]} for d in self.discounts if d.lines.get(key)]

    @property
    def goods_minor(self) -> int:
        return sum(d.goods_minor for d in self.discounts)

    @property
    def shipping_minor(self) -> int:
        return sum(d.shipping_minor for d in self.discounts)

    @property
    def total_minor(self) -> int:
        return self.goods_minor + self.shipping_minor

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.discounts if d.code]


def window(starts_on: date | None, ends_on: date | None, timezone: str) -> tuple[datetime | None, datetime | None]:
    """Whole days on the store's clock as [start, end) moments: from the first day's midnight to the midnight
    after the last day (so a promotion whose last day is 3 Dec in Berlin ends at 23:00 UTC that day)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(starts_on, time(), zone).astimezone(UTC) if starts_on else None
    end = datetime.combine(ends_on + timedelta(days=1), time(), zone).astimezone(UTC) if ends_on else None
    return start, end


def _day(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    local = moment.astimezone(zone)
    year = "" if local.year == now.astimezone(zone).year else f" {local.year}"
    return f"{local.day} {local:%b}{year}"


def _round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)  # both >= 0 here


def why_not(
    offer: Offer,
    lines: Sequence[PricedLine],
    *,
    currency: str,
    now: datetime,
    timezone: str,
    shopper: Shopper,
    shipping_minor: int | None,
) -> str | None:
    """The reason ``offer`` does not apply, in the shopper's words ("Spend €5.00 more to use this code."); None
    when it does. The same checks run for automatic promotions, whose reasons nobody is shown."""
    zone = ZoneInfo(timezone)
    if offer.deleted:
        return f"We don't know the code {offer.code}. Check the spelling." if offer.code else "This offer has ended."
    if offer.status != "active":
        return "This code is not active at the moment."
    if offer.starts_at is not None and now < offer.starts_at:
        return f"This code starts on {_day(offer.starts_at, zone, now)}."
    if offer.ends_at is not None and now >= offer.ends_at:
        # ends_at is the first moment it no longer applies: the last day it did is the day before midnight.
        return f"This code expired on {_day(offer.ends_at - timedelta(microseconds=1), zone, now)}."
    if offer.usage_limit is not None and offer.uses_claimed >= offer.usage_limit:
        return "This code has been used up."
    if offer.customers_only and not shopper.signed_in:
        return "Sign in to your account to use this code."
    if offer.per_customer_limit is not None and shopper.uses.get(offer.id, 0) >= offer.per_customer_limit:
        if offer.per_customer_limit == 1:
            return "You have already used this code."
        return f"You have already used this code {offer.per_customer_limit} times, as often as it allows."
    if offer.first_order_only and shopper.first_order is False:
        return "This code is for a first order only."
    subtotal = sum(line.total_minor for line in lines)
    if subtotal < offer.min_subtotal_minor:
        return f"Spend {Money(offer.min_subtotal_minor - subtotal, currency)} more to use this code."
    covered = [line for line in lines if offer.covers(line)]
    if offer.kind != "free_shipping" and not covered:
        return "None of the items in your cart is part of this offer."
    if offer.kind == "buy_x_get_y":
        units = sum(line.quantity for line in covered)
        missing = offer.buy_quantity + offer.get_quantity - units
        if missing > 0:
            return f"Add {missing} more item{'s' if missing != 1 else ''} from this offer to use this code."
    if offer.kind == "free_shipping" and shipping_minor == 0:
        return "This order has no delivery charge to take off."
    return None


def _order(offer: Offer) -> tuple[int, int, datetime, str]:
    oldest = offer.created_at or datetime.min.replace(tzinfo=ZoneInfo("UTC"))
    return (-offer.priority, offer.code is not None, oldest, offer.id)


def _split(amount: int, keys: Sequence[str], remaining: Mapping[str, int]) -> dict[str, int]:
    """``amount`` across ``keys`` in proportion to what each still costs; never more than that on any line."""
    weights = [remaining[key] for key in keys]
    if amount <= 0 or not sum(weights):
        return {}
    return {key: part for key, part in zip(keys, allocate(amount, weights), strict=True) if part}


def _buy_x_get_y(offer: Offer, covered: Sequence[PricedLine], remaining: Mapping[str, int]) -> dict[str, int]:
    """Of every buy+get units (dearest first), the ``get`` cheapest are ``percent_bps`` off."""
    group = offer.buy_quantity + offer.get_quantity
    if group <= 0 or offer.get_quantity <= 0:
        return {}
    units = sorted(
        (
            (line.unit_price_minor, -position, line.key)
            for position, line in enumerate(covered)
            for _ in range(line.quantity)
        ),
        reverse=True,
    )
    free = (len(units) // group) * offer.get_quantity
    parts: dict[str, int] = {}
    for price, _, key in units[len(units) - free :] if free else []:
        parts[key] = parts.get(key, 0) + _round_half_up(price * offer.percent_bps, BPS)
    return {key: min(amount, remaining[key]) for key, amount in parts.items() if min(amount, remaining[key])}


def apply_promotions(
    lines: Sequence[PricedLine],
    offers: Sequence[Offer],
    *,
    currency: str,
    now: datetime,
    timezone: str,
    codes: Sequence[str] = (),
    shopper: Shopper | None = None,
    shipping_minor: int | None = 0,
) -> Applied:
    """The discounts on ``lines`` (and on ``shipping_minor``; None: not known yet, as in a cart) from the store's
    ``offers``: every automatic one that qualifies and each of ``codes`` (unknown and refused codes are in
    ``rejected`` with their reason, and change nothing)."""
    shopper = shopper or Shopper()

    def reason_for(offer: Offer) -> str | None:
        return why_not(
            offer, lines, currency=currency, now=now, timezone=timezone, shopper=shopper, shipping_minor=shipping_minor
        )

    by_code = {offer.code: offer for offer in offers if offer.code and not offer.deleted}
    rejected: dict[str, str] = {}
    candidates: list[Offer] = []
    for code in dict.fromkeys(normalise_code(c) for c in codes if c.strip()):
        found = by_code.get(code)
        reason = reason_for(found) if found else f"We don't know the code {code}. Check the spelling."
        if reason:
            rejected[code] = reason
        elif found is not None and found not in candidates:
            candidates.append(found)
    candidates += [offer for offer in offers if offer.code is None and reason_for(offer) is None]

    chosen: list[Offer] = []
    for offer in sorted(candidates, key=_order):
        if chosen and not (offer.combinable and chosen[0].combinable):
            if offer.code:
                rejected[offer.code] = f"This code can't be combined with {chosen[0].label}."
            continue
        chosen.append(offer)

    remaining = {line.key: line.total_minor for line in lines}
    shipping_left = shipping_minor or 0
    discounts: list[Discount] = []
    for offer in chosen:
        covered = [line for line in lines if offer.covers(line)]
        keys = [line.key for line in covered]
        parts: dict[str, int] = {}
        shipping = 0
        if offer.kind == "free_shipping":
            shipping = shipping_left
            if offer.max_discount_minor is not None:
                shipping = min(shipping, offer.max_discount_minor)
        elif offer.kind == "buy_x_get_y":
            parts = _buy_x_get_y(offer, covered, remaining)
            total = sum(parts.values())
            if offer.max_discount_minor is not None and total > offer.max_discount_minor:
                parts = _split(offer.max_discount_minor, list(parts), parts)
        else:
            base = sum(remaining[key] for key in keys)
            amount = _round_half_up(base * offer.percent_bps, BPS) if offer.kind == "percentage" else offer.amount_minor
            if offer.max_discount_minor is not None:
                amount = min(amount, offer.max_discount_minor)
            parts = _split(min(amount, base), keys, remaining)
        pending = offer.kind == "free_shipping" and shipping_minor is None  # applies once delivery is chosen
        if not parts and not shipping and not pending:
            if offer.code:
                rejected[offer.code] = "This code takes nothing more off this order."
            continue
        for key, part in parts.items():
            remaining[key] -= part
        shipping_left -= shipping
        discounts.append(Discount(offer.id, offer.name, offer.code or "", offer.kind, parts, shipping))
    return Applied(currency, tuple(discounts), rejected)
