"""Staff payments page: every payment of the store with filters, totals by status, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import TillError, ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.orders.states import PAYMENT_STATUSES
from app.payments.listing import INTENT_STATUSES, PROVIDERS, PaymentListing, PaymentQuery
from app.payments.models import RefundRequest

DbSession = NamedDependency[AsyncSession]
PAGE_SIZE = 50


def _choice(description: str, allowed: tuple[str, ...]) -> Any:
    return QueryParameter(description=description, schema_extra={"enum": list(allowed)})


def payment_query(
    payment: Annotated[str, _choice("The order payment status this payment amounts to", PAYMENT_STATUSES)] = "",
    status: Annotated[str, _choice("The payment's own status", INTENT_STATUSES)] = "",
    provider: Annotated[str, _choice("Payment provider", PROVIDERS)] = "",
    since: Annotated[str, QueryParameter(description="First day (YYYY-MM-DD, store time zone), included")] = "",
    until: Annotated[str, QueryParameter(description="Last day (YYYY-MM-DD, store time zone), included")] = "",
    q: Annotated[str, QueryParameter(description="An order number, with or without #")] = "",
) -> PaymentQuery:
    """The list's query parameters (a dependency of the page and of /api/v1/admin/payments)."""
    return PaymentQuery(payment.strip(), status.strip(), provider.strip(), since.strip(), until.strip(), q.strip())


class PaymentPagesController(Controller):
    path = "/staff/payments"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False
    dependencies = {"listing": Provide(payment_query, sync_to_thread=False)}

    @get("/")
    async def list_payments(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        listing: NamedDependency[PaymentQuery],
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        me = principal_of(request)
        payments = PaymentListing(db_session, me.store_id)
        context: dict[str, Any] = {
            "me": me,
            "query": listing,
            "errors": {},
            "payments": [],
            "totals": [],
            "next_cursor": None,
            "choices": {"payment": PAYMENT_STATUSES, "status": INTENT_STATUSES, "provider": PROVIDERS},
            "waiting_refunds": await db_session.scalar(
                select(func.count()).select_from(RefundRequest).where(RefundRequest.status == "pending")
            ),
        }
        try:
            filters = listing.filters(me.timezone)
        except ValidationFailed as exc:
            context["errors"] = {"form": exc.detail, **exc.fields}
            return Template("payments/list.html", context=context, status_code=422)
        try:
            rows, next_cursor = await payments.page(filters, limit=PAGE_SIZE, cursor=cursor)
        except TillError:  # a hand-edited page link: start from the newest
            rows, next_cursor = await payments.page(filters, limit=PAGE_SIZE)
        context.update(payments=rows, next_cursor=next_cursor, totals=await payments.totals(filters))
        return Template("payments/list.html", context=context)
