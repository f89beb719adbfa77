"""/api/v1/admin/orders/{id}/payments: the ledger, fees, capture / void / refund, and refund approvals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.schemas import CardIn
from app.core.errors import ValidationFailed
from app.core.idempotency import HEADER
from app.core.rbac import Role, principal_of, require_role
from app.core.tenancy import bind_store
from app.orders.services import Actor
from app.payments.authorization import OrderAuthorization
from app.payments.fees import FeeBreakdown
from app.payments.models import PaymentTransaction, RefundRequest
from app.payments.operations import Outcome, PaymentOperations
from app.payments.order_payments import IntentView, order_payments, refunds_for, store_of
from app.payments.provider import CardDetails
from app.payments.registry import provider_of

DbSession = NamedDependency[AsyncSession]


class TransactionOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    status: str
    amount_minor: int
    currency: str
    provider_ref: str
    idempotency_key: str
    error_code: str
    reason: str
    actor: str
    at: datetime

    @classmethod
    def of(cls, tx: PaymentTransaction) -> TransactionOut:
        return cls(
            id=tx.id,
            kind=tx.kind,
            status=tx.status,
            amount_minor=tx.amount_minor,
            currency=tx.currency,
            provider_ref=tx.provider_ref,
            idempotency_key=tx.idempotency_key,
            error_code=tx.error_code,
            reason=tx.reason,
            actor=tx.actor,
            at=tx.created_at,
        )


class FeesOut(msgspec.Struct):
    """How one payment's money splits (minor units). ``net_minor`` = captured - refunded - dispute_lost -
    processing fee - dispute fee - (platform fee - platform fee refunded)."""

    currency: str
    authorized_minor: int
    captured_minor: int
    refunded_minor: int
    processing_fee_minor: int
    platform_fee_minor: int
    platform_fee_refunded_minor: int
    dispute_lost_minor: int
    dispute_fee_minor: int
    net_minor: int

    @classmethod
    def of(cls, fees: FeeBreakdown) -> FeesOut:
        return cls(
            currency=fees.currency,
            authorized_minor=fees.authorized_minor,
            captured_minor=fees.captured_minor,
            refunded_minor=fees.refunded_minor,
            processing_fee_minor=fees.processing_fee_minor,
            platform_fee_minor=fees.platform_fee_minor,
            platform_fee_refunded_minor=fees.platform_fee_refunded_minor,
            dispute_lost_minor=fees.dispute_lost_minor,
            dispute_fee_minor=fees.dispute_fee_minor,
            net_minor=fees.net_minor,
        )


class IntentOut(msgspec.Struct):
    id: uuid.UUID
    provider: str
    provider_ref: str
    status: str
    capture_method: str
    currency: str
    amount_minor: int
    captured_minor: int
    refunded_minor: int
    card_brand: str
    card_last4: str
    pending_operation: str | None
    pending_amount_minor: int
    connected_account: str
    transfer_ref: str
    fees: FeesOut
    transactions: list[TransactionOut]
    # What a refund of this payment may still give back: captured less refunded, and never more than the order has
    # left after store credit and gift cards / store credit / points given back (the page's "up to").
    refundable_minor: int = 0

    @classmethod
    def of(cls, view: IntentView) -> IntentOut:
        intent = view.intent
        return cls(
            id=intent.id,
            provider=intent.provider,
            provider_ref=intent.provider_ref,
            status=intent.status,
            capture_method=intent.capture_method,
            currency=intent.currency,
            amount_minor=intent.amount_minor,
            captured_minor=intent.captured_minor,
            refunded_minor=intent.refunded_minor,
            card_brand=intent.card_brand,
            card_last4=intent.card_last4,
            pending_operation=intent.pending_operation,
            pending_amount_minor=intent.pending_amount_minor,
            connected_account=intent.connected_account,
            transfer_ref=intent.transfer_ref,
            fees=FeesOut.of(view.fees),
            transactions=[TransactionOut.of(tx) for tx in view.transactions],
            refundable_minor=view.refundable_minor,
        )


class RefundRequestOut(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    intent_id: uuid.UUID
    amount_minor: int
    currency: str
    reason: str
    status: Literal["pending", "approved", "rejected", "failed"]
    requested_by: str
    decided_by: str
    decided_at: datetime | None
    decision_note: str
    transaction_id: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, row: RefundRequest) -> RefundRequestOut:
        return cls(
            id=row.id,
            order_id=row.order_id,
            intent_id=row.intent_id,
            amount_minor=row.amount_minor,
            currency=row.currency,
            reason=row.reason,
            status=row.status,  # type: ignore[arg-type]  # the table's CHECK allows exactly these
            requested_by=row.requested_by,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            decision_note=row.decision_note,
            transaction_id=row.transaction_id,
            created_at=row.created_at,
        )


class OrderPaymentsOut(msgspec.Struct):
    order_id: uuid.UUID
    number: int
    payment_status: str
    intents: list[IntentOut]
    refund_requests: list[RefundRequestOut]


class OperationOut(msgspec.Struct):
    """``done``: recorded; ``pending``: the provider has not confirmed yet (a worker finishes it);
    ``awaiting_approval``: a refund over the store's threshold waits for a manager (``refund_request``)."""

    state: Literal["done", "pending", "awaiting_approval"]
    payment_status: str
    transaction_id: uuid.UUID | None = None
    refund_request: RefundRequestOut | None = None
    payments: OrderPaymentsOut | None = None


class CaptureIn(msgspec.Struct):
    amount_minor: int | None = None  # all that is left when omitted


class VoidIn(msgspec.Struct):
    reason: str = ""


class RefundIn(msgspec.Struct):
    reason: str
    amount_minor: int | None = None  # all that is left to refund when omitted


class DecisionIn(msgspec.Struct):
    note: str = ""


def _require_key(request: Request[Any, Any, Any]) -> None:
    if not request.headers.get(HEADER):
        raise ValidationFailed("Moving money needs an Idempotency-Key header.", fields={HEADER: "Required."})


async def _payments_out(request: Request[Any, Any, Any], order_id: uuid.UUID) -> OrderPaymentsOut:
    async with request.app.state.sessions() as session:
        payments = await order_payments(session, principal_of(request).store_id, order_id)
    return OrderPaymentsOut(
        order_id=payments.order.id,
        number=payments.order.number,
        payment_status=payments.order.payment_status,
        intents=[IntentOut.of(view) for view in payments.intents],
        refund_requests=[RefundRequestOut.of(row) for row in payments.refund_requests],
    )


async def _operations(request: Request[Any, Any, Any]) -> PaymentOperations:
    store = await store_of(request)
    state = request.app.state
    return PaymentOperations(
        state.sessions, store.id, await provider_of(state.sessions, store, state.redis, state.settings)
    )


def _done(outcome: Outcome, payments: OrderPaymentsOut) -> Response[OperationOut]:
    body = OperationOut(
        state=outcome.state, payment_status=outcome.payment_status, transaction_id=outcome.tx_id, payments=payments
    )
    return Response(body, status_code=200 if outcome.state == "done" else 202)


_MONEY_ERRORS = (
    "404 no such order or payment; 409 the payment's state does not allow it, or another capture/void/refund on it "
    "is still in progress; 422 a bad amount or a missing reason or Idempotency-Key (problem+json names the field)."
)


class OrderPaymentsApiController(Controller):
    path = "/api/v1/admin/orders/{order_id:uuid}/payments"
    guards = [require_role]
    opt = {"min_role": Role.STAFF}
    tags = ["payments"]

    @get("/", summary="An order's payments: intents, their ledger rows, fees and refund requests")
    async def ledger(self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID]) -> OrderPaymentsOut:
        return await _payments_out(request, order_id)

    @get("/{intent_id:uuid}/fees", summary="One payment's fee breakdown (processing fee, platform fee, net)")
    async def fees(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], intent_id: FromPath[uuid.UUID]
    ) -> FeesOut:
        async with request.app.state.sessions() as session:
            payments = await order_payments(session, principal_of(request).store_id, order_id)
        return FeesOut.of(payments.intent(intent_id).fees)

    @post(
        "/{intent_id:uuid}/capture",
        summary="Capture an authorisation, in full or in part (requires Idempotency-Key)",
        description="The provider releases what is not captured. 200 when recorded, 202 when the provider's answer "
        "is not known yet. " + _MONEY_ERRORS,
    )
    async def capture(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        intent_id: FromPath[uuid.UUID],
        data: JSONBody[CaptureIn],
    ) -> Response[OperationOut]:
        _require_key(request)
        actor = Actor.of(principal_of(request))
        outcome = await (await _operations(request)).capture(
            order_id, intent_id, amount_minor=data.amount_minor, actor=actor
        )
        return _done(outcome, await _payments_out(request, order_id))

    @post(
        "/{intent_id:uuid}/void",
        summary="Void an authorisation nothing was captured from (manager; requires Idempotency-Key)",
        description=_MONEY_ERRORS,
        opt={"min_role": Role.MANAGER},
    )
    async def void(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        intent_id: FromPath[uuid.UUID],
        data: JSONBody[VoidIn],
    ) -> Response[OperationOut]:
        _require_key(request)
        actor = Actor.of(principal_of(request))
        outcome = await (await _operations(request)).void(order_id, intent_id, reason=data.reason, actor=actor)
        return _done(outcome, await _payments_out(request, order_id))

    @post(
        "/{intent_id:uuid}/refund",
        summary="Refund part or all of a captured payment, with a reason (requires Idempotency-Key)",
        description="Several refunds may follow one another up to the captured amount, and never past what the "
        "order has left after store credit and gift cards / store credit / points given back (`refundable_minor`; "
        "422 over it naming what can still go back, 409 when nothing can). Over the store's approval threshold, "
        "a caller below manager opens a refund request instead (202, state awaiting_approval). " + _MONEY_ERRORS,
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        intent_id: FromPath[uuid.UUID],
        data: JSONBody[RefundIn],
    ) -> Response[OperationOut]:
        _require_key(request)
        actor = Actor.of(principal_of(request))
        decision = await (await refunds_for(request)).refund(
            order_id, intent_id, amount_minor=data.amount_minor, reason=data.reason, actor=actor
        )
        payments = await _payments_out(request, order_id)
        if decision.request is not None:
            body = OperationOut(
                state="awaiting_approval",
                payment_status=payments.payment_status,
                refund_request=RefundRequestOut.of(decision.request),
                payments=payments,
            )
            return Response(body, status_code=202)
        assert decision.outcome is not None
        return _done(decision.outcome, payments)


class RefundRequestsApiController(Controller):
    path = "/api/v1/admin/refund-requests"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["payments"]

    @get("/", summary="Refund requests waiting for a manager (or of one status)")
    async def list_requests(
        self,
        request: Request[Any, Any, Any],
        status: FromQuery[Literal["pending", "approved", "rejected", "failed"]] = "pending",
    ) -> list[RefundRequestOut]:
        async with request.app.state.sessions() as session:
            bind_store(session, principal_of(request).store_id)
            rows = await session.scalars(
                select(RefundRequest).where(RefundRequest.status == status).order_by(RefundRequest.created_at)
            )
            return [RefundRequestOut.of(row) for row in rows]

    @post(
        "/{request_id:uuid}/approve",
        status_code=200,
        summary="Approve a refund request: the refund is made (Idempotency-Key)",
    )
    async def approve(
        self, request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID], data: JSONBody[DecisionIn]
    ) -> RefundRequestOut:
        _require_key(request)
        refunds = await refunds_for(request)
        row = await refunds.approve(request_id, actor=Actor.of(principal_of(request)), note=data.note)
        return RefundRequestOut.of(row)

    @post("/{request_id:uuid}/reject", status_code=200, summary="Reject a refund request, saying why")
    async def reject(
        self, request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID], data: JSONBody[DecisionIn]
    ) -> RefundRequestOut:
        refunds = await refunds_for(request)
        row = await refunds.reject(request_id, actor=Actor.of(principal_of(request)), note=data.note)
        return RefundRequestOut.of(row)


class AuthorizeIn(msgspec.Struct, forbid_unknown_fields=True):
    """``amount_minor`` must be what the order owes. Give a card (sandbox test cards) or a provider token
    (``pm_card_visa`` ...). ``return_url``: where the payer lands after a 3-D Secure challenge; the payment's
    outcome reaches the order by the provider's webhook."""

    amount_minor: int
    card: CardIn | None = None
    payment_method_token: str | None = None
    return_url: str = ""


class AuthorizationOut(msgspec.Struct):
    """``authorized`` / ``captured`` (the store captures at checkout) → 201; ``requires_action`` → 202 with
    ``action_url``; ``declined`` → 402 with ``decline_code``."""

    intent: IntentOut
    status: str
    payment_status: str
    action_url: str = ""
    decline_code: str = ""
    message: str = ""


class CheckoutPaymentsApiController(Controller):
    path = "/api/v1/checkout/orders/{order_id:uuid}/payments"
    guards = [require_role]
    tags = ["checkout"]

    @post(
        "/authorize",
        summary="Authorise a payment for an order that has none in force (requires Idempotency-Key)",
        description="For an order whose payment was declined or voided, or that arrived unpaid. 201 when "
        "authorised (or captured, by the store's capture policy); 202 when 3-D Secure is needed (follow "
        "action_url); 402 when declined; 409 when the order already has a payment or is cancelled; 422 when "
        "the amount is not what the order owes or no card/token is given.",
    )
    async def authorize(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], data: JSONBody[AuthorizeIn]
    ) -> Response[AuthorizationOut]:
        _require_key(request)
        store = await store_of(request)
        state = request.app.state
        card = (
            CardDetails(data.card.number, data.card.exp_month, data.card.exp_year, data.card.cvc, data.card.holder)
            if data.card
            else None
        )
        provider = await provider_of(state.sessions, store, state.redis, state.settings)
        authorization = OrderAuthorization(state.sessions, store, provider)
        intent, result = await authorization.authorize(
            order_id,
            amount_minor=data.amount_minor,
            card=card,
            payment_method_token=data.payment_method_token,
            return_url=data.return_url,
        )
        payments = await _payments_out(request, order_id)
        view = next(i for i in payments.intents if i.id == intent.id)
        body = AuthorizationOut(
            intent=view,
            status=str(result.status),
            payment_status=payments.payment_status,
            action_url=result.action_url,
            decline_code=result.decline_code,
            message=result.message,
        )
        status = {"authorized": 201, "captured": 201, "declined": 402, "failed": 402}.get(str(result.status), 202)
        return Response(body, status_code=status)
