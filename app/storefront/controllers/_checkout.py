"""Checkout, payment, the 3-D Secure return, and the order page."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.plugins.flash import flash
from litestar.response import Redirect, Stream, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.factory import checkout_saga
from app.checkout.models import CheckoutAttempt
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import CheckoutExpired, CheckoutSaga, Outcome, PaymentInput
from app.core import kill_switches, live, pg
from app.core.errors import NotFound, TillError, ValidationFailed
from app.core.idempotency import request_hash
from app.core.money import Money
from app.core.outbox import PublishedEvent
from app.core.tenancy import bind_store
from app.customers.services import CustomerService
from app.orders.models import Order
from app.orders.services import OrderService
from app.orders.tracking import OrderStatusFragments
from app.payments.credentials import load_credentials
from app.payments.models import PaymentIntent
from app.payments.provider import CardDetails
from app.promotions.engine import normalise_code
from app.receipts.controllers import shopper_receipt
from app.shipping.providers import BuiltinShipping
from app.stored_value.loyalty.points import shopper_points
from app.stored_value.purchases import buys_cards, reveal
from app.stored_value.shop import paid_with, shopper_credit, tenders_from_form
from app.storefront.controllers._common import (
    TOO_MANY_CODES,
    DbSession,
    FormData,
    cart_token,
    code_refused,
    code_tries_left,
    customer_id_of,
    is_htmx,
    promo_codes,
    set_promo_code,
    shop_context,
    shop_store,
)
from app.stores.commerce import CommerceSettings
from app.stores.hours import format_pickup, hours_of, no_slots_message, pickup_at_of, pickup_slots, slot_groups
from app.stores.models import Store

CHECKOUT_FIELDS = (
    "email", "phone", "shipping", "pickup_at", "name", "line1", "line2", "city", "region", "postal_code", "country",
)  # fmt: skip


def parse_card(data: dict[str, str]) -> tuple[CardDetails | None, dict[str, str]]:
    """Card fields of the payment form; the raw number lives only in this request's memory."""
    number = "".join(ch for ch in data.get("card_number", "") if ch.isdigit())
    expiry = data.get("card_expiry", "").replace(" ", "")
    cvc = data.get("card_cvc", "").strip()
    errors: dict[str, str] = {}
    if not 12 <= len(number) <= 19:
        errors["card_number"] = "Enter the card number."
    month, _, year = expiry.partition("/")
    if not (month.isdigit() and year.isdigit() and 1 <= int(month) <= 12 and len(year) in (2, 4)):
        errors["card_expiry"] = "Enter the expiry as MM/YY."
    if not (cvc.isdigit() and len(cvc) in (3, 4)):
        errors["card_cvc"] = "Enter the 3 or 4 digit security code."
    if errors:
        return None, errors
    full_year = int(year) + (2000 if len(year) == 2 else 0)
    return CardDetails(
        number=number, exp_month=int(month), exp_year=full_year, cvc=cvc, holder=data.get("card_name", "")
    ), {}


# Stripe.js tokenises the card in the shopper's browser (card data never reaches us) and runs in Stripe's frames.
_STRIPE_CSP = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' https://js.stripe.com; frame-src https://js.stripe.com https://hooks.stripe.com; "
    "connect-src 'self' https://api.stripe.com; frame-ancestors 'none'; form-action 'self' https://hooks.stripe.com; "
    "base-uri 'self'"
)


async def _stripe_key(request: Request[Any, Any, Any], db_session: AsyncSession, store: Store) -> str:
    """The publishable key when the card form is Stripe.js: a store on Stripe's real API (not localstripe)."""
    commerce = CommerceSettings.of(store.settings)
    if commerce.payment_provider != "stripe" or request.app.state.settings.stripe_api_base is not None:
        return ""
    credentials = await load_credentials(db_session, store.id, "stripe", commerce.payment_mode)
    return credentials.publishable_key if credentials else ""


def _review(context: dict[str, Any], status_code: int = 200) -> Template:
    snapshot = context.get("snapshot")
    context.setdefault("pickup", _pickup_label(snapshot.shipping if snapshot else None, context["store"]))
    codes = [d["code"] for d in snapshot.discounts if d.get("code")] if snapshot else []
    context.setdefault("code", codes[0] if codes else "")
    headers = {"content-security-policy": _STRIPE_CSP} if context.get("stripe_key") else {}
    return Template("storefront/review.html", context=context, status_code=status_code, headers=headers)


class CheckoutPagesController(Controller):
    include_in_schema = False

    @get("/s/{slug:str}/checkout")
    async def checkout_page(
        self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession
    ) -> Template | Redirect:
        store = await shop_store(request, db_session, slug)
        context = await shop_context(request, db_session, store)
        if not context["cart"].lines:
            return Redirect(f"/s/{store.slug}/cart", status_code=303)
        pickup = _pickup_times(store)
        delivery = _delivery_options(store, pickup)
        offers_pickup = any(option["code"] == "pickup" for option in delivery)
        values: dict[str, str] = {
            "shipping": "pickup" if offers_pickup else "delivery",
            "country": CommerceSettings.of(store.settings).country,
        }
        customer_id = context["customer_id"]
        if customer_id:
            customer = await CustomerService(db_session, store.id).get(customer_id)
            if customer:
                values.update(email=customer.email, name=customer.name, phone=customer.phone)
        context.update(values=values, errors={}, delivery=delivery, pickup=pickup)
        return Template("storefront/checkout.html", context=context)

    @post("/s/{slug:str}/checkout", status_code=303, media_type=MediaType.HTML)
    async def create_quote(
        self, request: Request[Any, Any, Any], slug: FromPath[str], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        store = await shop_store(request, db_session, slug)
        shipping = data.get("shipping", "pickup")
        address = {
            k: data.get(k, "") for k in ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
        }
        quotes = QuoteService(await pg.writer(db_session), store)
        wanted = QuoteRequest(
            cart_token=cart_token(request) or "",
            email=data.get("email", ""),
            phone=data.get("phone", ""),
            shipping_code=shipping,
            address=address if shipping != "pickup" else None,
            customer_id=customer_id_of(request, store),
            pickup_at=data.get("pickup_at") if shipping == "pickup" else None,
            codes=promo_codes(request, store),
        )
        try:
            try:
                snapshot = await quotes.create(wanted)
            except ValidationFailed as refused:
                if "code" not in refused.fields:
                    raise
                # The cart's code does not apply to this order (any more): quote without it and say why.
                snapshot = await quotes.create(replace(wanted, codes=()))
                set_promo_code(request, store, None)
                flash(
                    request,
                    f"Your code {wanted.codes[0]} was not applied: {refused.fields['code']}",
                    category="error",
                )
        except ValidationFailed as exc:
            context = await shop_context(request, db_session, store)
            errors = {k.removeprefix("address."): v for k, v in exc.fields.items()}
            errors.setdefault("form", exc.detail)
            pickup = _pickup_times(store)
            context.update(
                values={k: data.get(k, "") for k in CHECKOUT_FIELDS},
                errors=errors,
                delivery=_delivery_options(store, pickup),
                pickup=pickup,
            )
            return Template("storefront/checkout.html", context=context, status_code=422)
        return Redirect(f"/s/{store.slug}/checkout/{snapshot.id}", status_code=303)

    @get("/s/{slug:str}/checkout/{snapshot_id:uuid}")
    async def review(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        snapshot_id: FromPath[uuid.UUID],
        db_session: DbSession,
    ) -> Template:
        store = await shop_store(request, db_session, slug)
        quotes = QuoteService(await pg.writer(db_session), store)
        snapshot = await quotes.get(snapshot_id)
        context = await shop_context(request, db_session, store)
        context.update(snapshot=snapshot, errors={}, values={}, choices=await quotes.delivery_choices(snapshot))
        context["stripe_key"] = await _stripe_key(request, db_session, store)
        context["store_credit"] = await shopper_credit(request, db_session, store)  # app/stored_value
        context["points"] = await shopper_points(db_session, store.id, customer_id_of(request, store))
        # Kill switch provider_off (docs/operations.md): the page says so and offers no card form.
        off = await kill_switches.is_engaged(db_session, kill_switches.Switch.PROVIDER_OFF, store.id)
        context["payments_off"] = off
        return _review(context)

    @post("/s/{slug:str}/checkout/{snapshot_id:uuid}/pay", status_code=303, media_type=MediaType.HTML)
    async def pay(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        snapshot_id: FromPath[uuid.UUID],
        data: FormData,
        db_session: DbSession,
    ) -> Template | Redirect:
        store = await shop_store(request, db_session, slug)
        quotes = QuoteService(await pg.writer(db_session), store)
        snapshot = await quotes.get(snapshot_id)
        stripe_key = await _stripe_key(request, db_session, store)
        token = data.get("payment_method", "").strip()
        card, errors = (None, {}) if stripe_key else parse_card(data)
        if stripe_key and not token.startswith("pm_"):
            errors["card"] = "Enter your card details."
        tenders = tenders_from_form(data)  # gift card / store credit pay first (app/stored_value)
        if (
            tenders
            and not token
            and not any(data.get(f, "").strip() for f in ("card_number", "card_expiry", "card_cvc"))
        ):
            card, errors = None, {k: v for k, v in errors.items() if not k.startswith("card")}  # it may cover all
        key = data.get("idempotency_key", "")
        if not key:
            errors["form"] = "This form is out of date. Please try again."
        values = {"card_name": data.get("card_name", ""), "card_expiry": data.get("card_expiry", "")}
        values |= {
            "gift_card_code": data.get("gift_card_code", ""),
            "use_store_credit": data.get("use_store_credit", ""),
            "use_points": data.get("use_points", ""),
        }
        context = await shop_context(request, db_session, store)
        context["points"] = await shopper_points(db_session, store.id, customer_id_of(request, store))
        context["stripe_key"] = stripe_key
        if errors:
            context.update(snapshot=snapshot, errors=errors, values=values)
            return _review(context, 422)
        if await kill_switches.engaged_fast(request.app.state.redis, kill_switches.Switch.PROVIDER_OFF, store.id):
            context.update(snapshot=snapshot, errors={}, values=values, payments_off=True)
            return _review(context, 503)  # nothing charged: the saga never starts
        saga = await self._saga(request, store)
        await db_session.commit()  # the saga runs its own short transactions; hold none across the provider call
        amount = data.get("amount_minor", "")
        payment = PaymentInput(
            card=card,
            payment_method_token=token if stripe_key else None,
            amount_minor=int(amount) if amount.isdigit() else None,
            return_url=f"{str(request.base_url).rstrip('/')}/s/{store.slug}/checkout/return",
            tenders=tenders,
        )
        paying = f"{snapshot_id}:{amount}:{[(t.instrument, t.code) for t in tenders]}"
        fingerprint = request_hash("POST", f"/checkout/{snapshot_id}", b"", paying.encode())
        try:
            outcome = await saga.complete(snapshot_id, key, payment, fingerprint=fingerprint)
        except CheckoutExpired as exc:
            codes = _codes_of(snapshot)
            fresh, note = await _quote_again(quotes, _again(request, snapshot, codes))
            if exc.fields.get("code") or note.get("code"):  # a promotion ran out or ended: the new quote is without it
                set_promo_code(request, store, None)
            message = " ".join(m for m in (exc.detail, note.get("pickup_at", ""), note.get("code", "")) if m)
            context.update(snapshot=fresh, errors={"form": message}, values=values)
            return _review(context, 409)
        except TillError as exc:
            context.update(snapshot=snapshot, errors={"form": exc.detail, **exc.fields}, values=values)
            return _review(context, exc.status_code)
        if outcome.state == "completed" and promo_codes(request, store):
            set_promo_code(request, store, None)  # used: the next cart starts without it
        return self._after_payment(store, outcome, context, snapshot, values)

    @post("/s/{slug:str}/checkout/{snapshot_id:uuid}/code", status_code=303, media_type=MediaType.HTML)
    async def review_code(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        snapshot_id: FromPath[uuid.UUID],
        data: FormData,
        db_session: DbSession,
    ) -> Template | Redirect | Response[Any]:
        """Apply a promotion code on the review page (or ``remove`` it): a new quote with the same details and the
        code, then its review page. A code that does not apply is answered with its reason (422) next to the field;
        the quote on screen stays as it was."""
        store = await shop_store(request, db_session, slug)
        quotes = QuoteService(await pg.writer(db_session), store)
        snapshot = await quotes.get(snapshot_id)
        code = normalise_code(data.get("code", ""))
        remove = bool(data.get("remove"))
        error = "" if remove or code else "Enter a code."
        if not error and not remove and not await code_tries_left(request, store):
            error = TOO_MANY_CODES
        fresh = None
        if not error and snapshot.status == "open":
            try:
                fresh, _ = await _quote_again(
                    quotes, _again(request, snapshot, () if remove else (code,)), keep_code=True
                )
            except ValidationFailed as refused:
                if "code" not in refused.fields:
                    raise
                error = refused.fields["code"]
                await code_refused(request, store)
        if error:
            status = 429 if error == TOO_MANY_CODES else 422
            context = await shop_context(request, db_session, store)
            context.update(snapshot=snapshot, errors={}, values={}, code_value=code, typed_error=error)
            if is_htmx(request):
                codes = _codes_of(snapshot)
                context["code"] = codes[0] if codes else ""
                context.update(action=f"/s/{store.slug}/checkout/{snapshot.id}/code", target="#promo-code")
                return Template("storefront/_code.html", context=context, status_code=status)
            context["choices"] = await quotes.delivery_choices(snapshot)
            return _review(context, status)
        target = f"/s/{store.slug}/checkout/{(fresh or snapshot).id}"
        if fresh is not None:
            set_promo_code(request, store, None if remove else code)
        if is_htmx(request):
            return Response(content="", status_code=200, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)

    def _after_payment(
        self, store: Store, outcome: Outcome, context: dict[str, Any], snapshot: Any, values: dict[str, str]
    ) -> Template | Redirect:
        if outcome.state == "completed" and outcome.order is not None:
            return Redirect(
                f"/s/{store.slug}/orders/{outcome.order.id}?key={outcome.order.access_token}", status_code=303
            )
        if outcome.state == "awaiting_action" and outcome.action_url:
            return Redirect(outcome.action_url, status_code=303)
        if outcome.state in ("awaiting_payment", "awaiting_action", "started", "reserved"):
            return Redirect(f"/s/{store.slug}/checkout/attempts/{outcome.attempt_id}", status_code=303)
        context.update(snapshot=snapshot, errors={"form": outcome.message or "The payment failed."}, values=values)
        return _review(context, 402)

    async def _saga(self, request: Request[Any, Any, Any], store: Store) -> CheckoutSaga:
        return await checkout_saga(request.app.state, store)

    @get("/s/{slug:str}/checkout/attempts/{attempt_id:uuid}")
    async def attempt_page(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        attempt_id: FromPath[uuid.UUID],
        db_session: DbSession,
    ) -> Template | Redirect | Response[Any]:
        store = await shop_store(request, db_session, slug)
        outcome = await (await self._saga(request, store)).outcome(attempt_id)
        if outcome.state == "completed" and outcome.order is not None:
            target = f"/s/{store.slug}/orders/{outcome.order.id}?key={outcome.order.access_token}"
            if is_htmx(request):
                return Response(content="", status_code=200, headers={"HX-Redirect": target})
            return Redirect(target, status_code=303)
        context = await shop_context(request, db_session, store)
        context.update(outcome=outcome)
        return Template("storefront/attempt.html", context=context)

    @get("/s/{slug:str}/checkout/return")
    async def provider_return(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        db_session: DbSession,
        payment_intent: FromQuery[str] = "",
    ) -> Redirect:
        """Where Stripe's 3-D Secure page sends the shopper back (``?payment_intent=pi_…``): to the attempt."""
        store = await shop_store(request, db_session, slug)
        bind_store(db_session, store.id)
        attempt_id = await db_session.scalar(
            select(CheckoutAttempt.id)
            .join(PaymentIntent, PaymentIntent.id == CheckoutAttempt.payment_intent_id)
            .where(PaymentIntent.provider_ref == payment_intent, PaymentIntent.provider_ref != "")
        )
        if attempt_id is None:
            raise NotFound("We could not find that payment.")
        return Redirect(f"/s/{store.slug}/checkout/attempts/{attempt_id}/return", status_code=303)

    @get("/s/{slug:str}/checkout/attempts/{attempt_id:uuid}/return")
    async def attempt_return(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        attempt_id: FromPath[uuid.UUID],
        db_session: DbSession,
    ) -> Template | Redirect:
        """Where the 3-D Secure challenge sends the shopper back."""
        store = await shop_store(request, db_session, slug)
        saga = await self._saga(request, store)
        await db_session.commit()
        outcome = await saga.resume(attempt_id)
        if outcome.state == "failed":
            snapshot_id = await saga.snapshot_of(attempt_id)
            snapshot = await QuoteService(await pg.writer(db_session), store).get(snapshot_id)
            if snapshot is not None:
                context = await shop_context(request, db_session, store)
                context.update(snapshot=snapshot, errors={"form": outcome.message}, values={})
                return _review(context, 402)
        context = await shop_context(request, db_session, store)
        return self._after_payment(store, outcome, context, None, {})

    # ---- orders ------------------------------------------------------------------------------------

    @get("/s/{slug:str}/orders/{order_id:uuid}")
    async def order_page(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        order_id: FromPath[uuid.UUID],
        db_session: DbSession,
        key: FromQuery[str | None] = None,
    ) -> Template:
        store, order = await _shoppers_order(request, db_session, slug, order_id, key)
        context = await shop_context(request, db_session, store)
        context.update(order=order, key=key or "", after=await live.last_seq(db_session, store.id))
        context["pickup"] = _pickup_label(order.shipping, store)
        context["receipt_info"] = await shopper_receipt(db_session, request.app.state.settings, store.id, order.id)
        context["paid_with"] = await paid_with(db_session, store.id, order.id)  # gift card / store credit / points
        context["buys_cards"] = await buys_cards(db_session, store, order.id)  # gift cards bought: codes shown once
        context["bought_cards"] = await reveal(db_session, store.id, order.id) if context["buys_cards"] else []
        if any(card.code for card in context["bought_cards"]):  # codes shown once: no copy in any cache
            return Template("storefront/order.html", context=context, headers={"cache-control": "no-store"})
        return Template("storefront/order.html", context=context)

    @get("/s/{slug:str}/orders/{order_id:uuid}/events")
    async def order_events(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        order_id: FromPath[uuid.UUID],
        db_session: DbSession,
        key: FromQuery[str | None] = None,
        after: FromQuery[int] = 0,
    ) -> Stream:
        """The order page's status, again each time the order changes (the same access as the page)."""
        store, _ = await _shoppers_order(request, db_session, slug, order_id, key)
        await db_session.close()  # the page may stay open for an hour: hold no pooled connection meanwhile
        state = request.app.state
        template = request.app.template_engine.get_template("storefront/_order_status.html")  # type: ignore[union-attr]
        fragments = OrderStatusFragments(state.sessions, store.id, order_id, template.render)

        async def message_for(event: PublishedEvent) -> bytes | None:
            return await fragments.message(event) if fragments.concerns(event) else None

        start = live.resume_point(request.headers.get("last-event-id"), after)
        hub: live.Hub = state.live
        return live.response(hub.stream(state.sessions, store.id, start, f"order:{order_id}", message_for))

    # ---- account -----------------------------------------------------------------------------------


async def _shoppers_order(
    request: Request[Any, Any, Any], session: AsyncSession, slug: str, order_id: uuid.UUID, key: str | None
) -> tuple[Store, Order]:
    """The store and the order its shopper may see: by the order's link key, or signed in as its customer."""
    store = await shop_store(request, session, slug)
    order = await OrderService(session, store.id).for_shopper(
        order_id, token=key, customer_id=customer_id_of(request, store)
    )
    return store, order


def _delivery_options(store: Store, pickup: dict[str, Any]) -> list[dict[str, Any]]:
    """The rates offered before an address is known (pickup): shown as choices on the checkout form. Pickup is
    left out when the store's hours leave no pickup time in the window (``pickup["unavailable"]`` says so)."""
    shipping = BuiltinShipping.from_settings(store.settings, store.currency)
    rates = shipping.quote_rates(destination=None, items=[], subtotal=Money(0, store.currency))
    offered = [r for r in rates if not (r.code == "pickup" and pickup["unavailable"])]
    return [{"code": r.code, "label": r.label, "amount": r.amount} for r in offered]


def _pickup_times(store: Store) -> dict[str, Any]:
    """The checkout form's pickup-time choice: ``groups`` of slots by day for a store with opening hours (None:
    no hours, pickup as soon as it is ready); ``unavailable``, the sentence shown when no slot is free."""
    hours = hours_of(store.settings)
    if hours is None:
        return {"groups": None, "unavailable": ""}
    now = datetime.now(UTC)
    slots = pickup_slots(hours, now, store.timezone)
    reason = no_slots_message(hours)
    unavailable = "" if slots else f"Pickup is not available: {reason[0].lower()}{reason[1:]}"
    return {"groups": slot_groups(slots, now, store.timezone), "unavailable": unavailable}


def _pickup_label(shipping: Mapping[str, Any] | None, store: Store) -> str:
    """A quote's or an order's frozen pickup time in words on the store's clock ("today at 10:15"), else ""."""
    at = pickup_at_of(shipping)
    return format_pickup(at, datetime.now(UTC), store.timezone) if at else ""


def _codes_of(snapshot: Any) -> tuple[str, ...]:
    """The promotion codes a quote was made with."""
    return tuple(d["code"] for d in snapshot.discounts if d.get("code"))


def _again(request: Request[Any, Any, Any], snapshot: Any, codes: tuple[str, ...]) -> QuoteRequest:
    """A new quote for the shopper's cart with a quote's details (contact, delivery, pickup time) and ``codes``."""
    return QuoteRequest(
        cart_token=cart_token(request) or "",
        email=snapshot.email,
        phone=snapshot.phone,
        shipping_code=snapshot.shipping["code"],
        address=snapshot.address,
        customer_id=snapshot.customer_id,
        pickup_at=snapshot.shipping.get("pickup_at"),
        codes=codes,
    )


async def _quote_again(
    quotes: QuoteService, again: QuoteRequest, *, keep_code: bool = False
) -> tuple[Any, dict[str, str]]:
    """The new quote, and what had to change for it, by field: a pickup time no longer free becomes the first free
    one; a code that no longer applies is left out (unless ``keep_code``: then its refusal is raised)."""
    note: dict[str, str] = {}
    for _ in range(3):
        try:
            return await quotes.create(again), note
        except ValidationFailed as refused:
            if "pickup_at" in refused.fields and again.pickup_at is not None:
                again = replace(again, pickup_at=None)  # the first free pickup time
                note["pickup_at"] = "The pickup time you chose is not available any more: check the new one."
            elif "code" in refused.fields and again.codes and not keep_code:
                note["code"] = f"Your code {again.codes[0]} was not applied: {refused.fields['code']}"
                again = replace(again, codes=())
            else:
                raise
    return await quotes.create(again), note
