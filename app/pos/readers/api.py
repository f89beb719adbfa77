"""``/pos/api/card-payments`` and ``/pos/api/terminal/connection-token``: the tablet's card payments at its
register's reader (docs/pos.md, "Card payments at a reader"). The staff session cookie and the ``x-csrftoken``
header; errors are problem+json. Cashiers and up; every id is looked up in the caller's store only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from app.core import kill_switches
from app.core.rbac import Role, principal_of, require_role
from app.orders.services import Actor
from app.payments.order_payments import store_of
from app.pos.readers import clock_of, reader_of
from app.pos.readers.services import CardPayment, ReaderPayments

__all__ = ["CardPaymentsApiController", "reader_payments"]


class ReaderOut(msgspec.Struct):
    id: uuid.UUID
    label: str
    provider: str


class CardPaymentOut(msgspec.Struct):
    """``status``: waiting | approved | declined | timed_out | canceled | voiding | voided (``voiding``: the money is
    on its way back; repeat the void to finish it)."""

    id: uuid.UUID
    status: str
    message: str
    card_brand: str
    card_last4: str
    amount_minor: int
    currency: str
    register_id: uuid.UUID
    client_sale_id: uuid.UUID
    expires_at: datetime
    reader: ReaderOut

    @classmethod
    def of(cls, card: CardPayment) -> CardPaymentOut:
        payment = card.payment
        return cls(
            id=payment.id,
            status=payment.status,
            message=payment.message,
            card_brand=payment.card_brand,
            card_last4=payment.card_last4,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            register_id=payment.register_id,
            client_sale_id=payment.client_sale_id,
            expires_at=payment.expires_at,
            reader=ReaderOut(id=card.reader.id, label=card.reader.label, provider=card.reader.provider),
        )


class CardPaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    register_id: uuid.UUID
    client_sale_id: uuid.UUID
    amount_minor: int


class ConnectionTokenOut(msgspec.Struct):
    secret: str


async def reader_payments(request: Request[Any, Any, Any]) -> ReaderPayments:
    """The caller's store's card payments, with its reader kind (the sandbox's or Stripe Terminal)."""
    store = await store_of(request)
    state = request.app.state
    clock = clock_of(state)
    reader = await reader_of(state.sessions, store, state.redis, state.settings, clock=clock)
    return ReaderPayments(state.sessions, store, reader, clock=clock)


class CardPaymentsApiController(Controller):
    path = "/pos/api"
    guards = [require_role]
    opt = {"min_role": Role.CASHIER}
    tags = ["pos"]
    include_in_schema = False  # the tablet's API (staff session + CSRF), documented in docs/pos.md

    @post("/card-payments", summary="Put an amount on the register's card reader")
    async def start(self, request: Request[Any, Any, Any], data: JSONBody[CardPaymentIn]) -> Response[CardPaymentOut]:
        """201 with the waiting payment; 200 with the same one when this sale's amount already waits there; 409 when
        the register has no reader or it is busy; 404 for a register of another store; 422 for a bad amount."""
        payments = await reader_payments(request)
        # Kill switch card_tenders_off (docs/operations.md): 503 card_tenders_off, nothing put on the reader.
        await kill_switches.ensure_card_tenders_on(request.app.state.redis, payments.store.id)
        card, created = await payments.start(
            register_id=data.register_id, client_sale_id=data.client_sale_id, amount_minor=data.amount_minor
        )
        return Response(CardPaymentOut.of(card), status_code=201 if created else 200)

    @get("/card-payments/{payment_id:uuid}", summary="A card payment as it stands (the tablet polls this)")
    async def show(self, request: Request[Any, Any, Any], payment_id: FromPath[uuid.UUID]) -> CardPaymentOut:
        return CardPaymentOut.of(await (await reader_payments(request)).get(payment_id))

    @post("/card-payments/{payment_id:uuid}/cancel", status_code=200, summary="Stop a payment waiting at the reader")
    async def cancel(self, request: Request[Any, Any, Any], payment_id: FromPath[uuid.UUID]) -> CardPaymentOut:
        return CardPaymentOut.of(await (await reader_payments(request)).cancel(payment_id))

    @post("/card-payments/{payment_id:uuid}/void", summary="Give an approved payment's money back")
    async def void(self, request: Request[Any, Any, Any], payment_id: FromPath[uuid.UUID]) -> Response[CardPaymentOut]:
        """200 voided (a repeat: the same answer, nothing moves twice); 202 while the provider has not confirmed
        (repeat to finish); 409 when it is not approved or a completed sale uses it."""
        actor = Actor.of(principal_of(request))
        card = await (await reader_payments(request)).void(payment_id, actor=actor)
        return Response(CardPaymentOut.of(card), status_code=202 if card.payment.status == "voiding" else 200)

    @post("/terminal/connection-token", status_code=201, summary="A Stripe Terminal connection token")
    async def connection_token(self, request: Request[Any, Any, Any]) -> ConnectionTokenOut:
        """For a Terminal SDK on the tablet (Stripe stores only; 409 for the sandbox, whose reader needs none)."""
        return ConnectionTokenOut(secret=await (await reader_payments(request)).connection_token())
