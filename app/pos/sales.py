"""A POS sale, exactly once (invariant 11): the claim ``(store, register, client_sale_id)`` is made in the same
statement as the order (channel ``pos``, paid, pickup: on the live board at once through its ``order.placed``
outbox event), its lines, the stock it sold (``sale`` movements) and its tenders.

One statement, composed of the domains' own fragments as ingestion's is (ADR 0003): the shift row held shared
(a close waits for it, and a sale never lands in a shift closed under it), the stock rows locked in variant
order (SELL_CHECK_CTES), the claim (ON CONFLICT DO NOTHING: a repeat writes nothing), the stock taken
(SELL_AVAILABLE_CTES), the order (PLACE_ORDER_CTES), the tenders, and a card tender's payment intent tied to the
order. A card sale runs it inside the transaction that locks its approved reader payment
(app/pos/readers/services.py ``card_payment_for_tender``), so a void of that payment comes before or after.

Two modes share every check (:class:`Mode`): a sale sent online (``POST /pos/api/sales``) is refused with a 422
naming the field for anything wrong, and nothing is written; a sale made offline (``POST /pos/api/sync``) was
already handed over, so a price changed since the tablet's catalog, stock short, a discount the PIN did not
approve, or an offline limit exceeded never drop it: it is sold as the tablet charged it, with its ``conflicts``,
and goes on the managers' review list. Stock short never takes on hand below zero or below what checkouts hold
reserved: each line takes what is free and the shortfall is recorded for a stock count.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from app.core import pg
from app.core.errors import Conflict, NotFound, TillError, TooManyRequests, ValidationFailed
from app.core.money import Money
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.inventory.services import SELL_AVAILABLE_CTES, SELL_CHECK_CTES, sell_params
from app.orders.models import Order
from app.orders.services import PLACE_ORDER_CTES, order_params
from app.pos.canonical import sale_fingerprint
from app.pos.pins import PinRefused, PinService
from app.pos.pricing import (
    PricedTicket,
    Tender,
    TenderInput,
    TicketLine,
    discounts_over_limit,
    price_ticket,
    settle_tenders,
)
from app.pos.promotions import ticket_promotions
from app.pos.readers.services import card_payment_for_tender
from app.pos.schemas import SaleIn, convert
from app.pos.settings import PosSettings
from app.promotions.claims import PROMO_CHECK_CTES, PROMO_CLAIM_CTES, claim_params, short_message
from app.stored_value.fragments import (
    POS_SV_CLAIM_GATE,
    POS_SV_CONFLICTS,
    POS_SV_GATE,
    POS_SV_SPEND_CTES,
    SV_CHECK_CTES,
    pos_params,
)
from app.stored_value.fragments import short_message as sv_short_message
from app.stored_value.pos import pos_tenders
from app.stored_value.purchases import BoughtCard, activate_pos_sale, gift_card_products, gift_card_variants
from app.stores.commerce import CommerceSettings
from app.stores.models import Store
from app.tax.providers import BuiltinTax

log = structlog.get_logger(__name__)

__all__ = [
    "CLOCK_SKEW",
    "Mode",
    "PosSales",
    "SaleAnswer",
    "StoredSale",
    "Till",
    "VariantInfo",
    "describe",
    "load_till",
    "load_variants",
    "stored_sales",
]

CLOCK_SKEW = timedelta(minutes=5)  # a tablet's clock may run this far ahead
SHIPPING = {"code": "pos", "label": "Counter", "method": "pickup", "amount_minor": 0}


class Mode(enum.Enum):
    ONLINE = "online"  # POST /pos/api/sales: refuse what is wrong
    SYNC = "sync"  # POST /pos/api/sync: the sale happened; record what is wrong as a conflict


@dataclass(frozen=True)
class Till:
    """One register and shift of a store, with the store's settings: loaded once per request or sync batch."""

    store: Store
    register_id: uuid.UUID
    register_name: str
    register_active: bool
    shift_id: uuid.UUID
    shift_closed: bool
    offline_key_ciphertext: str
    pos: PosSettings
    commerce: CommerceSettings
    tax: BuiltinTax

    @property
    def store_id(self) -> uuid.UUID:
        return self.store.id

    @property
    def currency(self) -> str:
        return self.store.currency


@dataclass(frozen=True)
class VariantInfo:
    id: uuid.UUID
    sku: str
    name: str  # as an order line names it: "Mug (Blue / L)"
    price_minor: int
    tax_class: str
    for_sale: bool
    product_id: uuid.UUID | None = None  # whether it is sold as a gift card (app/stored_value/purchases.py)


@dataclass(frozen=True)
class StoredSale:
    """A sale already claimed, as a repeat of it is answered."""

    sale_id: uuid.UUID
    request_hash: str
    order_id: uuid.UUID
    order_number: int
    total_minor: int
    change_minor: int
    review_status: str
    conflicts: list[dict[str, Any]]


@dataclass(frozen=True)
class SaleAnswer:
    """What became of one sale: ``created`` (new), ``existing`` (a repeat), ``review`` (new, with conflicts)."""

    status: Literal["created", "existing", "review"]
    sale_id: uuid.UUID
    order_id: uuid.UUID
    order_number: int
    total_minor: int
    change_minor: int
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    gift_cards: list[dict[str, Any]] = field(default_factory=list)  # sold gift cards: code once, then "" (issue 15)

    def body(self) -> dict[str, Any]:
        """The contract's answer to ``POST /pos/api/sales`` (the same for the first call and every repeat, but a
        sold gift card's ``code``, which only the first answer carries)."""
        body: dict[str, Any] = {
            "sale_id": str(self.sale_id),
            "order_id": str(self.order_id),
            "order_number": self.order_number,
            "total_minor": self.total_minor,
            "change_minor": self.change_minor,
            "status": "created",
        }
        if self.gift_cards:
            body["gift_cards"] = self.gift_cards
        return body

    @classmethod
    def of(cls, stored: StoredSale, status: Literal["created", "existing", "review"]) -> SaleAnswer:
        return cls(status, stored.sale_id, stored.order_id, stored.order_number, stored.total_minor,
                   stored.change_minor, stored.conflicts)  # fmt: skip


# -- loading ----------------------------------------------------------------------------------------------------

_TILL = """
    SELECT r.id AS register_id, r.name AS register_name, r.is_active, s.id AS shift_id, s.register_id AS shift_register,
           s.closed_at, s.offline_key_ciphertext
    FROM registers r LEFT JOIN shifts s ON s.id = $3 AND s.store_id = $1
    WHERE r.store_id = $1 AND r.id = $2
"""
_VARIANTS = """
    SELECT v.id, v.sku, v.price_minor, v.options, v.is_active, p.name, p.tax_class, p.is_active AS product_active,
           v.product_id
    FROM variants v JOIN products p ON p.id = v.product_id AND p.store_id = $1
    WHERE v.store_id = $1 AND v.id = ANY($2::uuid[])
"""
_STORED = """
    SELECT s.client_sale_id, s.id, s.request_hash, s.review_status, s.conflicts, o.id AS order_id, o.number,
           o.total_minor,
           (SELECT COALESCE(sum(t.change_minor), 0) FROM pos_tenders t WHERE t.store_id = $1 AND t.sale_id = s.id)
             AS change_minor
    FROM pos_sales s JOIN orders o ON o.id = s.order_id AND o.store_id = $1
    WHERE s.store_id = $1 AND s.register_id = $2 AND s.client_sale_id = ANY($3::uuid[])
"""
_CUSTOMER = "SELECT id, email, phone FROM customers WHERE store_id = $1 AND id = $2"
_CARD_USED = "SELECT reader_payment_id FROM pos_tenders WHERE store_id = $1 AND reader_payment_id = ANY($2::uuid[])"


async def load_till(conn: pg.Connection, store: Store, register_id: uuid.UUID, shift_id: uuid.UUID) -> Till:
    """The store's register and shift; NotFound for another store's (or a shift of another register)."""
    row = await conn.fetchrow(_TILL, store.id, register_id, shift_id)
    if row is None:
        raise NotFound("No such register.", fields={"register_id": "Not a register of this store."})
    if row["shift_id"] is None or row["shift_register"] != register_id:
        raise NotFound("No such shift on this register.", fields={"shift_id": "Not a shift of this register."})
    commerce = CommerceSettings.of(store.settings)
    return Till(
        store=store,
        register_id=register_id,
        register_name=row["register_name"],
        register_active=row["is_active"],
        shift_id=shift_id,
        shift_closed=row["closed_at"] is not None,
        offline_key_ciphertext=row["offline_key_ciphertext"],
        pos=PosSettings.of(store.settings),
        commerce=commerce,
        tax=BuiltinTax.from_settings(store.settings, store.currency),
    )


def _line_name(name: str, options: Mapping[str, Any] | None) -> str:
    title = " / ".join(str(v) for v in (options or {}).values())
    return f"{name} ({title})" if title else name


async def load_variants(
    conn: pg.Connection, store_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, VariantInfo]:
    rows = await conn.fetch(_VARIANTS, store_id, list(set(ids)))
    return {
        row["id"]: VariantInfo(
            id=row["id"],
            sku=row["sku"],
            name=_line_name(row["name"], row["options"]),
            price_minor=row["price_minor"],
            tax_class=row["tax_class"],
            for_sale=row["is_active"] and row["product_active"],
            product_id=row["product_id"],
        )
        for row in rows
    }


async def stored_sales(
    conn: pg.Connection, store_id: uuid.UUID, register_id: uuid.UUID, client_sale_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StoredSale]:
    rows = await conn.fetch(_STORED, store_id, register_id, list(client_sale_ids))
    return {
        row["client_sale_id"]: StoredSale(
            sale_id=row["id"],
            request_hash=row["request_hash"],
            order_id=row["order_id"],
            order_number=row["number"],
            total_minor=row["total_minor"],
            change_minor=int(row["change_minor"]),
            review_status=row["review_status"],
            conflicts=list(row["conflicts"] or []),
        )
        for row in rows
    }


# -- conflicts --------------------------------------------------------------------------------------------------


def describe(conflict: Mapping[str, Any], currency: str) -> str:
    """A conflict as a manager reads it on the review list."""
    kind = conflict.get("kind", "")

    def money(minor: Any) -> str:
        return Money(int(minor), currency).format()

    name = conflict.get("name", "an item")
    if kind == "price_changed":
        return (
            f"{name} was sold at {money(conflict['sold_minor'])}; the catalog said {money(conflict['catalog_minor'])}."
        )
    if kind == "not_for_sale":
        return f"{name} was sold, but it is no longer for sale."
    if kind == "total_differs":
        sold, priced = money(conflict["sold_minor"]), money(conflict["priced_minor"])
        return f"The tablet charged {sold}; today's tax rules give {priced}."
    if kind == "stock_short":
        return f"{name}: sold {conflict['quantity']}, only {conflict['available']} in stock (take a stock count)."
    if kind == "discount_not_approved":
        return f"A discount over the cashier's limit without a manager's approval ({conflict.get('why', 'no PIN')})."
    if kind == "offline_sale_limit":
        total, limit = money(conflict["total_minor"]), money(conflict["limit_minor"])
        return f"Sold offline for {total}, over the offline limit of {limit}."
    if kind == "offline_total_limit":
        return (f"The offline sales in a row came to {money(conflict['run_minor'])}, over the limit of "
                f"{money(conflict['limit_minor'])}.")  # fmt: skip
    if kind == "offline_too_old":
        return f"Reached Till {conflict['hours']} hours after the sale, over the limit of {conflict['limit_hours']}."
    if kind == "offline_tender":
        return f"Paid by {conflict['tender']} while offline; offline sales take {conflict['allowed']}."
    if kind == "shift_closed":
        return "Reached Till after its shift was closed (it is not in that shift's counted cash)."
    if kind == "promotion_refused":
        return f"Sold with the code {conflict.get('code') or '(none)'}, which no longer applies: {conflict['reason']}"
    if kind == "promotion_changed":
        sold, priced = money(conflict["sold_minor"]), money(conflict["priced_minor"])
        return f"The code {conflict['code']} took off {sold}; today it takes off {priced}."
    if kind == "gift_card_offline":
        return (f"{conflict['quantity']} × {name} sold offline: no gift card was activated. Issue "
                f"{conflict['quantity']} of {money(conflict['amount_minor'])} on the Gift cards page and give the "
                "customer the code.")  # fmt: skip
    if kind == "stored_value_short" and conflict.get("instrument") == "loyalty":  # available: points
        return (f"Points paid {money(int(conflict['wanted_minor']))} offline but the customer had "
                f"{int(conflict['available_minor'])} points free: only those were taken.")  # fmt: skip
    if kind == "stored_value_unknown" and conflict.get("instrument") == "loyalty":
        return f"Paid {money(conflict['wanted_minor'])} with points Till could not take: nothing was taken."
    if kind == "stored_value_short":
        what = "A gift card" if conflict.get("instrument") == "gift_card" else "Store credit"
        wanted, available = int(conflict["wanted_minor"]), int(conflict["available_minor"])
        return (f"{what} paid {money(wanted)} offline but had {money(available)} left: {money(wanted - available)} "
                "was not covered (the balance was not taken below zero).")  # fmt: skip
    if kind == "stored_value_unknown":
        what = "a gift card" if conflict.get("instrument") == "gift_card" else "store credit"
        return f"Paid {money(conflict['wanted_minor'])} by {what} Till could not find: nothing was taken from it."
    if kind == "customer_unknown":
        return "The customer the tablet named is not in this store; sold without one."
    return str(conflict.get("message") or kind)


def reason_of(conflicts: Sequence[Mapping[str, Any]], currency: str) -> str:
    return " ".join(describe(c, currency) for c in conflicts)


# -- one sale ---------------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A sale checked and priced, ready for its statement."""

    sale: SaleIn
    fingerprint: str
    priced: PricedTicket
    tenders: list[Tender]
    change_minor: int
    conflicts: list[dict[str, Any]]
    approved_by: uuid.UUID | None
    customer: tuple[uuid.UUID, str, str] | None  # id, e-mail, phone
    order_lines: list[dict[str, Any]]
    names: dict[str, str]  # variant id → line name, for the stock shortfall's words
    discounts: list[dict[str, Any]] = field(default_factory=list)  # the promotions' (kept on the order, claimed)
    stored_value: list[Any] = field(default_factory=list)  # gift card / store credit tenders (app/stored_value)
    # Online: the sale sells gift cards, activated in the sale's own transaction (so its receipt names them).
    sells_gift_cards: bool = False


class _Problems:
    """Online, every problem is a field of one 422; at sync, the sale's conflicts (or a refusal)."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.fields: dict[str, str] = {}
        self.conflicts: list[dict[str, Any]] = []

    def conflict(self, path: str, message: str, **data: Any) -> None:
        if self.mode is Mode.ONLINE:
            self.fields.setdefault(path, message)
        else:
            self.conflicts.append(data)

    def raise_if_any(self, detail: str) -> None:
        if self.fields:
            raise ValidationFailed(detail, fields=self.fields)


_SELL_TEMPLATE = f"""
    WITH shift_ok AS (
        SELECT id FROM shifts
        WHERE store_id = :store_id AND id = :shift_id AND register_id = :register_id
          AND (closed_at IS NULL OR :allow_closed::boolean)
        FOR SHARE
    ),
    {SELL_CHECK_CTES},
    claim AS (
        INSERT INTO pos_sales (id, store_id, register_id, shift_id, client_sale_id, sequence, order_id, cashier_id,
                               sold_at, offline, request_hash, conflicts, review_status, review_note,
                               discount_approved_by_id, created_at, updated_at)
        SELECT :sale_id, :store_id, :register_id, :shift_id, :client_sale_id, :sequence, :order_id, :cashier_id,
               :sold_at, :offline, :request_hash, c.conflicts,
               CASE WHEN jsonb_array_length(c.conflicts) > 0 THEN 'open' ELSE 'none' END, '', :approved_by_id,
               now(), now()
        FROM (
            SELECT :conflicts::jsonb || COALESCE((
                SELECT jsonb_agg(jsonb_build_object(
                           'kind', 'stock_short', 'variant_id', variant_id, 'quantity', quantity, 'available', free,
                           'name', COALESCE(:names::jsonb ->> variant_id::text, '')) ORDER BY variant_id)
                FROM stock_short), '[]'::jsonb) AS conflicts
        ) c
        WHERE EXISTS (SELECT 1 FROM shift_ok)
        ON CONFLICT (store_id, register_id, client_sale_id) DO NOTHING
        RETURNING id, review_status, conflicts
    ),
    go AS (SELECT id FROM claim),
    {SELL_AVAILABLE_CTES},
    customer AS (SELECT NULL::uuid AS id WHERE false),
    {PLACE_ORDER_CTES},
    tendered AS (
        INSERT INTO pos_tenders (id, store_id, sale_id, order_id, shift_id, kind, amount_minor, tendered_minor,
                                 change_minor, reader_payment_id, status, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, g.id, :order_id, :shift_id, t.kind, t.amount_minor, t.tendered_minor,
               t.change_minor, t.reader_payment_id, 'paid', now(), now()
        FROM go g, jsonb_to_recordset(:tenders::jsonb)
             AS t(kind text, amount_minor int, tendered_minor int, change_minor int, reader_payment_id uuid)
    ),
    card_intents AS (  -- a card tender's payment (opened by the reader, app/pos/readers) now belongs to the order
        UPDATE payment_intents i SET order_id = :order_id, version = i.version + 1, updated_at = now()
        FROM reader_payments rp
        WHERE rp.store_id = :store_id AND rp.id = ANY(:reader_payment_ids::uuid[]) AND i.store_id = :store_id
          AND i.id = rp.payment_intent_id AND i.order_id IS NULL AND EXISTS (SELECT 1 FROM go)
    )
    SELECT (SELECT number FROM placed) AS number, (SELECT review_status FROM claim) AS review_status,
           (SELECT conflicts FROM claim) AS conflicts, EXISTS (SELECT 1 FROM shift_ok) AS shift_ok,
           {{PROMO_SHORT}} AS promo_short, {{SV_SHORT}} AS sv_short
"""  # noqa: S608 (fragments are constants; values are parameters)
_SELL = _SELL_TEMPLATE.replace("{PROMO_SHORT}", "NULL::jsonb")
# A ticket with promotions: their uses are claimed in the same statement (ADR 0006), after the shift and the stock
# rows; the sale is gated on every use being left (``promo_short`` says which is not, and why).
_SELL_WITH_PROMOTION = (
    _SELL_TEMPLATE.replace("{PROMO_SHORT}", "(SELECT jsonb_agg(jsonb_build_array(id, code, reason)) FROM promo_short)")
    .replace(
        f"{SELL_CHECK_CTES},",
        f"""{SELL_CHECK_CTES},
    promo_gate AS (
        SELECT 1 WHERE EXISTS (SELECT 1 FROM shift_ok) AND (SELECT count(*) FROM stock_short) >= 0
    ),{PROMO_CHECK_CTES},""",  # noqa: S608 (constant fragments)
        1,
    )
    .replace(
        "WHERE EXISTS (SELECT 1 FROM shift_ok)\n        ON CONFLICT",
        "WHERE EXISTS (SELECT 1 FROM shift_ok) AND NOT EXISTS (SELECT 1 FROM promo_short)\n        ON CONFLICT",
        1,
    )
    .replace(
        "go AS (SELECT id FROM claim),",
        f"go AS (SELECT id FROM claim),\n    promo_holder AS (SELECT id FROM claim),{PROMO_CLAIM_CTES},",  # noqa: S608
        1,
    )
)


# The statements with a ``{SV_SHORT}`` marker, for ``_sell_sql`` to add stored value to; without it, none.
_SELL_SV_BASES = {False: _SELL, True: _SELL_WITH_PROMOTION}
_SELL = _SELL.replace("{SV_SHORT}", "NULL::jsonb")
_SELL_WITH_PROMOTION = _SELL_WITH_PROMOTION.replace("{SV_SHORT}", "NULL::jsonb")


@functools.lru_cache(maxsize=8)
def _sell_sql(promotions: bool, stored_value: bool, *, online: bool) -> str:
    """The sale's statement; with stored value its tenders' account rows are locked after the stock (and promotion)
    rows and spent with the sale (app/stored_value/fragments.py): online the claim is gated on every balance
    covering its tender; at sync each takes what is left and the shortfall becomes a conflict for review."""
    if not stored_value:
        return _SELL_WITH_PROMOTION if promotions else _SELL
    base = _SELL_SV_BASES[promotions]
    gate = POS_SV_GATE
    if promotions:
        gate = gate.replace(") >= 0)", ") >= 0 AND (SELECT count(*) FROM promo_short) >= 0)")
    anchor = "    claim AS (\n"
    sql = base.replace(anchor, f"    {gate},{SV_CHECK_CTES},\n{anchor}", 1)
    claim_end = "\n        ON CONFLICT (store_id, register_id, client_sale_id)"
    if online:
        sql = sql.replace(claim_end, POS_SV_CLAIM_GATE + claim_end, 1)
    else:
        conflicts = "FROM stock_short), '[]'::jsonb) AS conflicts"
        sql = sql.replace(conflicts, conflicts.replace(" AS conflicts", POS_SV_CONFLICTS + " AS conflicts"), 1)
    go = "    go AS (SELECT id FROM claim),"
    sql = sql.replace(go, go + POS_SV_SPEND_CTES, 1)
    return sql.replace(
        "{SV_SHORT}", "(SELECT jsonb_agg(jsonb_build_array(account_id, instrument, reason, spendable)) FROM sv_short)"
    )


class PosSales:
    """Sales of one store, as one cashier (the principal) makes them."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        store: Store,
        principal: Principal,
        *,
        now: datetime | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.redis = redis
        self.store = store
        self.principal = principal
        self.now = now or datetime.now(UTC)

    # -- online -----------------------------------------------------------------------------------------------

    async def sell(self, sale_json: Any) -> tuple[int, SaleAnswer]:
        """``POST /pos/api/sales``: 201 and the new sale, 200 and the same answer for a repeat; a 409 for the id
        used by another sale, a 404 for another store's register or shift, else a 422 naming the field."""
        if not isinstance(sale_json, dict):
            raise ValidationFailed("Send the sale as a JSON object.", fields={"body": "A JSON object."})
        sale = convert(sale_json, SaleIn)
        fingerprint = sale_fingerprint(sale_json)
        async with pg.connection(self.engine) as conn:
            till = await load_till(conn, self.store, sale.register_id, sale.shift_id)
            repeat = await self._repeat(conn, till, sale, fingerprint)
            if repeat is not None:
                return 200, await self._gift_cards(repeat)
            if till.shift_closed:
                raise ValidationFailed("This shift is closed; open a new one.", fields={"shift_id": "Closed."})
            if not till.register_active:
                raise ValidationFailed("This register is deactivated.", fields={"register_id": "Deactivated."})
            variants = await load_variants(conn, self.store.id, [line.variant_id for line in sale.lines])
            prepared = await self.prepare(conn, till, sale, fingerprint, variants, Mode.ONLINE)
        answer = await self.place(till, prepared, offline=False)
        if answer is None:
            raise ValidationFailed("This shift was closed just now; open a new one.", fields={"shift_id": "Closed."})
        if answer.status == "existing":  # a repeat that raced the first: its cards, without codes
            return 200, await self._gift_cards(answer)
        return 201, answer  # its gift cards (with their codes, this once) were activated with the sale

    async def _gift_cards(self, answer: SaleAnswer) -> SaleAnswer:
        """The gift cards the sale sold, activated now (once; a repeat answers them without codes)."""
        if not gift_card_products(self.store.settings):
            return answer
        async with self.sessions() as session, session.begin():
            cards = await activate_pos_sale(session, self.store, answer.order_id)
        if not cards:
            return answer
        sold = [{"last4": c.last4, "amount_minor": c.amount_minor, "code": c.code} for c in cards]
        return dataclasses.replace(answer, gift_cards=sold)

    async def _repeat(self, conn: pg.Connection, till: Till, sale: SaleIn, fingerprint: str) -> SaleAnswer | None:
        stored = (await stored_sales(conn, self.store.id, till.register_id, [sale.client_sale_id])).get(
            sale.client_sale_id
        )
        if stored is None:
            return None
        if stored.request_hash != fingerprint:
            raise _reused(stored)
        return SaleAnswer.of(stored, "existing")

    # -- shared ------------------------------------------------------------------------------------------------

    async def prepare(
        self,
        conn: pg.Connection,
        till: Till,
        sale: SaleIn,
        fingerprint: str,
        variants: Mapping[uuid.UUID, VariantInfo],
        mode: Mode,
    ) -> Prepared:
        """Every check of one sale. Online: ValidationFailed (fields by path) for the first problems found. At
        sync: ValidationFailed for what cannot be sold at all (a refusal), conflicts for the rest."""
        if sale.register_id != till.register_id or sale.shift_id != till.shift_id:
            raise ValidationFailed("The sale names another register or shift.", fields={"shift_id": "Not this shift."})
        if sale.sold_at > self.now + CLOCK_SKEW:
            raise ValidationFailed(
                "The sale's time is in the future: check the tablet's clock.", fields={"sold_at": "In the future."}
            )
        problems = _Problems(mode)
        lines: list[TicketLine] = []
        unknown: dict[str, str] = {}
        for i, line in enumerate(sale.lines):
            variant = variants.get(line.variant_id)
            if variant is None:
                unknown[f"lines.{i}.variant_id"] = "Not a product of this store."
                continue
            lines.append(TicketLine(line.variant_id, line.quantity, line.unit_price_minor, line.discount_minor,
                                    variant.tax_class))  # fmt: skip
            if not variant.for_sale:
                problems.conflict(f"lines.{i}.variant_id", f"{variant.name} is not for sale.", kind="not_for_sale",
                                  line=i, variant_id=str(variant.id), name=variant.name)  # fmt: skip
            elif line.unit_price_minor != variant.price_minor:
                problems.conflict(
                    f"lines.{i}.unit_price_minor", f"The price is now {variant.price_minor}.", kind="price_changed",
                    line=i, variant_id=str(variant.id), name=variant.name, sold_minor=line.unit_price_minor,
                    catalog_minor=variant.price_minor,
                )  # fmt: skip
        if unknown:
            raise ValidationFailed("Some lines are not products of this store; nothing was written.", fields=unknown)
        if mode is Mode.SYNC:  # made offline: Till could not activate a gift card then; the tablet refuses these
            await self._offline_gift_cards(sale, variants, problems)
        customer = await self._customer(conn, sale, problems)
        promotions = await self._promotions(conn, till, sale, customer, problems)
        charged = [
            TicketLine(t.variant_id, t.quantity, t.unit_price_minor, t.discount_minor + line.promotion_minor,
                       t.tax_class)
            for t, line in zip(lines, sale.lines, strict=True)
        ]  # fmt: skip
        priced = price_ticket(
            charged,
            sale.ticket_discount_minor,
            tax=till.tax,
            country=till.commerce.country,
            prices_include_tax=till.commerce.prices_include_tax,
            currency=till.currency,
        )
        if priced.total_minor != sale.total_minor:
            problems.conflict("total_minor", f"The sale comes to {priced.total_minor}.", kind="total_differs",
                              sold_minor=sale.total_minor, priced_minor=priced.total_minor)  # fmt: skip
        problems.raise_if_any("The sale does not match the catalog; nothing was written.")
        tenders, change = settle_tenders(
            [TenderInput(t.kind, t.amount_minor, t.tendered_minor, t.reader_payment_id) for t in sale.tenders],
            sale.total_minor,
        )
        card_ids = [t.reader_payment_id for t in tenders if t.reader_payment_id is not None]
        if card_ids and await conn.fetch(_CARD_USED, self.store.id, card_ids):
            raise Conflict("That card payment pays another sale already.", fields={"tenders": "Used by another sale."})
        stored_value = await pos_tenders(
            conn, self.redis, till, sale, tenders, problems.conflict, online=problems.mode is Mode.ONLINE
        )
        approved_by = await self._approval(till, sale, lines, problems)
        if mode is Mode.SYNC and till.shift_closed:
            problems.conflict("shift_id", "Closed.", kind="shift_closed")
        problems.raise_if_any("The sale cannot be made as it is; nothing was written.")
        order_lines = []
        for position, (line, priced_line) in enumerate(zip(sale.lines, priced.lines, strict=True)):
            variant = variants[line.variant_id]
            name = f"{variant.name} · {line.note.strip()}" if line.note.strip() else variant.name
            order_lines.append(
                {
                    "position": position,
                    "variant_id": str(variant.id),
                    "sku": variant.sku,
                    "name": name[:300],
                    "quantity": priced_line.quantity,
                    "unit_price_minor": priced_line.unit_price_minor,
                    "discount_minor": priced_line.discount_minor,
                    "tax_minor": priced_line.tax_minor,
                    "tax_rate_bps": priced_line.tax_rate_bps,
                    "total_minor": priced_line.total_minor,
                }
            )
        return Prepared(
            sale=sale,
            fingerprint=fingerprint,
            priced=priced,
            tenders=tenders,
            change_minor=change,
            conflicts=problems.conflicts,
            approved_by=approved_by,
            customer=customer,
            order_lines=order_lines,
            names={str(line.variant_id): variants[line.variant_id].name for line in sale.lines},
            discounts=promotions,
            stored_value=stored_value,
            sells_gift_cards=mode is Mode.ONLINE and _sells_gift_cards(self.store, sale, variants),
        )

    async def _offline_gift_cards(
        self, sale: SaleIn, variants: Mapping[uuid.UUID, VariantInfo], problems: _Problems
    ) -> None:
        if not gift_card_products(self.store.settings):
            return
        async with self.sessions() as session:
            gift = await gift_card_variants(session, self.store, [line.variant_id for line in sale.lines])
        for i, line in enumerate(sale.lines):
            if line.variant_id in gift:
                problems.conflict(f"lines.{i}.variant_id", "", kind="gift_card_offline", line=i,
                                  name=variants[line.variant_id].name, quantity=line.quantity,
                                  amount_minor=line.unit_price_minor)  # fmt: skip

    async def _promotions(
        self,
        conn: pg.Connection,
        till: Till,
        sale: SaleIn,
        customer: tuple[uuid.UUID, str, str] | None,
        problems: _Problems,
    ) -> list[dict[str, Any]]:
        """A ticket naming a code: the engine's discounts (to keep on the order and claim), checked against each
        line's ``promotion_minor``. Online a refused code or a part that differs is a 422; at sync the sale keeps
        what the tablet charged, with a conflict, and no use is claimed."""
        code = (sale.promotion_code or "").strip()
        if not code:
            for i, line in enumerate(sale.lines):
                if line.promotion_minor:
                    words = "No promotion code on the sale."
                    problems.conflict(f"lines.{i}.promotion_minor", words, kind="promotion_refused", code="",
                                      reason=words)  # fmt: skip
                    return []
            return []
        found = await ticket_promotions(
            conn, self.store, code, [(line.variant_id, line.quantity, line.unit_price_minor) for line in sale.lines],
            now=self.now, customer=(customer[0], customer[1]) if customer else None, claim=True,
        )  # fmt: skip
        if found.refused:
            if problems.mode is Mode.ONLINE:
                raise ValidationFailed(
                    f"The code {found.code} does not apply: {found.refused} Nothing was written.",
                    fields={"promotion_code": found.refused},
                )
            problems.conflict("promotion_code", found.refused, kind="promotion_refused", code=found.code,
                              reason=found.refused)  # fmt: skip
            return []
        differ = {
            f"lines.{i}.promotion_minor": f"The promotions take off {part}."
            for i, (line, part) in enumerate(zip(sale.lines, found.parts, strict=True))
            if line.promotion_minor != part
        }
        if differ:
            if problems.mode is Mode.ONLINE:
                raise ValidationFailed(
                    "The promotions changed since the ticket was priced; price it again. Nothing was written.",
                    fields=differ,
                )
            problems.conflict("promotion_code", "", kind="promotion_changed", code=found.code,
                              sold_minor=sum(line.promotion_minor for line in sale.lines),
                              priced_minor=sum(found.parts))  # fmt: skip
            return []
        return found.discounts

    async def _approval(
        self, till: Till, sale: SaleIn, lines: Sequence[TicketLine], problems: _Problems
    ) -> uuid.UUID | None:
        """Discounts within the cashier's limit need nobody; over it, a manager's PIN (the approver's user id)."""
        limit = till.pos.discount_limit_bps(self.principal.role)
        over = discounts_over_limit(lines, sale.ticket_discount_minor, limit)
        if not over:
            return None
        if not sale.manager_pin:
            if problems.mode is Mode.ONLINE:
                raise ValidationFailed(
                    "That discount is over your limit: a manager approves it with their PIN.",
                    fields={"manager_pin": "A manager's PIN is needed.", **over},
                )
            problems.conflict("manager_pin", "", kind="discount_not_approved", why="no PIN")
            return None
        async with self.sessions() as session:
            try:
                return await PinService(session, self.store.id).approver(
                    self.redis, sale.manager_pin, asked_by=self.principal.user_id
                )
            except (PinRefused, TooManyRequests) as exc:
                if problems.mode is Mode.ONLINE:
                    raise
                why = "too many wrong PINs: not checked" if isinstance(exc, TooManyRequests) else "wrong PIN"
                problems.conflict("manager_pin", "", kind="discount_not_approved", why=why)
                return None

    async def _customer(
        self, conn: pg.Connection, sale: SaleIn, problems: _Problems
    ) -> tuple[uuid.UUID, str, str] | None:
        if sale.customer_id is None:
            return None
        row = await conn.fetchrow(_CUSTOMER, self.store.id, sale.customer_id)
        if row is None:
            if problems.mode is Mode.ONLINE:
                raise NotFound("No such customer.", fields={"customer_id": "Not a customer of this store."})
            problems.conflict("customer_id", "", kind="customer_unknown", customer_id=str(sale.customer_id))
            return None
        return row["id"], row["email"], row["phone"]

    async def place(
        self, till: Till, prepared: Prepared, *, offline: bool, allow_closed: bool = False
    ) -> SaleAnswer | None:
        """Run the sale's statement. The answer, or None when the shift closed under it (nothing was written)."""
        sale, priced = prepared.sale, prepared.priced
        order = Order(
            id=uuid.uuid4(),
            store_id=self.store.id,
            channel="pos",
            status="placed",
            payment_status="paid",
            fulfilment_status="unfulfilled",
            fulfilment_method="pickup",
            email=prepared.customer[1] if prepared.customer else "",
            phone=prepared.customer[2] if prepared.customer else "",
            currency=till.currency,
            subtotal_minor=priced.subtotal_minor,
            discount_minor=priced.discount_minor,
            shipping_minor=0,
            tax_minor=priced.tax_minor,
            total_minor=priced.total_minor,
            prices_include_tax=till.commerce.prices_include_tax,
            shipping=dict(SHIPPING),
            address=None,
            snapshot_id=None,
            access_token=secrets.token_urlsafe(24),
            placed_at=sale.sold_at,
        )
        quantities: dict[uuid.UUID, int] = {}
        for line in sale.lines:
            quantities[line.variant_id] = quantities.get(line.variant_id, 0) + line.quantity
        card_ids = [t.reader_payment_id for t in prepared.tenders if t.reader_payment_id is not None]
        sale_id = uuid7()
        order.discounts = prepared.discounts
        claims = (
            claim_params(prepared.discounts, email=order.email, currency=till.currency, channel="pos",
                         order_id=order.id)
            if prepared.discounts
            else {}
        )  # fmt: skip
        spends = (
            pos_params(prepared.stored_value, currency=till.currency, actor=f"pos:{till.register_name}")
            if prepared.stored_value
            else {}
        )
        sql, args = pg.named(
            _sell_sql(bool(prepared.discounts), bool(prepared.stored_value), online=not offline),
            {
                **claims,
                **spends,
                "store_id": self.store.id,
                "register_id": till.register_id,
                "shift_id": till.shift_id,
                "allow_closed": allow_closed,
                "sale_id": sale_id,
                "client_sale_id": sale.client_sale_id,
                "sequence": sale.sequence,
                "order_id": order.id,
                "cashier_id": self.principal.user_id,
                "sold_at": sale.sold_at,
                "offline": offline,
                "request_hash": prepared.fingerprint,
                "conflicts": pg.jsonb(prepared.conflicts),
                "names": pg.jsonb(prepared.names),
                "approved_by_id": prepared.approved_by,
                "customer_id": prepared.customer[0] if prepared.customer else None,
                "tenders": pg.jsonb([_tender_row(t) for t in prepared.tenders]),
                "reader_payment_ids": card_ids,
                **sell_params(quantities, reference=f"pos:{sale.client_sale_id}", note=f"Sold at {till.register_name}"),
                **order_params(order, prepared.order_lines, sale.sold_at),
            },
        )
        try:
            row, bought = await self._run(sql, args, till, prepared, order.id)
        except asyncpg.UniqueViolationError as exc:
            if "reader_payment" in (exc.constraint_name or ""):
                raise Conflict("That card payment pays another sale already.",
                               fields={"tenders": "Used by another sale."}) from None  # fmt: skip
            raise
        if row["number"] is not None:
            conflicts = list(row["conflicts"] or [])
            log.info("pos.sale", store_id=str(self.store.id), order_id=str(order.id), number=row["number"],
                     offline=offline, review=row["review_status"] == "open")  # fmt: skip
            status: Literal["created", "review"] = "review" if row["review_status"] == "open" else "created"
            sold = [{"last4": c.last4, "amount_minor": c.amount_minor, "code": c.code} for c in bought]
            return SaleAnswer(status, sale_id, order.id, row["number"], priced.total_minor, prepared.change_minor,
                              conflicts, sold)  # fmt: skip
        async with pg.connection(self.engine) as conn:
            stored = (await stored_sales(conn, self.store.id, till.register_id, [sale.client_sale_id])).get(
                sale.client_sale_id
            )
        if stored is not None:  # a repeat that raced the first
            if stored.request_hash != prepared.fingerprint:
                raise _reused(stored)
            return SaleAnswer.of(stored, "existing")
        if not row["shift_ok"]:
            return None
        if row["sv_short"] and not offline:  # a balance spent meanwhile: refused, nothing written
            message, fields = sv_short_message(row["sv_short"], prepared.stored_value)
            raise Conflict(message.replace("Please review how you pay.", "Nothing was written."),
                           fields={"tenders": fields["stored_value"]})  # fmt: skip
        if row["promo_short"]:
            message, fields = short_message(row["promo_short"])
            if not offline:
                raise Conflict(message.replace("Please review the new total.", "Nothing was written; price the "
                               "ticket again."), fields={"promotion_code": fields["code"]})  # fmt: skip
            # made offline: it is sold as the tablet charged it, without the use, for the managers' review
            _, code, reason = row["promo_short"][0]
            prepared.conflicts.append({"kind": "promotion_refused", "code": code, "reason": fields["code"],
                                       "short": reason})  # fmt: skip
            prepared.discounts = []
            return await self.place(till, prepared, offline=offline, allow_closed=allow_closed)
        raise Conflict("The sale could not be recorded just now; send it again.")  # its claim vanished: retryable

    async def _run(
        self, sql: str, args: list[Any], till: Till, prepared: Prepared, order_id: uuid.UUID
    ) -> tuple[asyncpg.Record, list[BoughtCard]]:
        """The sale's statement; with card payments or gift cards sold, inside a transaction that also ties the
        card payments (first) and activates the gift cards (after it, once the order exists): a sale and the cards
        it sold commit together, so anything that reads the order after (its receipt) finds them."""
        cards = [(i, t) for i, t in enumerate(prepared.tenders) if t.reader_payment_id is not None]
        if not cards and not prepared.sells_gift_cards:
            async with pg.connection(self.engine) as conn:
                row: asyncpg.Record = await conn.fetchrow(sql, *args)
                return row, []
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            for i, tender in cards:
                assert tender.reader_payment_id is not None
                try:
                    await card_payment_for_tender(
                        session,
                        tender.reader_payment_id,
                        register_id=till.register_id,
                        amount_minor=tender.amount_minor,
                    )
                except TillError as exc:
                    raise type(exc)(exc.detail, fields={f"tenders.{i}.{k}": v for k, v in exc.fields.items()}) from None
            conn = await pg.writer(session)
            row = await conn.fetchrow(sql, *args)
            bought: list[BoughtCard] = []
            if prepared.sells_gift_cards and row["number"] is not None:
                bought = await activate_pos_sale(session, self.store, order_id)
            return row, bought


def _sells_gift_cards(store: Store, sale: SaleIn, variants: Mapping[uuid.UUID, VariantInfo]) -> bool:
    """Whether a line is a product the store sells as a gift card (no query: the variants carry their product)."""
    products = gift_card_products(store.settings)
    return bool(products) and any(
        str(variants[line.variant_id].product_id) in products for line in sale.lines if line.variant_id in variants
    )


def _tender_row(tender: Tender) -> dict[str, Any]:
    return {
        "kind": tender.kind,
        "amount_minor": tender.amount_minor,
        "tendered_minor": tender.tendered_minor,
        "change_minor": tender.change_minor,
        "reader_payment_id": str(tender.reader_payment_id) if tender.reader_payment_id else None,
    }


def _reused(stored: StoredSale) -> Conflict:
    return Conflict(
        f"Order #{stored.order_number} was made under this client_sale_id from a different sale; a new sale needs a "
        "new client_sale_id.",
        fields={"client_sale_id": "Used for a different sale."},
    )
