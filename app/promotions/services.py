"""Promotion rules for the staff pages and the API: create, edit, pause, soft delete, list with usage, usage
history and reports; giving uses back. The only writer of the promotion tables (the hot path's claims are
fragments of this domain too: app/promotions/claims.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Category, Product
from app.core import audit, pg
from app.core.errors import NotFound, ValidationFailed
from app.core.money import Money, amount_text
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.promotions.claims import release_held, return_used
from app.promotions.engine import BPS, normalise_code, window
from app.promotions.models import KINDS, TARGETS, Promotion, PromotionCustomerUse, PromotionRedemption
from app.stores.models import Store
from app.stores.services import StoreService

CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,39}$")
MAX_NAME = 120
MAX_PRIORITY = 1000
STATES = ("active", "scheduled", "paused", "expired", "used_up", "deleted")
KIND_LABELS = {
    "percentage": "Percentage off",
    "fixed": "Fixed amount off",
    "free_shipping": "Free shipping",
    "buy_x_get_y": "Buy X get Y",
}
SETTINGS_KEY = "promotions"


@dataclass(frozen=True)
class PromotionSpec:
    """A promotion as staff describe it; the validity window is whole days in the store's time zone."""

    name: str
    kind: str
    code: str | None = None  # None or "": automatic
    percent_bps: int = 0
    amount_minor: int = 0
    buy_quantity: int = 0
    get_quantity: int = 0
    applies_to: str = "all"
    product_ids: tuple[str, ...] = ()
    category_ids: tuple[str, ...] = ()
    min_subtotal_minor: int = 0
    first_order_only: bool = False
    customers_only: bool = False
    starts_on: date | None = None
    ends_on: date | None = None  # the last day it applies (included)
    max_discount_minor: int | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    combinable: bool = False
    priority: int = 0

    @classmethod
    def of(cls, promotion: Promotion, timezone: str) -> PromotionSpec:
        zone = ZoneInfo(timezone)
        return cls(
            name=promotion.name,
            kind=promotion.kind,
            code=promotion.code,
            percent_bps=promotion.percent_bps,
            amount_minor=promotion.amount_minor,
            buy_quantity=promotion.buy_quantity,
            get_quantity=promotion.get_quantity,
            applies_to=promotion.applies_to,
            product_ids=tuple(promotion.product_ids),
            category_ids=tuple(promotion.category_ids),
            min_subtotal_minor=promotion.min_subtotal_minor,
            first_order_only=promotion.first_order_only,
            customers_only=promotion.customers_only,
            starts_on=promotion.starts_at.astimezone(zone).date() if promotion.starts_at else None,
            ends_on=(promotion.ends_at - timedelta(microseconds=1)).astimezone(zone).date()
            if promotion.ends_at
            else None,
            max_discount_minor=promotion.max_discount_minor,
            usage_limit=promotion.usage_limit,
            per_customer_limit=promotion.per_customer_limit,
            combinable=promotion.combinable,
            priority=promotion.priority,
        )


def state_of(promotion: Promotion, now: datetime) -> str:
    """What the list shows: active | scheduled | paused | expired | used_up | deleted."""
    if promotion.deleted_at is not None:
        return "deleted"
    if promotion.status == "paused":
        return "paused"
    if promotion.ends_at is not None and now >= promotion.ends_at:
        return "expired"
    if promotion.starts_at is not None and now < promotion.starts_at:
        return "scheduled"
    if promotion.usage_limit is not None and promotion.uses_claimed >= promotion.usage_limit:
        return "used_up"
    return "active"


def window_text(promotion: Promotion, timezone: str) -> str:
    """The validity window as whole days on the store's clock ("1 Dec 2026 to 3 Dec 2026" with a dash), or "always"."""
    spec = PromotionSpec.of(promotion, timezone)
    first = f"{spec.starts_on.day} {spec.starts_on:%b %Y}" if spec.starts_on else ""
    last = f"{spec.ends_on.day} {spec.ends_on:%b %Y}" if spec.ends_on else ""
    if first and last:
        return f"{first} – {last}"
    if first:
        return f"from {first}"
    return f"until {last}" if last else "always"


def describe(promotion: Promotion, currency: str) -> str:
    """The offer in a few words: "10 % off", "€5.00 off", "Free shipping", "Buy 2 get 1 free"."""
    percent = f"{promotion.percent_bps / 100:g} %"
    if promotion.kind == "percentage":
        text = f"{percent} off"
    elif promotion.kind == "fixed":
        text = f"{Money(promotion.amount_minor, currency)} off"
    elif promotion.kind == "free_shipping":
        text = "Free shipping"
    else:
        get = "free" if promotion.percent_bps == BPS else f"{percent} off"
        text = f"Buy {promotion.buy_quantity} get {promotion.get_quantity} {get}"
    if promotion.min_subtotal_minor:
        text += f" over {Money(promotion.min_subtotal_minor, currency)}"
    return text


@dataclass(frozen=True)
class Usage:
    """A promotion's uses that stuck (on orders not given back): how many, the discount given, the orders' total."""

    orders: int = 0
    discount_minor: int = 0
    revenue_minor: int = 0
    held: int = 0  # checkouts paying right now


@dataclass(frozen=True)
class PromotionRow:
    promotion: Promotion
    state: str
    usage: Usage


@dataclass(frozen=True)
class UsageEntry:
    redemption: PromotionRedemption
    order_number: int | None
    email: str
    order_total_minor: int | None


@dataclass(frozen=True)
class ReportDay:
    day: date
    orders: int
    discount_minor: int
    revenue_minor: int


@dataclass(frozen=True)
class Report:
    usage: Usage
    days: list[ReportDay] = field(default_factory=list)


@dataclass(frozen=True)
class ListFilter:
    state: str = ""  # one of STATES, or "" for all but deleted
    kind: str = ""
    search: str = ""  # the start of a code, or a word of the name


@dataclass(frozen=True)
class PromotionSettings:
    """The store's promotion settings: whether a whole-order refund (or a cancellation) gives the use back."""

    return_use_on_refund: bool = False

    @classmethod
    def of(cls, settings: dict[str, Any]) -> PromotionSettings:
        raw = settings.get(SETTINGS_KEY) or {}
        return cls(return_use_on_refund=bool(raw.get("return_use_on_refund", False)))


class PromotionService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    # ---- reading -------------------------------------------------------------------------------------

    async def get(self, promotion_id: uuid.UUID) -> Promotion:
        promotion = await self.session.get(Promotion, promotion_id)
        if promotion is None:
            raise NotFound("No such promotion.")
        return promotion

    async def code_problem(self, raw: str, *, exclude: uuid.UUID | None = None) -> str | None:
        """Why a code cannot be used for a new (or this) promotion; None when it can. "" is fine: automatic."""
        code = normalise_code(raw)
        if not code:
            return None
        if not CODE.match(code):
            return "3 to 40 letters, digits, - or _, starting with a letter or digit."
        query = select(Promotion.id).where(Promotion.code == code, Promotion.deleted_at.is_(None))
        if exclude is not None:
            query = query.where(Promotion.id != exclude)
        if await self.session.scalar(query.limit(1)) is not None:
            return f"{code} is already the code of another promotion."
        return None

    async def rows(self, filters: ListFilter, *, now: datetime | None = None) -> list[PromotionRow]:
        """Promotions, newest first, with their state and usage; deleted ones only when asked for."""
        now = now or datetime.now(UTC)
        query = select(Promotion).order_by(Promotion.created_at.desc()).limit(500)
        if filters.state != "deleted":
            query = query.where(Promotion.deleted_at.is_(None))
        if filters.kind in KINDS:
            query = query.where(Promotion.kind == filters.kind)
        search = filters.search.strip()
        if search:
            like = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(func.lower(Promotion.name).like(like), func.lower(Promotion.code).like(like)))
        promotions = list(await self.session.scalars(query))
        usage = await self._usage([p.id for p in promotions])
        rows = [PromotionRow(p, state_of(p, now), usage.get(p.id, Usage())) for p in promotions]
        return [row for row in rows if not filters.state or row.state == filters.state]

    async def usage_of(self, promotion_id: uuid.UUID) -> Usage:
        return (await self._usage([promotion_id])).get(promotion_id, Usage())

    async def _usage(self, promotion_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Usage]:
        if not promotion_ids:
            return {}
        r = PromotionRedemption
        used = r.status == "used"
        rows = await self.session.execute(
            select(
                r.promotion_id,
                func.count().filter(used),
                func.coalesce(func.sum(r.discount_minor).filter(used), 0),
                func.coalesce(func.sum(Order.total_minor).filter(used), 0),
                func.count().filter(r.status == "held"),
            )
            .outerjoin(Order, Order.id == r.order_id)
            .where(r.promotion_id.in_(promotion_ids), r.status.in_(("used", "held")))
            .group_by(r.promotion_id)
        )
        return {pid: Usage(int(n), int(given), int(revenue), int(held)) for pid, n, given, revenue, held in rows}

    async def history(self, promotion_id: uuid.UUID, *, limit: int = 200) -> list[UsageEntry]:
        """Every use of a promotion, newest first: held, used, released or returned, with its order."""
        rows = await self.session.execute(
            select(PromotionRedemption, Order.number, Order.email, Order.total_minor)
            .outerjoin(Order, Order.id == PromotionRedemption.order_id)
            .where(PromotionRedemption.promotion_id == promotion_id)
            .order_by(PromotionRedemption.created_at.desc(), PromotionRedemption.id.desc())
            .limit(limit)
        )
        return [
            UsageEntry(redemption, number, email or redemption.customer_key, total)
            for redemption, number, email, total in rows
        ]

    async def report(self, promotion_id: uuid.UUID, timezone: str) -> Report:
        """Orders, discount given and revenue per day (the store's days) of the uses that stuck."""
        day = cast(func.timezone(timezone, PromotionRedemption.created_at), Date)
        rows = await self.session.execute(
            select(
                day,
                func.count(),
                func.sum(PromotionRedemption.discount_minor),
                func.coalesce(func.sum(Order.total_minor), 0),
            )
            .outerjoin(Order, Order.id == PromotionRedemption.order_id)
            .where(PromotionRedemption.promotion_id == promotion_id, PromotionRedemption.status == "used")
            .group_by(day)
            .order_by(day.desc())
        )
        days = [ReportDay(d, int(n), int(given), int(revenue)) for d, n, given, revenue in rows]
        return Report(await self.usage_of(promotion_id), days)

    async def csv_rows(self, promotion_id: uuid.UUID, timezone: str) -> list[list[str]]:
        """The usage report as CSV rows: one per use, newest first (up to 50,000)."""
        promotion = await self.get(promotion_id)
        zone = ZoneInfo(timezone)
        header = ["used_at", "order", "customer", "code", "status", "discount", "order_total", "currency"]
        rows = [header]
        for entry in await self.history(promotion.id, limit=50_000):
            r = entry.redemption
            rows.append(
                [
                    r.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                    f"#{entry.order_number}" if entry.order_number else "",
                    entry.email,
                    r.code or "automatic",
                    r.status,
                    _decimal(r.discount_minor, r.currency),
                    _decimal(entry.order_total_minor, r.currency) if entry.order_total_minor is not None else "",
                    r.currency,
                ]
            )
        return rows

    async def settings(self) -> PromotionSettings:
        store = await self.session.get(Store, self.store_id)
        assert store is not None
        return PromotionSettings.of(store.settings)

    # ---- writing -------------------------------------------------------------------------------------

    async def create(self, spec: PromotionSpec, *, timezone: str, actor: Principal | None) -> Promotion:
        spec = await self.check(spec)
        promotion = Promotion(uses_claimed=0, status="active")
        self._apply(promotion, spec, timezone)
        self.session.add(promotion)
        await self.session.flush()
        audit.record(self.session, actor, "promotion.created", target_type="promotion", target_id=promotion.id,
                     details={"name": promotion.name, "code": promotion.code})  # fmt: skip
        return promotion

    async def update(
        self, promotion_id: uuid.UUID, spec: PromotionSpec, *, timezone: str, actor: Principal | None
    ) -> Promotion:
        """Change a promotion (under its row lock: checkouts claiming it wait). Setting a usage limit recounts
        the uses so far; setting a per-customer limit recounts each shopper's."""
        promotion = await self._locked(promotion_id)
        if promotion.deleted_at is not None:
            raise ValidationFailed("A deleted promotion cannot be changed.", fields={"form": "Deleted."})
        spec = await self.check(spec, exclude=promotion.id)
        had_limit, had_customer_limit = promotion.usage_limit is not None, promotion.per_customer_limit is not None
        self._apply(promotion, spec, timezone)
        if promotion.usage_limit is not None and not had_limit:
            promotion.uses_claimed = int(
                await self.session.scalar(
                    select(func.count())
                    .select_from(PromotionRedemption)
                    .where(
                        PromotionRedemption.promotion_id == promotion.id,
                        PromotionRedemption.status.in_(("held", "used")),
                    )
                )
                or 0
            )
        if promotion.per_customer_limit is not None and not had_customer_limit:
            await self._recount_customers(promotion.id)
        await self.session.flush()
        audit.record(self.session, actor, "promotion.updated", target_type="promotion", target_id=promotion.id,
                     details={"name": promotion.name, "code": promotion.code})  # fmt: skip
        return promotion

    async def set_status(self, promotion_id: uuid.UUID, status: str, *, actor: Principal | None) -> Promotion:
        """Pause or resume (``paused`` | ``active``); repeating the current status changes nothing."""
        if status not in ("active", "paused"):
            raise ValidationFailed("Choose active or paused.", fields={"status": "active or paused."})
        promotion = await self._locked(promotion_id)
        if promotion.deleted_at is not None:
            raise ValidationFailed("A deleted promotion cannot be resumed.", fields={"status": "Deleted."})
        if promotion.status != status:
            promotion.status = status
            audit.record(self.session, actor, f"promotion.{'paused' if status == 'paused' else 'resumed'}",
                         target_type="promotion", target_id=promotion.id, details={"name": promotion.name})  # fmt: skip
        return promotion

    async def delete(self, promotion_id: uuid.UUID, *, actor: Principal | None) -> Promotion:
        """Soft delete: the promotion stops applying at once, its code is free again, its history stays."""
        promotion = await self._locked(promotion_id)
        if promotion.deleted_at is None:
            promotion.deleted_at = datetime.now(UTC)
            promotion.status = "paused"
            audit.record(self.session, actor, "promotion.deleted", target_type="promotion", target_id=promotion.id,
                         details={"name": promotion.name, "code": promotion.code})  # fmt: skip
        return promotion

    async def set_settings(self, settings: PromotionSettings, *, actor: Principal | None) -> PromotionSettings:
        await StoreService(self.session, self.store_id).set_settings(
            {SETTINGS_KEY: {"return_use_on_refund": settings.return_use_on_refund}},
            actor=actor,
            action="settings.promotions",
        )
        return settings

    async def release(self, holder_id: uuid.UUID) -> int:
        """A failed or compensated checkout's held uses go back. Run after its stock was released (lock order)."""
        return await release_held(await pg.writer(self.session), self.store_id, holder_id)

    async def give_back(self, order_id: uuid.UUID) -> int:
        """An order refunded in full or cancelled gives its uses back, when the store says so. Twice is a no-op."""
        if not (await self.settings()).return_use_on_refund:
            return 0
        return await return_used(await pg.writer(self.session), self.store_id, order_id)

    # ---- helpers -------------------------------------------------------------------------------------

    async def _locked(self, promotion_id: uuid.UUID) -> Promotion:
        promotion = await self.session.scalar(
            select(Promotion)
            .where(Promotion.id == promotion_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if promotion is None:
            raise NotFound("No such promotion.")
        return promotion

    async def _recount_customers(self, promotion_id: uuid.UUID) -> None:
        counts = await self.session.execute(
            select(PromotionRedemption.customer_key, func.count())
            .where(PromotionRedemption.promotion_id == promotion_id, PromotionRedemption.status.in_(("held", "used")))
            .group_by(PromotionRedemption.customer_key)
        )
        existing = {
            row.customer_key: row
            for row in await self.session.scalars(
                select(PromotionCustomerUse).where(PromotionCustomerUse.promotion_id == promotion_id)
            )
        }
        for key, n in counts:
            row = existing.get(key)
            if row is None:
                self.session.add(PromotionCustomerUse(promotion_id=promotion_id, customer_key=key, uses=int(n)))
            else:
                row.uses = int(n)

    async def check(self, spec: PromotionSpec, *, exclude: uuid.UUID | None = None) -> PromotionSpec:
        """The spec, normalised (code upper-case, fields the kind ignores cleared), or ValidationFailed naming
        every field that is wrong, in the API's field names."""
        fields: dict[str, str] = {}
        name = spec.name.strip()
        if not name:
            fields["name"] = "Give the promotion a name your staff will recognise."
        elif len(name) > MAX_NAME:
            fields["name"] = f"At most {MAX_NAME} characters."
        code = normalise_code(spec.code or "") or None
        problem = await self.code_problem(code or "", exclude=exclude)
        if problem:
            fields["code"] = problem
        kind = spec.kind
        if kind not in KINDS:
            fields["kind"] = "Choose percentage, fixed amount, free shipping or buy X get Y."
        if kind in ("percentage", "buy_x_get_y") and not 1 <= spec.percent_bps <= BPS:
            fields["percent_bps"] = "A percentage above 0 and at most 100."
        if kind == "fixed" and spec.amount_minor <= 0:
            fields["amount_minor"] = "An amount above zero."
        if kind == "buy_x_get_y":
            if not 1 <= spec.buy_quantity <= 100:
                fields["buy_quantity"] = "From 1 to 100 items."
            if not 1 <= spec.get_quantity <= 100:
                fields["get_quantity"] = "From 1 to 100 items."
        applies_to = "all" if kind == "free_shipping" else spec.applies_to
        if applies_to not in TARGETS:
            fields["applies_to"] = "All products, some products or some categories."
        product_ids = tuple(dict.fromkeys(spec.product_ids)) if applies_to == "products" else ()
        category_ids = tuple(dict.fromkeys(spec.category_ids)) if applies_to == "categories" else ()
        if applies_to == "products" and not await self._known(Product, product_ids):
            fields["product_ids"] = "Choose at least one of your products."
        if applies_to == "categories" and not await self._known(Category, category_ids):
            fields["category_ids"] = "Choose at least one of your categories."
        if spec.min_subtotal_minor < 0:
            fields["min_subtotal_minor"] = "Zero or more."
        if spec.max_discount_minor is not None and spec.max_discount_minor <= 0:
            fields["max_discount_minor"] = "Leave it empty for no maximum, or an amount above zero."
        if spec.usage_limit is not None and spec.usage_limit <= 0:
            fields["usage_limit"] = "Leave it empty for no limit, or 1 or more."
        if spec.per_customer_limit is not None and spec.per_customer_limit <= 0:
            fields["per_customer_limit"] = "Leave it empty for no limit, or 1 or more."
        if not -MAX_PRIORITY <= spec.priority <= MAX_PRIORITY:
            fields["priority"] = f"From -{MAX_PRIORITY} to {MAX_PRIORITY}."
        if spec.starts_on and spec.ends_on and spec.ends_on < spec.starts_on:
            fields["ends_on"] = "The last day comes before the first."
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        return replace(
            spec,
            name=name,
            code=code,
            applies_to=applies_to,
            product_ids=product_ids,
            category_ids=category_ids,
            percent_bps=spec.percent_bps if kind in ("percentage", "buy_x_get_y") else 0,
            amount_minor=spec.amount_minor if kind == "fixed" else 0,
            buy_quantity=spec.buy_quantity if kind == "buy_x_get_y" else 0,
            get_quantity=spec.get_quantity if kind == "buy_x_get_y" else 0,
        )

    async def _known(self, model: type[Product] | type[Category], ids: Sequence[str]) -> bool:
        try:
            wanted = [uuid.UUID(i) for i in ids]
        except ValueError:
            return False
        if not wanted:
            return False
        found = await self.session.scalar(select(func.count()).select_from(model).where(model.id.in_(wanted)))
        return found == len(wanted)

    @staticmethod
    def _apply(promotion: Promotion, spec: PromotionSpec, timezone: str) -> None:
        promotion.starts_at, promotion.ends_at = window(spec.starts_on, spec.ends_on, timezone)
        for name in (
            "name", "code", "kind", "percent_bps", "amount_minor", "buy_quantity", "get_quantity", "applies_to",
            "min_subtotal_minor", "first_order_only", "customers_only", "max_discount_minor", "usage_limit",
            "per_customer_limit", "combinable", "priority",
        ):  # fmt: skip
            setattr(promotion, name, getattr(spec, name))
        promotion.product_ids = list(spec.product_ids)
        promotion.category_ids = list(spec.category_ids)


def _decimal(amount_minor: int, currency: str) -> str:
    return amount_text(amount_minor, currency)
