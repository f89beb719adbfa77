"""/api/v1/orders: the list, one order with its history, and status changes (role-checked by the state table)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any, Literal

from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.rbac import Role, principal_of, require_role
from app.orders.cancellation import OrderCancellation
from app.orders.schemas import AuditEntryOut, OrderDetailOut, OrderPage, OrderSummaryOut, StatusChangeIn
from app.orders.services import Actor, OrderFilter, OrderService
from app.orders.states import CANCELLED, Axis
from app.payments.registry import provider_of
from app.stores.access import caller_store
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]


class OrdersApiController(Controller):
    path = "/api/v1/orders"
    guards = [require_role]
    tags = ["orders"]

    @get(
        "/",
        summary="Orders, newest first, a page at a time",
        description="Filters combine. `q` is an order number (with or without #) or the start of an e-mail "
        "address. Pages are keyset-based: pass `next_cursor` back as `cursor`; a page stays stable while new "
        "orders arrive.",
    )
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        status: FromQuery[str | None] = None,
        payment_status: FromQuery[str | None] = None,
        fulfilment_status: FromQuery[str | None] = None,
        channel: FromQuery[str | None] = None,
        placed_from: FromQuery[datetime | None] = None,
        placed_to: FromQuery[datetime | None] = None,
        q: FromQuery[str] = "",
        sort: FromQuery[Literal["newest", "oldest"]] = "newest",
        limit: FromQuery[int] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> OrderPage:
        orders = OrderService(db_session, principal_of(request).store_id)
        filters = OrderFilter(
            status=status,
            payment_status=payment_status,
            fulfilment_status=fulfilment_status,
            channel=channel,
            placed_from=placed_from,
            placed_to=placed_to,
            search=q,
            oldest_first=sort == "oldest",
        )
        rows, next_cursor = await orders.page(filters, limit=limit, cursor=cursor)
        return OrderPage(items=[OrderSummaryOut.of(order) for order in rows], next_cursor=next_cursor)

    @get("/{order_id:uuid}", summary="An order with its lines and status history (newest first)")
    async def get_order(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> OrderDetailOut:
        orders = OrderService(db_session, principal_of(request).store_id)
        return OrderDetailOut.of(await orders.get(order_id), await orders.history(order_id))

    @patch(
        "/{order_id:uuid}/status",
        summary="Move an order's status or fulfilment status",
        description="Repeating the current status is a no-op (200). A change the order's type does not allow "
        "is 409 with the reason; one the caller's role may not make is 403. Cancelling (manager, with a reason, "
        "nothing handed over yet) voids or refunds the payment and puts the stock back. Send an "
        "Idempotency-Key to make retries safe.",
    )
    async def change_status(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        data: JSONBody[StatusChangeIn],
        db_session: DbSession,
    ) -> OrderDetailOut:
        principal = principal_of(request)
        orders = OrderService(db_session, principal.store_id)
        actor = Actor.of(principal)
        if Axis(data.axis) is Axis.ORDER and data.status == CANCELLED:
            store = caller_store(request.scope) or await db_session.get(Store, principal.store_id)
            assert store is not None
            state = request.app.state
            provider = await provider_of(state.sessions, store, state.redis, state.settings)
            cancellation = OrderCancellation(state.sessions, store.id, provider)
            await cancellation.cancel(order_id, actor=actor, reason=data.reason)
            return OrderDetailOut.of(await orders.get(order_id), await orders.history(order_id))
        order, _ = await orders.change_status(order_id, Axis(data.axis), data.status, actor=actor, reason=data.reason)
        return OrderDetailOut.of(order, await orders.history(order_id))


class OrderAuditApiController(Controller):
    path = "/api/v1/admin/orders"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["orders"]

    @get("/{order_id:uuid}/audit-log", summary="Everything that happened to an order, newest first")
    async def audit_log(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> list[AuditEntryOut]:
        entries = await OrderService(db_session, principal_of(request).store_id).audit(order_id)
        return [AuditEntryOut(**dataclasses.asdict(entry)) for entry in entries]
