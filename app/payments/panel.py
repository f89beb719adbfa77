"""The payment panel on the staff order page: the ledger, fees, and capture / void / refund with
confirmation, amount and reason; refund requests for managers to approve or reject.

Every form is an HTMX post answered with the panel itself (and the order's payment badge, out of band),
so the ledger and the payment status update without a reload. Each form carries a one-time key
(Invariant 2): a double click or a resubmit of the same form is answered with the panel as it is,
never a second capture or refund.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from litestar import Controller, Request, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.services import parse_price
from app.core.errors import PermissionDenied, TillError
from app.core.idempotency import IdempotencyStore, StoredResponse, form_key
from app.core.rbac import Principal, Role, principal_of, require_role
from app.orders.services import TIMELINE_KINDS, Actor, OrderService
from app.payments.operations import PaymentOperations
from app.payments.order_payments import order_payments, refunds_for, store_of
from app.payments.registry import provider_of
from app.stores.commerce import CommerceSettings

FormData = dict[str, str]
_OPERATIONS = ("capture", "void", "refund")
_DONE_WORDS = {"capture": "Captured", "void": "Voided", "refund": "Refunded"}


def _amount(raw: str) -> tuple[int | None, dict[str, str]]:
    """The form's amount in minor units (blank: all that is left), or the field's error."""
    if not raw.strip():
        return None, {}
    amount = parse_price(raw)
    if amount is None:
        return None, {"amount": "Enter an amount such as 12.50."}
    return amount, {}


class PaymentPanelController(Controller):
    path = "/staff/orders/{order_id:uuid}/payments"
    guards = [require_role]
    opt = {"min_role": Role.STAFF}
    include_in_schema = False

    @get("/")
    async def panel(self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID]) -> Template:
        return await _render(request, order_id)

    @post("/{intent_id:uuid}/{operation:str}", status_code=200)
    async def operate(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        intent_id: FromPath[uuid.UUID],
        operation: FromPath[str],
        data: URLEncodedBody[FormData],
    ) -> Template:
        if operation not in _OPERATIONS:
            return await _render(request, order_id, error="There is no such payment action.", status=422)
        me = principal_of(request)
        amount, errors = _amount(data.get("amount", ""))
        if errors:
            return await _render(request, order_id, errors={str(intent_id): errors}, form=data, status=422)
        claim = await _claim_form(request, me, data)
        if claim is not None:
            return await _render(request, order_id, notice=claim)
        try:
            notice = await _operate(request, order_id, intent_id, operation, amount, data)
        except TillError as exc:
            await _release_form(request, me, data)
            fields = {str(intent_id): exc.fields} if exc.fields else {}
            return await _render(request, order_id, error=exc.detail, errors=fields, form=data, status=_shown(exc))
        await _complete_form(request, me, data)
        return await _render(request, order_id, notice=notice)

    @post("/requests/{request_id:uuid}/{decision:str}", status_code=200, opt={"min_role": Role.MANAGER})
    async def decide(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        request_id: FromPath[uuid.UUID],
        decision: FromPath[str],
        data: URLEncodedBody[FormData],
    ) -> Template:
        actor = Actor.of(principal_of(request))
        refunds = await refunds_for(request)
        try:
            if decision == "approve":
                await refunds.approve(request_id, actor=actor, note=data.get("note", ""))
                notice = "Approved: the refund was made."
            elif decision == "reject":
                await refunds.reject(request_id, actor=actor, note=data.get("note", ""))
                notice = "Rejected."
            else:
                return await _render(request, order_id, error="Approve or reject.", status=422)
        except TillError as exc:
            return await _render(request, order_id, error=exc.detail, status=_shown(exc))
        return await _render(request, order_id, notice=notice)


async def _operate(
    request: Request[Any, Any, Any],
    order_id: uuid.UUID,
    intent_id: uuid.UUID,
    operation: str,
    amount: int | None,
    data: FormData,
) -> str:
    actor = Actor.of(principal_of(request))
    reason = data.get("reason", "")
    if operation == "refund":
        decision = await (await refunds_for(request)).refund(
            order_id, intent_id, amount_minor=amount, reason=reason, actor=actor
        )
        if decision.request is not None:
            return "Over the store's refund limit: a manager has been asked to approve it."
        assert decision.outcome is not None
        outcome = decision.outcome
    else:
        if operation == "void" and not actor.role.at_least(Role.MANAGER):
            raise PermissionDenied("Voiding a payment needs the manager role.")
        store = await store_of(request)
        state = request.app.state
        provider = await provider_of(state.sessions, store, state.redis, state.settings)
        operations = PaymentOperations(state.sessions, store.id, provider)
        if operation == "capture":
            outcome = await operations.capture(order_id, intent_id, amount_minor=amount, actor=actor)
        else:
            outcome = await operations.void(order_id, intent_id, reason=reason, actor=actor)
    if outcome.state == "pending":
        return "The provider has not confirmed yet; this page will show it once it does."
    return f"{_DONE_WORDS[operation]}."


def _shown(error: TillError) -> int:
    """The status of a refusal shown in the panel: htmx swaps 409 and 422 in place (templates/base.html)."""
    return error.status_code if error.status_code in (409, 422) else 422


def _form_scope(me: Principal) -> str:
    return f"form:{me.idempotency_scope}"


def _fingerprint(data: FormData) -> str:
    fields = "|".join(f"{k}={data.get(k, '')}" for k in ("amount", "reason"))
    return hashlib.sha256(fields.encode()).hexdigest()


async def _claim_form(request: Request[Any, Any, Any], me: Principal, data: FormData) -> str | None:
    """None when this form's key is new (go ahead); else what to tell the person who resubmitted it."""
    key = data.get("form_key", "")
    if not key:
        return "This form had expired; look at the payment below and try again."
    store: IdempotencyStore = request.app.state.idempotency
    claim = await store.claim(me.store_id, _form_scope(me), key, _fingerprint(data))
    if claim.outcome == "proceed":
        return None
    if claim.outcome == "in_flight":
        return "That is being done already."
    return "That was submitted already; here is the payment as it is now."


async def _complete_form(request: Request[Any, Any, Any], me: Principal, data: FormData) -> None:
    store: IdempotencyStore = request.app.state.idempotency
    await store.complete(me.store_id, _form_scope(me), data["form_key"], StoredResponse(200, {}, b""))


async def _release_form(request: Request[Any, Any, Any], me: Principal, data: FormData) -> None:
    store: IdempotencyStore = request.app.state.idempotency
    await store.release(me.store_id, _form_scope(me), data["form_key"])


async def _render(
    request: Request[Any, Any, Any],
    order_id: uuid.UUID,
    *,
    notice: str = "",
    error: str = "",
    errors: dict[str, dict[str, str]] | None = None,
    form: FormData | None = None,
    status: int = 200,
) -> Template:
    async with request.app.state.sessions() as session:
        context = await panel_context(request, session, order_id)
    context |= {"notice": notice, "error": error, "errors": errors or {}, "form": form or {}}
    return Template("orders/_payment_panel.html", context=context, status_code=status)


async def panel_context(request: Request[Any, Any, Any], session: AsyncSession, order_id: uuid.UUID) -> dict[str, Any]:
    """What templates/orders/_payment_panel.html needs as an answer to an HTMX form: the panel, the order's
    timeline (filtered as the page shows it) and its payment badge, both out of band. The stored-value panel's
    refund (app/stored_value/order_panel.py) answers with it too (``panel_oob``), since its refund moves them."""
    me = principal_of(request)
    store = await store_of(request)
    payments = await order_payments(session, me.store_id, order_id)
    entries = await OrderService(session, me.store_id).audit(order_id)
    kind = parse_qs(urlsplit(request.headers.get("hx-current-url", "")).query).get("timeline", [""])[0]
    return {
        "me": me,
        "order": payments.order,
        "payments": payments,
        "settings": CommerceSettings.of(store.settings),
        "form_key": form_key,
        "notice": "",
        "error": "",
        "errors": {},
        "form": {},
        "oob": True,
        "timeline": [e for e in entries if e.kind.startswith(f"{kind}.")] if kind in TIMELINE_KINDS else entries,
    }
