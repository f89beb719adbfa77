"""Staff order pages: the list with filters, and one order with its timeline and status actions."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.csv_export import csv_response
from app.core.days import day_range
from app.core.errors import TillError, ValidationFailed
from app.core.idempotency import form_key
from app.core.rbac import Role, principal_of, require_role
from app.orders.cancellation import OrderCancellation
from app.orders.services import TIMELINE_KINDS, Actor, OrderFilter, OrderService
from app.orders.states import (
    CANCELLED,
    CHANNELS,
    FULFILMENT_STATUSES,
    ORDER_STATUSES,
    PAYMENT_STATUSES,
    Axis,
    next_statuses,
)
from app.payments.order_payments import order_payments
from app.payments.registry import provider_of
from app.receipts.channels.registry import default_channels
from app.receipts.controllers import order_receipts
from app.stored_value.order_panel import panel_context as stored_value_panel
from app.stores.commerce import CommerceSettings
from app.stores.hours import format_pickup, pickup_at_of
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]


EXPORT_MAX = 50_000


@dataclass(frozen=True)
class ListQuery:
    """The order list's filters as the page's form sends them; the export and the next-page link reuse them.

    Dates are whole days in the store's time zone, both ends included. An unknown choice shows every order.
    """

    status: str = ""
    payment: str = ""
    fulfilment: str = ""
    channel: str = ""
    since: str = ""  # YYYY-MM-DD
    until: str = ""
    q: str = ""
    sort: str = "newest"

    def filters(self, timezone: str) -> OrderFilter:
        """The service's filter; a date that is not one is a ValidationFailed naming the field."""
        since, until = day_range(self.since, self.until, timezone)
        return OrderFilter(
            status=_choice(self.status, ORDER_STATUSES),
            payment_status=_choice(self.payment, PAYMENT_STATUSES),
            fulfilment_status=_choice(self.fulfilment, FULFILMENT_STATUSES),
            channel=_choice(self.channel, CHANNELS),
            placed_from=since,
            placed_to=until,
            search=self.q,
            oldest_first=self.sort == "oldest",
        )

    def query_string(self, **extra: str) -> str:
        return urlencode({k: v for k, v in {**dataclasses.asdict(self), **extra}.items() if v})


def _choice(value: str, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def list_query(
    status: FromQuery[str] = "",
    payment: FromQuery[str] = "",
    fulfilment: FromQuery[str] = "",
    channel: FromQuery[str] = "",
    since: FromQuery[str] = "",
    until: FromQuery[str] = "",
    q: FromQuery[str] = "",
    sort: FromQuery[str] = "newest",
) -> ListQuery:
    """The list's query parameters (a dependency of the list and its export)."""
    return ListQuery(status, payment, fulfilment, channel, since.strip(), until.strip(), q, sort)


class OrderPagesController(Controller):
    path = "/staff/orders"
    guards = [require_role]
    include_in_schema = False
    dependencies = {"listing": Provide(list_query, sync_to_thread=False)}

    @get("/")
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        listing: NamedDependency[ListQuery],
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        me = principal_of(request)
        orders = OrderService(db_session, me.store_id)
        context: dict[str, Any] = {
            "me": me,
            "query": listing,
            "errors": {},
            "orders": [],
            "next_cursor": None,
            "choices": {
                "status": ORDER_STATUSES,
                "payment": PAYMENT_STATUSES,
                "fulfilment": FULFILMENT_STATUSES,
                "channel": CHANNELS,
            },
        }
        try:
            filters = listing.filters(me.timezone)
        except ValidationFailed as exc:
            context["errors"] = {"form": exc.detail, **exc.fields}
            return Template("orders/list.html", context=context, status_code=422)
        try:
            rows, next_cursor = await orders.page(filters, limit=50, cursor=cursor)
        except TillError:  # a hand-edited page link: start from the newest
            rows, next_cursor = await orders.page(filters, limit=50)
        context.update(orders=rows, next_cursor=next_cursor)
        return Template("orders/list.html", context=context)

    @get("/export.csv", opt={"min_role": Role.MANAGER})
    async def export(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        listing: NamedDependency[ListQuery],
    ) -> Response[str]:
        """The orders the list shows, every page of them (up to EXPORT_MAX), as CSV. Bad dates: 422."""
        me = principal_of(request)
        orders = OrderService(db_session, me.store_id)
        filters = listing.filters(me.timezone)
        lines = [
            ["number", "placed_at", "channel", "email", "currency", "total_minor", "status", "payment", "fulfilment"]
        ]
        cursor: str | None = None
        while len(lines) <= EXPORT_MAX:
            rows, cursor = await orders.page(filters, limit=200, cursor=cursor)
            lines += [
                [
                    str(o.number), o.placed_at.isoformat(), o.channel, o.email, o.currency, str(o.total_minor),
                    o.status, o.payment_status, o.fulfilment_status,
                ]
                for o in rows
            ]  # fmt: skip
            if cursor is None:
                break
        return csv_response(lines, "orders.csv")

    @get("/{order_id:uuid}/audit.csv", opt={"min_role": Role.MANAGER})
    async def audit_export(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Response[str]:
        orders = OrderService(db_session, principal_of(request).store_id)
        order = await orders.get(order_id)
        header = ["at", "kind", "summary", "actor", "source", "reason", "correlation_id", "reference"]
        rows = [[str(getattr(entry, field) or "") for field in header] for entry in await orders.audit(order_id)]
        return csv_response([header, *rows], f"order-{order.number}-audit.csv")

    @get("/{order_id:uuid}")
    async def order(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        db_session: DbSession,
        timeline: FromQuery[str] = "",
    ) -> Template:
        """One order: items, customer, payments, next steps, and its timeline (newest first; ``timeline``
        keeps one kind of entry: order, fulfilment or payment)."""
        me = principal_of(request)
        orders = OrderService(db_session, me.store_id)
        order = await orders.get(order_id)
        store = await db_session.get(Store, me.store_id)
        method = order.fulfilment_method
        entries = await orders.audit(order_id)
        kind = timeline if timeline in TIMELINE_KINDS else ""
        pickup_at = pickup_at_of(order.shipping)
        context = {
            "me": me,
            "order": order,
            "timeline": [e for e in entries if e.kind.startswith(f"{kind}.")] if kind else entries,
            "timeline_kind": kind,
            "timeline_kinds": TIMELINE_KINDS,
            "payments": await order_payments(db_session, me.store_id, order_id),
            "receipts": await order_receipts(db_session, me.store_id, order_id),  # app/receipts
            "receipt_channels": default_channels(request.app.state.sessions, request.app.state.settings),
            "settings": CommerceSettings.of(store.settings if store else {}),
            "pickup": format_pickup(pickup_at, datetime.now(UTC), me.timezone) if pickup_at else "",
            "form_key": form_key,
            "next_order": next_statuses(Axis.ORDER, order.status, method=method),
            "next_fulfilment": next_statuses(Axis.FULFILMENT, order.fulfilment_status, method=method),
            "can_cancel": me.can("manager")
            and order.channel != "pos"  # a counter sale is refunded at the till (its drawer, its shift report)
            and order.status not in (CANCELLED, "completed")
            and order.fulfilment_status == "unfulfilled",
            **await stored_value_panel(db_session, me, order),  # app/stored_value: what gift cards etc. paid
        }
        return Template("orders/detail.html", context=context)

    @post("/{order_id:uuid}/status", status_code=303)
    async def change_status(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        data: FormData,
        db_session: DbSession,
    ) -> Redirect:
        me = principal_of(request)
        actor = Actor.of(me)
        status, axis, reason = data.get("status", ""), data.get("axis", "order"), data.get("reason", "")
        try:
            if axis == Axis.ORDER.value and status == CANCELLED:
                store = await db_session.get(Store, me.store_id)
                assert store is not None
                state = request.app.state
                provider = await provider_of(state.sessions, store, state.redis, state.settings)
                await OrderCancellation(state.sessions, me.store_id, provider).cancel(
                    order_id, actor=actor, reason=reason
                )
            else:
                await OrderService(db_session, me.store_id).change_status(
                    order_id, Axis(axis) if axis in ("order", "fulfilment") else Axis.ORDER, status, actor=actor
                )
            if "x-board" not in request.headers:  # the board shows the move itself
                flash(request, f"Marked {status.replace('_', ' ')}.", category="success")
        except TillError as exc:
            flash(request, exc.detail, category="error")
        return Redirect(f"/staff/orders/{order_id}", status_code=303)
