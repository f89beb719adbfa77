"""POST /webhooks/orders/ingest: a sales channel's order, checked and placed exactly once.

Checks, in order, each answered as ``application/problem+json``:

  1. the bearer API token (401), and that its store is the one the body names (403);
  2. the signature ``X-Till-Signature: t=<unix>,v1=<HMAC-SHA256 of "<t>." + raw body>`` with the store's
     ingestion secret, 5 minutes either side (400);
  3. the body's shape (422, ``fields`` by path);
  4. every item's unit price against the catalog (422, ``lines``: sku, given and catalog price);
  5. a ``promotion_code``, checked like a shopper's (422 ``promotion_invalid`` naming it, with the reason);
  6. the totals: subtotal, the code's discount, tax by the store's rules after it, total (422, ``fields``);
  7. create-or-dedupe in one statement (ADR 0003) under the unique (store, client_order_id): 201 with the new
     order; 200 with the same order for the same body; 409 for a different body under the same id; 409 when
     stock is short (nothing sold: on hand never goes below what is free); 409 ``promotion_unavailable``
     when the code's last use went to another order meanwhile (its use is claimed in the same statement, ADR
     0006).

The statement claims the client order id, sells the stock (with 'sale' movements), finds or makes the
customer, writes the order, its lines, its ``order.placed`` outbox event and the accepted attempt, all or
nothing. Every other answer to an authenticated caller is logged as an attempt in a statement of its own,
so a rejection writes nothing else. An unauthenticated call proves no store, so it is only logged to the
application log (it would otherwise let anyone fill any store's attempts page).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.catalog.services import CatalogService
from app.core import pg
from app.core.errors import ValidationFailed
from app.customers.services import GUEST_CUSTOMER_CTE, guest_customer_params
from app.ingestion.credentials import verifying_secrets
from app.ingestion.pricing import Priced, price_differences, price_order
from app.ingestion.schemas import IngestOrder, parse_order
from app.inventory.services import SELL_CHECK_CTES, SELL_CTES, sell_params
from app.orders.services import PLACE_ORDER_CTES, order_params
from app.payments.signing import DEFAULT_TOLERANCE_S, InvalidSignature, verify
from app.promotions.claims import (
    PROMO_CHECK_CTES,
    PROMO_CLAIM_CTES,
    claim_params,
    ensure_customer_uses,
    load_offers,
    short_message,
)
from app.promotions.engine import Applied, apply_promotions, normalise_code
from app.stores.models import Store
from app.stores.services import caller_for_token

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "x-till-signature"

_PLACE_TEMPLATE = """
    WITH {SELL_CHECK_CTES},{PROMO_CHECK}
    claim AS (
        INSERT INTO ingested_orders (id, store_id, client_order_id, request_hash, order_id, created_at, updated_at)
        SELECT :claim_id, :store_id, :client_order_id, :request_hash, :order_id, :order_placed_at, :order_placed_at
        WHERE NOT EXISTS (SELECT 1 FROM stock_short){PROMO_GATE}
        ON CONFLICT (store_id, client_order_id) DO NOTHING
        RETURNING id
    ),
    go AS (SELECT id FROM claim),{PROMO_CLAIM}
    {SELL_CTES},
    {GUEST_CUSTOMER_CTE},
    {PLACE_ORDER_CTES},
    accepted_logged AS (
        INSERT INTO ingestion_attempts (id, store_id, client_order_id, outcome, status_code, reason, lines, order_id,
                                        token_id, remote_addr, received_at, created_at, updated_at)
        SELECT :attempt_id, :store_id, :client_order_id, 'accepted', 201, '', '[]'::jsonb, p.id, :attempt_token_id,
               :attempt_remote_addr, :attempt_received_at, now(), now()
        FROM placed p
    )
    SELECT (SELECT number FROM placed) AS number,
           (SELECT jsonb_agg(jsonb_build_array(variant_id, quantity, free)) FROM stock_short) AS short,
           {PROMO_SHORT} AS promo_short
"""
_FRAGMENTS = {
    "SELL_CHECK_CTES": SELL_CHECK_CTES,
    "SELL_CTES": SELL_CTES,
    "GUEST_CUSTOMER_CTE": GUEST_CUSTOMER_CTE,
    "PLACE_ORDER_CTES": PLACE_ORDER_CTES,
}
_PLACE = _PLACE_TEMPLATE.format(**_FRAGMENTS, PROMO_CHECK="", PROMO_GATE="", PROMO_CLAIM="", PROMO_SHORT="NULL")
# An order naming a code: its use is claimed in the same statement once the stock fits (ADR 0006), and the
# ingestion claim is gated on it; the use is recorded as used on the order at once.
_PLACE_WITH_PROMOTION = _PLACE_TEMPLATE.format(
    **_FRAGMENTS,
    PROMO_CHECK=f"""
    promo_gate AS (SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM stock_short)),
    {PROMO_CHECK_CTES},""",  # noqa: S608 (constant fragments)
    PROMO_GATE=" AND NOT EXISTS (SELECT 1 FROM promo_short)",
    PROMO_CLAIM=f"""
    promo_holder AS (SELECT id FROM claim),
    {PROMO_CLAIM_CTES},""",  # noqa: S608 (constant fragments)
    PROMO_SHORT="(SELECT jsonb_agg(jsonb_build_array(id, code, reason)) FROM promo_short)",
)

# The order a client order id made, as the answer shows it (the same for the first call and every repeat).
_STORED = """
    SELECT c.request_hash, o.id, o.number, o.channel, o.status, o.payment_status, o.fulfilment_status,
           o.fulfilment_method, o.email, o.currency, o.subtotal_minor, o.shipping_minor, o.tax_minor, o.total_minor,
           o.prices_include_tax, o.placed_at,
           (SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'name', l.name, 'quantity', l.quantity,
                                                'unit_price_minor', l.unit_price_minor, 'tax_minor', l.tax_minor,
                                                'tax_rate_bps', l.tax_rate_bps, 'total_minor', l.total_minor)
                             ORDER BY l.position)
            FROM order_lines l WHERE l.order_id = o.id AND l.store_id = $1) AS lines
    FROM ingested_orders c JOIN orders o ON o.id = c.order_id AND o.store_id = $1
    WHERE c.store_id = $1 AND c.client_order_id = $2
"""
_LOG_ATTEMPT = """
    INSERT INTO ingestion_attempts (id, store_id, client_order_id, outcome, status_code, reason, lines, order_id,
                                    token_id, remote_addr, received_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, now(), now())
"""


@dataclass(frozen=True)
class Answer:
    """What the endpoint answers: a status and a JSON body (problem+json unless 200/201)."""

    status: int
    body: dict[str, Any]

    @property
    def is_problem(self) -> bool:
        return self.status >= 400


@dataclass
class _Attempt:
    """What the attempts log records about one authenticated call."""

    store_id: uuid.UUID
    token_id: uuid.UUID | None
    remote_addr: str
    received_at: datetime
    client_order_id: str = ""
    id: uuid.UUID = field(default_factory=uuid.uuid4)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    fields: dict[str, str] | None = None,
    lines: list[dict[str, Any]] | None = None,
) -> Answer:
    body: dict[str, Any] = {"type": f"https://till.dev/problems/{code}", "title": title, "status": status}
    body["detail"] = detail
    if fields:
        body["fields"] = fields
    if lines is not None:
        body["lines"] = lines
    return Answer(status, body)


def request_hash(payload: Any) -> str:
    """The body's fingerprint, independent of key order and whitespace: the same order sent again matches."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bearer(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


class OrderIngestion:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.engine = engine
        self.sessions = sessions

    async def ingest(self, raw: bytes, *, authorization: str | None, signature: str, remote_addr: str) -> Answer:
        now = datetime.now(UTC)
        token = _bearer(authorization)
        async with pg.connection(self.engine) as conn:
            caller = await caller_for_token(conn, token) if token else None
            if caller is None:
                log.warning("ingestion.unauthenticated", remote_addr=remote_addr, token_sent=token is not None)
                return problem(
                    401, "unauthorized", "Sign-in required", "Send Authorization: Bearer <an active API token>."
                )
            store = caller.store
            attempt = _Attempt(store.id, caller.principal.token_id, remote_addr[:64], now)
            payload = _json(raw)
            if isinstance(payload, dict) and isinstance(payload.get("client_order_id"), str):
                attempt.client_order_id = payload["client_order_id"][:100]
            named = payload.get("store") if isinstance(payload, dict) else None
            if isinstance(named, str) and named.strip() not in (store.slug, str(store.id)):
                return await self._reject(
                    conn,
                    attempt,
                    problem(403, "forbidden", "Forbidden", "This API token belongs to another store."),
                    reason=f"token of store {store.slug} used for store {named.strip()[:63]}",
                )
            keys = await verifying_secrets(conn, store.id, now=now)
            answer = self._check_signature(raw, signature, keys, now)
            if answer is not None:
                return await self._reject(conn, attempt, answer)
            try:
                order = parse_order(payload)
                if order.totals.currency != store.currency:
                    raise ValidationFailed(
                        "The order is in another currency than the store.",
                        fields={"totals.currency": f"The store sells in {store.currency}."},
                    )
            except ValidationFailed as exc:
                answer = problem(422, "validation_failed", "Invalid input", exc.detail, fields=exc.fields)
                return await self._reject(conn, attempt, answer, reason=_fields_reason(exc.fields))
        async with self.sessions() as session:
            variants = await CatalogService(session, store.id).variants_by_sku(sorted({i.sku for i in order.items}))
        differ = price_differences(order, variants)
        if differ:
            answer = problem(
                422,
                "price_mismatch",
                "Prices differ from the catalog",
                f"{len(differ)} line{'s' if len(differ) != 1 else ''} do{'' if len(differ) != 1 else 'es'} not match "
                "the catalog; nothing was placed.",
                lines=differ,
            )
            return await self._log_alone(attempt, answer, lines=differ)
        applied = await self._promotion(store, order, variants, now) if order.promotion_code else None
        if isinstance(applied, Answer):
            return await self._log_alone(attempt, applied)
        try:
            priced = price_order(order, store, variants, now, applied)
        except ValidationFailed as exc:
            answer = problem(422, "totals_mismatch", "Totals do not add up", exc.detail, fields=exc.fields)
            return await self._log_alone(attempt, answer, reason=_fields_reason(exc.fields))
        return await self._place(store, order, priced, payload, attempt, now)

    async def _promotion(
        self, store: Store, order: IngestOrder, variants: dict[str, Any], now: datetime
    ) -> Applied | Answer:
        """The named code's discount on the order's lines (only that code: a channel prices its own orders, so
        the store's automatic promotions are not added), or the 422 naming it. Makes the customer's use-count
        row for a per-customer limit (ADR 0006)."""
        code = normalise_code(order.promotion_code)
        skus = {item.sku for item in order.items}
        async with pg.connection(self.engine) as conn:
            context = await load_offers(
                conn,
                store.id,
                codes=[code],
                variant_ids=[variants[sku].id for sku in skus],
                email=order.customer.email,
            )
            offers = [offer for offer in context.offers if offer.code == code]
            lines = [
                context.line(str(i), variants[item.sku].id, item.quantity, item.unit_price_minor)
                for i, item in enumerate(order.items)
            ]
            applied = apply_promotions(
                lines,
                offers,
                currency=store.currency,
                now=now,
                timezone=store.timezone,
                codes=[code],
                shopper=context.shopper,
                shipping_minor=order.totals.shipping_minor,
            )
            if code in applied.rejected:
                reason = applied.rejected[code]
                return problem(
                    422,
                    "promotion_invalid",
                    "Promotion code refused",
                    f"The code {code} does not apply: {reason} Nothing was placed.",
                    fields={"promotion_code": reason},
                )
            await ensure_customer_uses(
                conn, store.id, offers, [d.promotion_id for d in applied.discounts], order.customer.email
            )
        return applied

    @staticmethod
    def _check_signature(raw: bytes, header: str, keys: Sequence[str], now: datetime) -> Answer | None:
        if not keys:
            return problem(
                400,
                "ingestion_not_set_up",
                "Ingestion is not set up",
                "This store has no ingestion secret yet: an owner creates one on /staff/ingestion.",
            )
        reason = "missing signature"
        for key in keys:
            try:
                verify(raw, header, key, tolerance_s=DEFAULT_TOLERANCE_S, now=int(now.timestamp()))
                return None
            except InvalidSignature as exc:
                reason = exc.reason
                if reason != "no matching signature":  # missing, malformed or stale: the same for every key
                    break
        return problem(
            400,
            "invalid_signature",
            "Invalid signature",
            f"The X-Till-Signature header did not verify: {reason}.",
            fields={"x-till-signature": reason},
        )

    async def _place(
        self,
        store: Store,
        order: IngestOrder,
        priced: Priced,
        payload: Any,
        attempt: _Attempt,
        now: datetime,
    ) -> Answer:
        fingerprint = request_hash(payload)
        discounts = priced.order.discounts or []
        promotions = (
            claim_params(
                discounts,
                email=order.customer.email,
                currency=store.currency,
                channel="ingested",
                order_id=priced.order.id,
            )
            if discounts
            else {}
        )
        sql, args = pg.named(
            _PLACE_WITH_PROMOTION if discounts else _PLACE,
            {
                **promotions,
                "store_id": store.id,
                "claim_id": uuid.uuid4(),
                "client_order_id": order.client_order_id,
                "request_hash": fingerprint,
                "attempt_id": attempt.id,
                "attempt_token_id": attempt.token_id,
                "attempt_remote_addr": attempt.remote_addr,
                "attempt_received_at": attempt.received_at,
                **sell_params(priced.quantities, reference=order.client_order_id, note="Sold through a sales channel"),
                **guest_customer_params(email=order.customer.email, phone=order.customer.phone, customer_id=None),
                **order_params(priced.order, priced.lines, now),
            },
        )
        async with pg.connection(self.engine) as conn:
            row = await conn.fetchrow(sql, *args)
            stored = await conn.fetchrow(_STORED, store.id, order.client_order_id)
            if row["number"] is not None and stored is not None:
                log.info("ingestion.accepted", store_id=str(store.id), order_id=str(stored["id"]))
                return Answer(201, _order_body(order.client_order_id, stored))
            if stored is not None and stored["request_hash"] == fingerprint:
                return await self._log(
                    conn,
                    attempt,
                    Answer(200, _order_body(order.client_order_id, stored)),
                    outcome="replayed",
                    order_id=stored["id"],
                )
            if stored is not None:
                answer = problem(
                    409,
                    "client_order_id_reused",
                    "Client order id already used",
                    f"Order #{stored['number']} was made under client_order_id {order.client_order_id!r} from a "
                    "different body; send a new client_order_id for a new order.",
                    fields={"client_order_id": "Used for a different order."},
                )
                return await self._log(conn, attempt, answer, order_id=stored["id"], reason="same id, different body")
            if row["promo_short"]:
                message, fields = short_message(row["promo_short"])
                answer = problem(
                    409,
                    "promotion_unavailable",
                    "Promotion unavailable",
                    f"{message.removesuffix(' Please review the new total.')} Nothing was placed.",
                    fields={"promotion_code": fields["code"]},
                )
                return await self._log(conn, attempt, answer)
            short = [
                {"sku": priced.skus[uuid.UUID(str(v))], "quantity": q, "available": max(int(f), 0)}
                for v, q, f in sorted(row["short"] or [], key=lambda short: priced.skus[uuid.UUID(str(short[0]))])
            ]
            if not short:  # the claim that blocked ours is gone again (its order was deleted): rare, retryable
                answer = problem(409, "conflict", "Conflict", "The order could not be placed just now; send it again.")
                return await self._log(conn, attempt, answer)
            answer = problem(
                409,
                "sold_out",
                "Not enough stock",
                "Some items are not in stock in the quantities ordered; nothing was placed.",
                lines=short,
            )
            return await self._log(conn, attempt, answer, lines=short)

    async def _reject(self, conn: pg.Connection, attempt: _Attempt, answer: Answer, *, reason: str = "") -> Answer:
        return await self._log(conn, attempt, answer, reason=reason)

    async def _log_alone(
        self, attempt: _Attempt, answer: Answer, *, reason: str = "", lines: list[dict[str, Any]] | None = None
    ) -> Answer:
        async with pg.connection(self.engine) as conn:
            return await self._log(conn, attempt, answer, reason=reason, lines=lines)

    @staticmethod
    async def _log(
        conn: pg.Connection,
        attempt: _Attempt,
        answer: Answer,
        *,
        outcome: str = "rejected",
        reason: str = "",
        lines: list[dict[str, Any]] | None = None,
        order_id: uuid.UUID | None = None,
    ) -> Answer:
        """Record one answer in the attempts log, on its own (autocommit): a rejection writes nothing else."""
        if not reason and answer.is_problem:
            reason = str(answer.body.get("detail", ""))
        await conn.execute(
            _LOG_ATTEMPT,
            attempt.id,
            attempt.store_id,
            attempt.client_order_id,
            outcome,
            answer.status,
            reason[:300],
            pg.jsonb(lines or []),
            order_id,
            attempt.token_id,
            attempt.remote_addr,
            attempt.received_at,
        )
        log.info(
            f"ingestion.{outcome}",
            store_id=str(attempt.store_id),
            client_order_id=attempt.client_order_id,
            status=answer.status,
            reason=reason[:300],
        )
        return answer


def _fields_reason(fields: dict[str, str]) -> str:
    return "; ".join(f"{name}: {message}" for name, message in fields.items())


def _order_body(client_order_id: str, row: pg.Record) -> dict[str, Any]:
    return {
        "order": {
            "id": str(row["id"]),
            "number": row["number"],
            "client_order_id": client_order_id,
            "channel": row["channel"],
            "status": row["status"],
            "payment_status": row["payment_status"],
            "fulfilment_status": row["fulfilment_status"],
            "fulfilment_method": row["fulfilment_method"],
            "email": row["email"],
            "currency": row["currency"],
            "subtotal_minor": row["subtotal_minor"],
            "shipping_minor": row["shipping_minor"],
            "tax_minor": row["tax_minor"],
            "total_minor": row["total_minor"],
            "prices_include_tax": row["prices_include_tax"],
            "placed_at": row["placed_at"].isoformat(),
            "lines": row["lines"] or [],
        }
    }
