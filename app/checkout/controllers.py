"""/api/v1/checkout: carts, quotes and completion for headless storefronts (bearer token of the store)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import astuple
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from app.cart.models import Cart
from app.cart.services import CartService
from app.checkout.factory import checkout_saga
from app.checkout.fast_path import FAST_ANSWER, FastAnswer
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import Outcome, PaymentInput
from app.checkout.schemas import (
    AttemptOut,
    CartLineIn,
    CartOut,
    CompleteIn,
    OrderOut,
    PickupTimesOut,
    QuantityIn,
    QuoteIn,
    QuoteOut,
)
from app.core import kill_switches, pg
from app.core.errors import NotFound, ValidationFailed
from app.core.idempotency import HEADER, OWN_KEYS, REPLAYED_HEADER, request_hash
from app.core.rbac import principal_of, require_role
from app.payments.provider import CardDetails
from app.stored_value.instruments import TenderRequest, registry
from app.stores.access import caller_store
from app.stores.hours import hours_of, pickup_slots
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]


async def _store(db_session: AsyncSession, request: Request[Any, Any, Any]) -> Store:
    store = caller_store(request.scope) or await db_session.get(Store, principal_of(request).store_id)
    assert store is not None  # the principal was just read with its store
    return store


async def _cart(db_session: AsyncSession, request: Request[Any, Any, Any], token: str) -> tuple[CartService, Cart]:
    store = await _store(db_session, request)
    service = CartService(db_session, store.id, store.currency)
    cart = await service.find(token)
    if cart is None:
        raise NotFound("No such cart.")
    return service, cart


def card_fingerprint(secret_key: str, card: CardDetails) -> str:
    """What tells two requests' cards apart without being card data: an HMAC of every field under the server's key."""
    return hmac.new(secret_key.encode(), repr(astuple(card)).encode(), hashlib.sha256).hexdigest()


def _attempt_out(outcome: Outcome) -> AttemptOut:
    return AttemptOut(
        attempt_id=outcome.attempt_id,
        state=outcome.state,
        order=OrderOut.of(outcome.order) if outcome.order else None,
        action_url=outcome.action_url,
        error_code=outcome.error_code,
        message=outcome.message,
    )


async def answer_quote(state: State, store: Store, data: QuoteIn, key: str | None) -> tuple[int, QuoteOut, None]:
    """``POST /api/v1/checkout/quote``: the cart's prices frozen into a snapshot (one read, one insert)."""
    address = {f: getattr(data.address, f) for f in data.address.__struct_fields__} if data.address else None
    async with pg.connection(state.engine) as conn:  # one read, one insert: no transaction
        snapshot = await QuoteService(conn, store).create(
            QuoteRequest(
                cart_token=data.cart_token,
                email=data.email,
                phone=data.phone,
                shipping_code=data.shipping,
                address=address,
                pickup_at=data.pickup_at,
                codes=(data.code,) if data.code else (),
            )
        )
    return 201, QuoteOut.of(snapshot), None


async def answer_complete(
    state: State, store: Store, data: CompleteIn, key: str | None
) -> tuple[int, AttemptOut, dict[str, str] | None]:
    """``POST /api/v1/checkout/complete``: pays the quote and places the order, once per Idempotency-Key."""
    if not key:
        raise ValidationFailed("Completing a checkout needs an Idempotency-Key header.", fields={HEADER: "Required."})
    # No request session here: the saga runs its own short statements and holds none across the provider call.
    await kill_switches.ensure_payments_on(state.redis, store.id)  # 503 payments_off: nothing charged
    saga = await checkout_saga(state, store)
    if data.card is not None and data.payment_method_token is not None:
        raise ValidationFailed("Pay with a card or a payment method token.", fields={"card": "Give exactly one."})
    if data.card is None and data.payment_method_token is None and not data.stored_value:
        raise ValidationFailed("Pay with a card or a payment method token.", fields={"card": "Give exactly one."})
    tenders = tuple(TenderRequest(t.instrument, t.code, t.amount_minor, t.points) for t in data.stored_value)
    unknown = [t.instrument for t in tenders if t.instrument not in registry()]
    if unknown:
        raise ValidationFailed(
            f"Unknown payment instrument {unknown[0]!r}.",
            fields={"stored_value": f"One of: {', '.join(sorted(registry()))}."},
        )
    card = (
        CardDetails(data.card.number, data.card.exp_month, data.card.exp_year, data.card.cvc, data.card.holder)
        if data.card
        else None
    )
    # The card goes into the attempt's fingerprint keyed (HMAC under SECRET_KEY): a plain hash of a card
    # number can be reversed by trying every number of its BIN, and no card data is stored (invariant 9).
    card_part = card_fingerprint(state.settings.secret_key, card) if card else ""
    fingerprint = request_hash(  # the whole request, as the idempotency middleware's hash was (a card too)
        "POST",
        "/api/v1/checkout/complete",
        b"",
        f"{data.snapshot_id}:{data.amount_minor}:{[astuple(t) for t in tenders]}:{card_part}:"
        f"{data.payment_method_token}:{data.return_url}".encode(),
    )
    outcome = await saga.complete(
        data.snapshot_id,
        key,
        PaymentInput(
            card=card,
            payment_method_token=data.payment_method_token,
            amount_minor=data.amount_minor,
            return_url=data.return_url,
            tenders=tenders,
        ),
        fingerprint=fingerprint,
    )
    status = {"completed": 201, "failed": 402}.get(outcome.state, 202)
    return status, _attempt_out(outcome), {REPLAYED_HEADER: "true"} if outcome.replayed else None


class CheckoutApiController(Controller):
    path = "/api/v1/checkout"
    guards = [require_role]
    tags = ["checkout"]

    @post("/carts", summary="Start a cart", status_code=201)
    async def create_cart(self, request: Request[Any, Any, Any], db_session: DbSession) -> CartOut:
        store = await _store(db_session, request)
        service = CartService(db_session, store.id, store.currency)
        cart = await service.get_or_create(None)
        return CartOut.of(await service.view(cart.token))

    @get("/carts/{token:str}", summary="A cart with stock-aware lines")
    async def get_cart(self, request: Request[Any, Any, Any], token: FromPath[str], db_session: DbSession) -> CartOut:
        store = await _store(db_session, request)
        view = await CartService(db_session, store.id, store.currency).view(token)
        if view.cart is None:
            raise NotFound("No such cart.")
        return CartOut.of(view)

    @post("/carts/{token:str}/lines", summary="Add a variant", status_code=200)
    async def add_line(
        self, request: Request[Any, Any, Any], token: FromPath[str], data: JSONBody[CartLineIn], db_session: DbSession
    ) -> CartOut:
        service, cart = await _cart(db_session, request, token)
        await service.add(cart, data.variant_id, data.quantity)
        return CartOut.of(await service.view(token))

    @patch("/carts/{token:str}/lines/{variant_id:uuid}", summary="Change a line's quantity (0 removes it)")
    async def change_line(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        variant_id: FromPath[uuid.UUID],
        data: JSONBody[QuantityIn],
        db_session: DbSession,
    ) -> CartOut:
        service, cart = await _cart(db_session, request, token)
        await service.set_quantity(cart, variant_id, data.quantity)
        return CartOut.of(await service.view(token))

    @delete("/carts/{token:str}/lines/{variant_id:uuid}", summary="Remove a line", status_code=200)
    async def remove_line(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        variant_id: FromPath[uuid.UUID],
        db_session: DbSession,
    ) -> CartOut:
        service, cart = await _cart(db_session, request, token)
        await service.remove(cart, variant_id)
        return CartOut.of(await service.view(token))

    @post(
        "/quote",
        summary="Freeze a quote (snapshot) for a cart",
        status_code=201,
        opt={FAST_ANSWER: FastAnswer(QuoteIn, answer_quote)},  # answered by app/checkout/fast_path.py; same function
    )
    async def quote(self, request: Request[Any, Any, Any], data: JSONBody[QuoteIn]) -> QuoteOut:
        store = caller_store(request.scope)
        assert store is not None  # /api callers are bearer tokens, read with their store
        return (await answer_quote(request.app.state, store, data, None))[1]

    @get(
        "/pickup-times",
        summary="The pickup times a quote accepts now",
        description="From the store's opening hours, closed dates and pickup settings (preparation time, slot "
        "interval, days ahead). Empty with has_hours true: no pickup time is free in the window (pickup is not "
        "offered). has_hours false: the store takes pickups as soon as they are ready, without a time.",
    )
    async def pickup_times(self, request: Request[Any, Any, Any]) -> PickupTimesOut:
        store = caller_store(request.scope)
        assert store is not None  # /api callers are bearer tokens, read with their store
        hours = hours_of(store.settings)
        slots = pickup_slots(hours, datetime.now(UTC), store.timezone) if hours else []
        return PickupTimesOut(timezone=store.timezone, has_hours=hours is not None, pickup_times=slots)

    @post(
        "/complete",
        summary="Pay a quote and place the order (requires Idempotency-Key)",
        description="201 with the order; 202 when the card needs 3-D Secure (follow action_url) or the payment is "
        "pending; 402 when declined; 409 when the quote expired or the cart changed, or promotion_unavailable when "
        "a promotion of the quote was used up or ended since (fields.code says which; quote again), or "
        "stored_value_unavailable when a gift card / store credit / points balance no longer covers its part "
        "(nothing charged); 422 for an amount mismatch or an unknown gift card (fields.stored_value). Stored value "
        "is held before the card is charged and the card pays the rest; no card is needed when it covers all. "
        "The Idempotency-Key is kept with the checkout attempt: the same key and request again answer the "
        "attempt's outcome (Idempotent-Replayed: true; while the first still runs, once it is decided); the same "
        "key with another request is 422.",
        # the saga keeps the key in the attempt row: no idempotency_keys statements (ADR 0003); answered by
        # app/checkout/fast_path.py with the same function
        opt={OWN_KEYS: True, FAST_ANSWER: FastAnswer(CompleteIn, answer_complete)},
    )
    async def complete(self, request: Request[Any, Any, Any], data: JSONBody[CompleteIn]) -> Response[AttemptOut]:
        store = caller_store(request.scope)
        assert store is not None  # /api callers are bearer tokens, read with their store
        status, attempt, headers = await answer_complete(request.app.state, store, data, request.headers.get(HEADER))
        return Response(attempt, status_code=status, headers=headers)

    @get("/attempts/{attempt_id:uuid}", summary="Where a checkout attempt stands")
    async def attempt(
        self, request: Request[Any, Any, Any], attempt_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> AttemptOut:
        store = await _store(db_session, request)
        saga = await checkout_saga(request.app.state, store)
        return _attempt_out(await saga.outcome(attempt_id))
