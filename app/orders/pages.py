"""Staff order pages: the list with filters, and one order with its timeline and status actions."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import TillError
from app.core.rbac import Role, principal_of, require_role
from app.orders.cancellation import OrderCancellation
from app.orders.services import Actor, OrderFilter, OrderService
from app.orders.states import CANCELLED, ORDER_STATUSES, Axis, next_statuses
from app.payments.registry import provider_for
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]


EXPORT_MAX = 50_000


def _csv(rows: list[list[str]], filename: str) -> Response[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:  # a leading = + - @ would be a formula in a spreadsheet: quote it as text
        writer.writerow([f"'{cell}" if cell[:1] in ("=", "+", "-", "@") else cell for cell in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _filters(status: str, search: str) -> OrderFilter:
    """The list's filters from the page's query (an unknown status shows every order)."""
    return OrderFilter(status=status if status in ORDER_STATUSES else None, search=search)


class OrderPagesController(Controller):
    path = "/staff/orders"
    guards = [require_role]
    include_in_schema = False

    @get("/")
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        status: FromQuery[str] = "",
        q: FromQuery[str] = "",
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        me = principal_of(request)
        orders = OrderService(db_session, me.store_id)
        filters = _filters(status, q)
        try:
            rows, next_cursor = await orders.page(filters, limit=50, cursor=cursor)
        except TillError:  # a hand-edited page link: start from the newest
            rows, next_cursor = await orders.page(filters, limit=50)
        context = {"me": me, "orders": rows, "next_cursor": next_cursor, "status": status, "q": q}
        return Template("orders/list.html", context=context | {"statuses": ORDER_STATUSES})

    @get("/export.csv", opt={"min_role": Role.MANAGER})
    async def export(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        status: FromQuery[str] = "",
        q: FromQuery[str] = "",
    ) -> Response[str]:
        """The orders the list shows, every page of them (up to EXPORT_MAX), as CSV."""
        orders = OrderService(db_session, principal_of(request).store_id)
        filters = _filters(status, q)
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
        return _csv(lines, "orders.csv")

    @get("/{order_id:uuid}/audit.csv", opt={"min_role": Role.MANAGER})
    async def audit_export(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Response[str]:
        orders = OrderService(db_session, principal_of(request).store_id)
        order = await orders.get(order_id)
        header = ["at", "kind", "summary", "actor", "source", "reason", "correlation_id", "reference"]
        rows = [[str(getattr(entry, field) or "") for field in header] for entry in await orders.audit(order_id)]
        return _csv([header, *rows], f"order-{order.number}-audit.csv")

    @get("/{order_id:uuid}")
    async def order(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        me = principal_of(request)
        orders = OrderService(db_session, me.store_id)
        order = await orders.get(order_id)
        method = order.fulfilment_method
        context = {
            "me": me,
            "order": order,
            "history": await orders.history(order_id),
            "next_order": next_statuses(Axis.ORDER, order.status, method=method),
            "next_fulfilment": next_statuses(Axis.FULFILMENT, order.fulfilment_status, method=method),
            "can_cancel": me.can("manager")
            and order.status not in (CANCELLED, "completed")
            and order.fulfilment_status == "unfulfilled",
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
                provider = provider_for(store, state.redis, state.settings)
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
