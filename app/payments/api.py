"""/api/v1/admin/payments: the store's payments with filters, a page at a time, and totals by status."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.rbac import Role, principal_of, require_role
from app.payments.listing import PAGE_MAX, PaymentListing, PaymentQuery
from app.payments.pages import payment_query
from app.payments.schemas import PaymentOut, PaymentPage, StatusTotalOut

DbSession = NamedDependency[AsyncSession]


class PaymentsAdminApiController(Controller):
    path = "/api/v1/admin/payments"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["payments"]
    dependencies = {"listing": Provide(payment_query, sync_to_thread=False)}

    @get(
        "/",
        summary="Payments, newest first, a page at a time, with totals by status",
        description="Filters combine; an unknown choice, a date that is not one, a last day before the first or "
        "a `q` that is not an order number is 422 naming the field. Pages are keyset-based: pass `next_cursor` "
        "back as `cursor` with the same filters. `totals` covers every payment the filters keep, by status and "
        "currency, on every page.",
    )
    async def list_payments(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        listing: NamedDependency[PaymentQuery],
        limit: Annotated[int, QueryParameter(description=f"Page size, 1 to {PAGE_MAX}")] = 50,
        cursor: Annotated[str | None, QueryParameter(description="`next_cursor` of the previous page")] = None,
    ) -> PaymentPage:
        me = principal_of(request)
        payments = PaymentListing(db_session, me.store_id)
        filters = listing.filters(me.timezone, strict=True)
        rows, next_cursor = await payments.page(filters, limit=limit, cursor=cursor)
        return PaymentPage(
            items=[PaymentOut.of(row) for row in rows],
            next_cursor=next_cursor,
            totals=[StatusTotalOut.of(total) for total in await payments.totals(filters)],
        )
