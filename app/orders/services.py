"""Orders: placing one from a paid snapshot, moving it through its states, and finding it."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, literal_column, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import noload, selectinload

from app.checkout.models import CheckoutSnapshot
from app.core import cursors, pg
from app.core.db import detached
from app.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.core.logging import current_correlation_id
from app.core.money import amount_text
from app.core.outbox import emit
from app.core.rbac import Principal, Role
from app.core.tenancy import bind_store
from app.disputes.models import Dispute
from app.orders.models import Order, OrderStatusChange
from app.orders.states import CANCELLED, Axis, decide
from app.payments.models import PaymentIntent, PaymentTransaction
from app.stored_value.models import POINTS, StoredValueAccount, StoredValueEntry

FULFILMENT_BY_SHIPPING = {
    "pickup": "pickup",
    "local_delivery": "local_delivery",
    "flat": "shipping",
    "table": "shipping",
}


# A fragment of a composed statement (ADR 0003): runs only when the CTE ``go`` has a row, and takes the
# customer from the CTE ``customer`` unless :customer_id is set (see app.customers.services). Creates the
# order, its lines and its order.placed event. Parameters: :store_id, :customer_id and ``order_params``'
# (through ``placing`` for a checkout; app.ingestion for a channel's order).
PLACE_ORDER_CTES = """
    placed AS (
        INSERT INTO orders (id, store_id, channel, status, payment_status, fulfilment_status, fulfilment_method,
                            customer_id, email, phone, currency, subtotal_minor, discount_minor, discounts,
                            shipping_minor, tax_minor, total_minor, prices_include_tax, shipping, address, snapshot_id,
                            access_token, placed_at, created_at, updated_at)
        SELECT :order_id, :store_id, :order_channel, 'placed', :order_payment_status, 'unfulfilled',
               :order_fulfilment_method, COALESCE(:customer_id::uuid, (SELECT id FROM customer)), :order_email,
               :order_phone, :order_currency,
               :order_subtotal, :order_discount, :order_discounts::jsonb, :order_shipping_minor, :order_tax,
               :order_total, :order_tax_included,
               :order_shipping::jsonb, :order_address::jsonb, :order_snapshot_id, :order_access_token,
               :order_placed_at, :order_placed_at, :order_placed_at
        WHERE EXISTS (SELECT 1 FROM go)
        RETURNING id, number, currency, total_minor
    ), order_lines_added AS (
        INSERT INTO order_lines (id, store_id, order_id, position, variant_id, sku, name, quantity, unit_price_minor,
                                 discount_minor, tax_minor, tax_rate_bps, total_minor, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, p.id, l.position, l.variant_id, l.sku, l.name, l.quantity,
               l.unit_price_minor, l.discount_minor, l.tax_minor, l.tax_rate_bps, l.total_minor, :order_placed_at,
               :order_placed_at
        FROM placed p, jsonb_to_recordset(:order_lines::jsonb) AS l(position int, variant_id uuid, sku text, name text,
             quantity int, unit_price_minor int, discount_minor int, tax_minor int, tax_rate_bps int, total_minor int)
    ), order_placed_event AS (  -- the outbox row app.core.outbox.emit would write
        INSERT INTO outbox_events (store_id, type, aggregate_type, aggregate_id, payload, correlation_id)
        SELECT :store_id, 'order.placed', 'order', p.id::text,
               jsonb_build_object('number', p.number, 'total_minor', p.total_minor, 'currency', p.currency),
               :order_correlation_id
        FROM placed p
    )
"""


def _line_name(line: dict[str, Any]) -> str:
    return f"{line['name']} ({line['variant_title']})" if line.get("variant_title") else str(line["name"])


def placing(snapshot: CheckoutSnapshot, *, payment_status: str, now: datetime) -> tuple[Order, dict[str, Any]]:
    """The order a paid snapshot becomes (detached; its number and customer come from the statement) and
    the parameters of PLACE_ORDER_CTES."""
    order = detached(
        Order,
        dict(
            id=uuid.uuid4(),
            store_id=snapshot.store_id,
            channel="web",
            status="placed",
            payment_status=payment_status,
            fulfilment_status="unfulfilled",
            fulfilment_method=FULFILMENT_BY_SHIPPING.get(snapshot.shipping.get("method", ""), "shipping"),
            email=snapshot.email,
            phone=snapshot.phone,
            currency=snapshot.currency,
            subtotal_minor=snapshot.subtotal_minor,
            discount_minor=snapshot.discount_minor,
            discounts=snapshot.discounts,  # each line's part is keyed by its position, as the order's lines are
            shipping_minor=snapshot.shipping_minor,
            tax_minor=snapshot.tax_minor,
            total_minor=snapshot.total_minor,
            prices_include_tax=snapshot.prices_include_tax,
            shipping=snapshot.shipping,
            address=snapshot.address,
            snapshot_id=snapshot.id,
            access_token=secrets.token_urlsafe(24),
            placed_at=now,
        ),
    )
    lines = [
        {
            "position": position,
            "variant_id": line["variant_id"],
            "sku": line["sku"],
            "name": _line_name(line),
            "quantity": line["quantity"],
            "unit_price_minor": line["unit_price_minor"],
            "discount_minor": line["discount_minor"],
            "tax_minor": line["tax_minor"],
            "tax_rate_bps": line["tax_rate_bps"],
            "total_minor": line["total_minor"],
        }
        for position, line in enumerate(snapshot.lines)
    ]
    return order, order_params(order, lines, now)


def order_params(order: Order, lines: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The parameters of PLACE_ORDER_CTES for ``order`` (detached) and its ``lines`` (dicts with the
    columns of ``order_lines_added``'s recordset)."""
    return {
        "order_id": order.id,
        "order_channel": order.channel,
        "order_payment_status": order.payment_status,
        "order_fulfilment_method": order.fulfilment_method,
        "order_email": order.email,
        "order_phone": order.phone,
        "order_currency": order.currency,
        "order_subtotal": order.subtotal_minor,
        "order_discount": order.discount_minor,
        "order_discounts": pg.jsonb(order.discounts or []),
        "order_shipping_minor": order.shipping_minor,
        "order_tax": order.tax_minor,
        "order_total": order.total_minor,
        "order_tax_included": order.prices_include_tax,
        "order_shipping": pg.jsonb(order.shipping),
        "order_address": pg.jsonb(order.address) if order.address is not None else None,
        "order_snapshot_id": order.snapshot_id,
        "order_access_token": order.access_token,
        "order_placed_at": now,
        "order_lines": pg.jsonb(lines),
        "order_correlation_id": current_correlation_id(),
    }


@dataclass(frozen=True)
class Actor:
    """Who changes an order, as the history records it."""

    role: Role
    label: str
    source: str  # staff | shopper | webhook | pos | system | api
    id: uuid.UUID | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        if principal.kind == "token":
            return cls(principal.role, principal.display_name, "api", principal.token_id)
        return cls(principal.role, principal.display_name, "staff", principal.user_id)


MAX_REASON = 500


TIMELINE_KINDS = ("order", "fulfilment", "payment")  # AuditEntry.kind's first part


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    kind: str  # order.placed | order.changed | fulfilment.changed | payment.<kind>
    summary: str
    actor: str
    source: str
    reason: str = ""
    correlation_id: str | None = None
    reference: str = ""  # a payment's idempotency key


_PAYMENT_VERBS = {"capture": "captured", "refund": "refunded", "void": "voided", "dispute": "charged back"}


def _payment_summary(tx: PaymentTransaction) -> str:
    """One ledger row as the timeline says it: "refunded 1.00 EUR", "refund failed (amount_too_large)"."""
    amount = f"{tx.amount_minor / 100:.2f} {tx.currency}"
    if tx.status == "failed":
        return f"{tx.kind} failed" + (f" ({tx.error_code})" if tx.error_code else "")
    verb = _PAYMENT_VERBS.get(tx.kind, tx.status)
    return f"{verb} {amount}" + (f" ({tx.error_code})" if tx.error_code else "")


def _stored_value_summary(kind: str, amount: int, account_kind: str, last4: str, unit: str) -> str:
    """One stored-value refund as the timeline says it: "refunded 6.00 EUR to gift card ••••7K2Q", "refunded
    20.00 EUR as store credit", "refunded 300 points"."""
    if unit == POINTS:
        return f"refunded {amount:,} points"
    money = f"{amount_text(amount, unit)} {unit}"
    if kind == "issue":
        return f"refunded {money} as store credit"
    if account_kind == "gift_card":
        return f"refunded {money} to gift card ••••{last4}"
    return f"refunded {money} to store credit"


def _dispute_entries(dispute: Dispute) -> list[AuditEntry]:
    """A dispute on the timeline: opened (reason, amount, respond by), evidence submitted, won or lost."""
    amount = f"{dispute.amount_minor / 100:.2f} {dispute.currency}"
    due = f", respond by {dispute.due_by:%d %b %Y}" if dispute.due_by else ""
    ref = dispute.provider_dispute_id
    entries = [
        AuditEntry(dispute.opened_at, "payment.dispute", f"dispute opened: {dispute.reason}, {amount}{due}",
                   dispute.provider, "provider", reference=ref),
    ]  # fmt: skip
    if dispute.evidence_submitted_at:
        entries.append(
            AuditEntry(dispute.evidence_submitted_at, "payment.dispute", "dispute evidence submitted",
                       dispute.submitted_by, "staff", reference=ref)
        )  # fmt: skip
    if dispute.closed_at:
        entries.append(
            AuditEntry(dispute.closed_at, "payment.dispute", f"dispute {dispute.outcome}",
                       dispute.provider, "provider", reference=ref)
        )  # fmt: skip
    return entries


def clean_reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise ValidationFailed("The reason is too long.", fields={"reason": f"At most {MAX_REASON} characters."})
    return reason


@dataclass(frozen=True)
class OrderFilter:
    status: str | None = None
    payment_status: str | None = None
    fulfilment_status: str | None = None
    channel: str | None = None
    placed_from: datetime | None = None
    placed_to: datetime | None = None  # exclusive
    search: str = ""  # an order number, or the start of an e-mail address or of the recipient's name
    oldest_first: bool = False


PAGE_MAX = 200


async def first_order_number(session: AsyncSession) -> int | None:
    """The number of the store's first order (the session is bound to the store), or None before any."""
    number: int | None = await session.scalar(select(Order.number).order_by(Order.created_at).limit(1))
    return number


def encode_cursor(order: Order) -> str:
    return cursors.encode_cursor(order.placed_at, order.id)


decode_cursor = cursors.decode_cursor


class OrderService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def change_status(
        self, order_id: uuid.UUID, axis: Axis, target: str, *, actor: Actor, reason: str = ""
    ) -> tuple[Order, bool]:
        """Move one axis of an order, under a row lock so concurrent changes queue rather than get lost.

        Returns the order and whether it changed: repeating the current status is a no-op. A change the
        table does not allow is a 409 with the reason; one the actor's role may not make is a 403.
        Cancelling moves money and stock, so it goes through ``app.orders.cancellation`` instead.
        """
        reason = clean_reason(reason)
        if axis is Axis.ORDER and target == CANCELLED:
            raise Conflict("Cancelling gives the money and the stock back: cancel the order instead.")
        order = await self.locked(order_id)
        if self.check(order, axis, target, actor):
            self.record(order, axis, target, actor=actor, reason=reason)
            await self.session.flush()
            return order, True
        return order, False

    async def locked(self, order_id: uuid.UUID) -> Order:
        order = await self.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
        if order is None:
            raise NotFound("No such order.")
        return order

    @staticmethod
    def check(order: Order, axis: Axis, target: str, actor: Actor) -> bool:
        """Whether moving ``order`` to ``target`` changes it; raises 409 or 403 with the reason when refused."""
        current = order.status if axis is Axis.ORDER else order.fulfilment_status
        decision = decide(axis, current, target, method=order.fulfilment_method, role=actor.role)
        if not decision.allowed:
            raise (PermissionDenied if decision.forbidden else Conflict)(decision.reason)
        return decision.changes

    def record(self, order: Order, axis: Axis, target: str, *, actor: Actor, reason: str) -> None:
        """Apply a checked change: the new status, its history row and its event, in this transaction."""
        current = order.status if axis is Axis.ORDER else order.fulfilment_status
        if axis is Axis.ORDER:
            order.status = target
        else:
            order.fulfilment_status = target
        self.session.add(
            OrderStatusChange(
                order_id=order.id,
                axis=axis.value,
                from_status=current,
                to_status=target,
                actor_id=actor.id,
                actor=actor.label[:120],
                source=actor.source,
                reason=reason,
                correlation_id=current_correlation_id(),
            )
        )
        emit(
            self.session,
            "order.status_changed",
            aggregate_type="order",
            aggregate_id=order.id,
            payload={"number": order.number, "axis": axis.value, "from": current, "to": target},
        )

    async def page(
        self, filters: OrderFilter, *, limit: int = 50, cursor: str | None = None, with_lines: bool = False
    ) -> tuple[list[Order], str | None]:
        """One page of orders, newest first (or oldest), by keyset: stable while new orders arrive. Their
        lines are loaded only ``with_lines`` (the board's cards list them)."""
        if not 1 <= limit <= PAGE_MAX:
            raise ValidationFailed("Choose a page size.", fields={"limit": f"From 1 to {PAGE_MAX}."})
        stmt = select(Order).options(selectinload(Order.lines) if with_lines else noload(Order.lines))
        for column, value in (
            (Order.status, filters.status),
            (Order.payment_status, filters.payment_status),
            (Order.fulfilment_status, filters.fulfilment_status),
            (Order.channel, filters.channel),
        ):
            if value:
                stmt = stmt.where(column == value)
        if filters.placed_from:
            stmt = stmt.where(Order.placed_at >= filters.placed_from)
        if filters.placed_to:
            stmt = stmt.where(Order.placed_at < filters.placed_to)
        search = filters.search.strip().lstrip("#")
        if search.isdigit():
            stmt = stmt.where(Order.number == int(search))
        elif search:
            prefix = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            recipient = func.lower(literal_column("orders.address ->> 'name'"))  # as indexed (migration 0007)
            stmt = stmt.where(or_(Order.email.like(prefix), recipient.like(prefix)))
        key = tuple_(Order.placed_at, Order.id)
        if cursor:
            after = tuple_(*[literal(v) for v in decode_cursor(cursor)])
            stmt = stmt.where(key > after if filters.oldest_first else key < after)
        order_by = (Order.placed_at, Order.id) if filters.oldest_first else (Order.placed_at.desc(), Order.id.desc())
        rows = list(await self.session.scalars(stmt.order_by(*order_by).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]) if more else None

    async def history(self, order_id: uuid.UUID) -> list[OrderStatusChange]:
        """Every status change of an order, newest first."""
        rows = await self.session.scalars(
            select(OrderStatusChange)
            .where(OrderStatusChange.order_id == order_id)
            .order_by(OrderStatusChange.created_at.desc(), OrderStatusChange.id.desc())
        )
        return list(rows)

    async def audit(self, order_id: uuid.UUID) -> list[AuditEntry]:
        """Everything that happened to an order, newest first: placing, status changes, payment movements."""
        order = await self.get(order_id)
        entries = [AuditEntry(order.placed_at, "order.placed", f"placed via {order.channel}", "shopper", order.channel)]
        entries += [
            AuditEntry(
                change.created_at,
                f"{change.axis}.changed",
                f"{change.from_status} → {change.to_status}",
                change.actor,
                change.source,
                change.reason,
                change.correlation_id,
            )
            for change in await self.history(order_id)
        ]
        payments = await self.session.execute(
            select(PaymentTransaction, PaymentIntent.provider)
            .join(PaymentIntent, PaymentIntent.id == PaymentTransaction.intent_id)
            .where(PaymentIntent.order_id == order_id)
        )
        entries += [
            AuditEntry(
                tx.created_at,
                f"payment.{tx.kind}",
                _payment_summary(tx),
                tx.actor or provider,
                "staff" if tx.actor else "provider",
                tx.reason,
                reference=tx.idempotency_key,
            )
            for tx, provider in payments
        ]
        for dispute in await self.session.scalars(select(Dispute).where(Dispute.order_id == order_id)):
            entries += _dispute_entries(dispute)
        entries += await self._stored_value_entries(order)
        return sorted(entries, key=lambda e: e.at, reverse=True)

    async def _stored_value_entries(self, order: Order) -> list[AuditEntry]:
        """Money given back outside the card (app/stored_value/refunds.py): each refund to a gift card / store
        credit / points spend of the order, and each credit to the customer's store credit as a refund of it —
        what, where, how much, who and why, from the stored-value ledger (one indexed statement)."""
        entry, account = StoredValueEntry, StoredValueAccount
        rows = await self.session.execute(
            select(entry.created_at, entry.kind, entry.amount_minor, entry.reason, entry.actor, account.kind,
                   account.code_last4, account.unit)
            .join(account, account.id == entry.account_id)
            .where(
                entry.store_id == self.store_id,
                entry.order_id == order.id,
                or_(entry.kind == "refund", and_(entry.kind == "issue", account.kind == "store_credit")),
            )
        )  # fmt: skip
        found = []
        for at, kind, amount, reason, actor, account_kind, last4, unit in rows.tuples():
            summary = _stored_value_summary(kind, amount, account_kind, last4, unit)
            source = "system" if actor in ("", "system") else "staff"
            found.append(AuditEntry(at, "payment.stored_value", summary, actor or "system", source, reason))
        return found

    async def get(self, order_id: uuid.UUID) -> Order:
        order = await self.session.get(Order, order_id)
        if order is None:
            raise NotFound("No such order.")
        return order

    async def for_shopper(self, order_id: uuid.UUID, *, token: str | None, customer_id: uuid.UUID | None) -> Order:
        """A shopper sees an order by its signed link, or as the signed-in customer who placed it."""
        order = await self.session.get(Order, order_id)
        allowed = order is not None and (
            (token is not None and secrets.compare_digest(order.access_token, token))
            or (customer_id is not None and order.customer_id == customer_id)
        )
        if order is None or not allowed:
            raise NotFound("We could not find that order.")
        return order

    async def of_customer(self, customer_id: uuid.UUID) -> list[Order]:
        rows = await self.session.scalars(
            select(Order).where(Order.customer_id == customer_id).order_by(Order.placed_at.desc()).limit(50)
        )
        return list(rows)
