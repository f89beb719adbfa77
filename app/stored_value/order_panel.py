"""The stored-value panel on the staff order page (issue 15): what gift cards, store credit and points paid on the
order, what they have had back, and a refund form (managers) that gives money back to them — to the original
instruments first or to the customer's store credit, as the store's setting proposes and the manager chooses.

The card's refund stays in the payment panel above it (app/payments/panel.py): it gives back only what the card
paid; this panel gives back only what stored value paid (or credits the customer). Each form carries a one-time
key (Invariant 2): a resubmit or double click is answered with the panel as it is, never a second refund. A refused
refund (bad amount, no reason, more than can go back, no customer to credit) answers 422 with the message next to
its field, and nothing is written (the transaction is rolled back before the panel is drawn).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import TillError
from app.core.idempotency import IdempotencyStore, StoredResponse, form_key
from app.core.money import amount_text, parse_amount
from app.core.rbac import Principal, Role, principal_of, require_role
from app.core.templating import money_filter
from app.orders.models import Order
from app.orders.services import OrderService
from app.payments.panel import panel_context as payment_panel_context
from app.stored_value.refunds import DESTINATIONS, Destination, StoredValueRefunds, refund_to
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]
FormData = dict[str, str]
_FIELDS = {"amount_minor": "amount"}  # the service's field names → the form's


async def panel_context(session: AsyncSession, me: Principal, order: Order) -> dict[str, Any]:
    """What templates/orders/_stored_value_panel.html needs (the order page includes it)."""
    store = await session.get(Store, me.store_id)
    summary = await StoredValueRefunds(session, me.store_id).of_order(order.id)
    return {
        "sv": summary,
        "sv_default": refund_to(store.settings if store else None),
        "sv_can_refund": me.can(Role.MANAGER) and order.channel != "pos",
        "sv_placeholder": amount_text(summary.refundable_minor, summary.currency),  # "10.00", no floats
    }


class StoredValueOrderPanelController(Controller):
    path = "/staff/orders/{order_id:uuid}/stored-value"
    guards = [require_role]
    opt = {"min_role": Role.STAFF}
    include_in_schema = False

    @get("/")
    async def panel(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        return await _render(request, db_session, order_id)

    @post("/refund", status_code=200, opt={"min_role": Role.MANAGER})
    async def refund(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        data: URLEncodedBody[FormData],
        db_session: DbSession,
    ) -> Template:
        me = principal_of(request)
        order = await _order(db_session, me, order_id)
        errors: dict[str, str] = {}
        amount = parse_amount(data.get("amount", "").strip(), order.currency)
        if amount is None or amount <= 0:
            errors["amount"] = "Enter an amount above zero, such as 12.50."
        if not " ".join(data.get("reason", "").split()):
            errors["reason"] = "Say why."
        destination = data.get("destination", "")
        if destination not in DESTINATIONS:
            errors["destination"] = "Choose where the money goes."
        if order.channel == "pos":
            errors["form"] = "A counter sale is refunded at the till, with its drawer and shift."
        if errors:
            return await _render(request, db_session, order_id, errors=errors, form=data, status=422)
        assert amount is not None
        chosen: Destination = "store_credit" if destination == "store_credit" else "original"
        store: IdempotencyStore = request.app.state.idempotency
        scope, key = f"form:{me.idempotency_scope}", data.get("form_key", "")
        if not key:
            return await _render(request, db_session, order_id, notice="This form had expired; try again.")
        claim = await store.claim(me.store_id, scope, key, _fingerprint(data))
        if claim.outcome != "proceed":
            said = "That is being done already." if claim.outcome == "in_flight" else "That was submitted already."
            return await _render(request, db_session, order_id, notice=f"{said} Here is the order as it is now.")
        try:
            result = await StoredValueRefunds(db_session, me.store_id).refund(
                order_id, amount, data.get("reason", ""), principal=me, destination=chosen, whole=True
            )
        except TillError as exc:
            await db_session.rollback()  # nothing half-written
            await store.release(me.store_id, scope, key)
            fields = {_FIELDS.get(k, k): exc.detail for k in exc.fields} or {"form": exc.detail}
            return await _render(request, db_session, order_id, errors=fields, form=data, status=422)
        await db_session.commit()
        await store.complete(me.store_id, scope, key, StoredResponse(200, {}, b""))
        moved = result.refunded_minor > 0  # the badge, the timeline and the card's "up to" follow (out of band)
        return await _render(request, db_session, order_id, notice=_said(result.parts, order.currency), moved=moved)


def _said(parts: list[tuple[str, int]], currency: str) -> str:
    names = {"gift_card": "gift card", "store_credit": "store credit", "loyalty": "points"}
    given = ", ".join(f"{money_filter(v, currency)} to {names.get(k, k)}" for k, v in parts)
    return f"Given back: {given}." if given else "Nothing was given back."


def _fingerprint(data: FormData) -> str:
    fields = "|".join(f"{k}={data.get(k, '')}" for k in ("amount", "reason", "destination"))
    return hashlib.sha256(fields.encode()).hexdigest()


async def _order(session: AsyncSession, me: Principal, order_id: uuid.UUID) -> Order:
    return await OrderService(session, me.store_id).get(order_id)


async def _render(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    form: FormData | None = None,
    status: int = 200,
    moved: bool = False,
) -> Template:
    me = principal_of(request)
    order = await _order(session, me, order_id)
    context = {
        **(await payment_panel_context(request, session, order_id) if moved else {}),
        "sv_moved": moved,
        "me": me,
        "order": order,
        "form_key": form_key,
        "sv_notice": notice,
        "sv_errors": errors or {},
        "sv_form": form or {},
        **await panel_context(session, me, order),
    }
    return Template("orders/_stored_value_panel.html", context=context, status_code=status)


__all__ = ["StoredValueOrderPanelController", "panel_context"]
