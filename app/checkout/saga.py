"""Placing the order: a saga on a frozen snapshot (Invariant 6).

Steps and their compensations, each in its own short transaction, never holding a
transaction or a row lock across the provider call:

  1. claim the attempt (unique per idempotency key and per live snapshot), check the snapshot,
     reserve stock                                              ↺ release stock
  2. authorise the card (capturing at once when the store captures at checkout)
                                                                ↺ void the authorisation
  3. record the payment, create the order and its lines, commit the stock, close the
     snapshot and the cart, emit order.placed
Stored value (gift cards, store credit, points; app/stored_value) is held in step 1's statement, before the card
is charged (the card pays only the rest; nothing when the tenders cover the total), captured in step 3's
statement, and released by every compensation (``_fail``: declines, timeouts, the crash sweeper).
A failure undoes what was done. A crashed attempt is finished or compensated by ``recover``.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cart.services import content_hash
from app.checkout.models import CheckoutAttempt, CheckoutSnapshot
from app.checkout.quotes import snapshot_by_id
from app.core import pg
from app.core.db import detached
from app.core.errors import Conflict, TillError, ValidationFailed
from app.core.money import Money
from app.core.tenancy import bind_store, system_scope
from app.customers.services import GUEST_CUSTOMER_CTE, CustomerService, guest_customer_params
from app.inventory.services import (
    MOVE_RESERVED_CTES,
    RESERVE_CHECK_CTES,
    RESERVE_CTES,
    InventoryService,
    SoldOut,
    reserve_params,
    stock_move_params,
)
from app.orders.models import Order
from app.orders.services import PLACE_ORDER_CTES, placing
from app.payments.capabilities import SupportsCustomers
from app.payments.fees import application_fee, processing_fee
from app.payments.models import PaymentIntent
from app.payments.provider import (
    AuthorizeRequest,
    CardDetails,
    PaymentError,
    PaymentProvider,
    PaymentStatus,
    ProviderResult,
    ProviderTimeout,
)
from app.payments.services import (
    RECORD_PAYMENT_CTES,
    PaymentFees,
    PaymentLedger,
    give_money_back,
    is_success,
    payment_params,
    payment_status_of,
)
from app.promotions.claims import PROMO_CHECK_CTES, PROMO_CLAIM_CTES, PROMO_USE_CTES, claim_params, short_message
from app.promotions.services import PromotionService
from app.stored_value.fragments import (
    SV_CAPTURE_CTES,
    SV_CHECK_CTES,
    SV_HOLD_CTES,
    SV_PLACE_GATE,
    hold_params,
    tender_value,
)
from app.stored_value.fragments import short_message as sv_short_message
from app.stored_value.instruments import SpendContext, Tender, TenderRequest, resolve_tenders
from app.stored_value.ledger import release_holder
from app.stores.commerce import CommerceSettings
from app.stores.models import Store

TERMINAL = ("completed", "failed")
# Longer than a provider call can take (Stripe: 20 s timeout, 2 retries), so the sweeper does not take a slow
# call for a dead process; if it ever does, the late answer is given back (_place).
STALL_AFTER = timedelta(seconds=120)
WAIT_FOR_OTHER = 15.0


class PaymentDeclined(TillError):
    status_code = 402
    title = "Payment declined"
    code = "payment_declined"


class CheckoutExpired(TillError):
    status_code = 409
    title = "Checkout expired"
    code = "checkout_expired"


class StoredValueUnavailable(CheckoutExpired):
    """A gift card, store credit or points balance could not cover its part at payment (spent meanwhile,
    disabled): nothing was reserved or charged. ``fields["stored_value"]`` says which."""

    title = "Balance unavailable"
    code = "stored_value_unavailable"


class PromotionUnavailable(CheckoutExpired):
    """A promotion of the quote could not be claimed at payment (used up, ended): nothing was reserved or charged;
    the shopper reviews a new total. ``fields["code"]`` says why."""

    title = "Promotion unavailable"
    code = "promotion_unavailable"


@dataclass(frozen=True)
class PaymentInput:
    card: CardDetails | None = None
    payment_method_token: str | None = None  # a provider's token instead of a card (Stripe.js: pm_...)
    amount_minor: int | None = None  # what the client believes it pays; must equal the snapshot total
    return_url: str = ""
    tenders: tuple[TenderRequest, ...] = ()  # stored value first (in this order); the card pays the rest


@dataclass
class Outcome:
    attempt_id: uuid.UUID
    state: str
    order: Order | None = None
    action_url: str = ""
    error_code: str = ""
    message: str = ""
    replayed: bool = False
    extra: dict[str, str] = field(default_factory=dict)


# Raw SQL for the hot path (ADR 0003). Every statement names the store.
_EXISTING_ATTEMPT = """
    SELECT COALESCE(
        (SELECT jsonb_build_array(a.id, a.idempotency_key, a.request_hash) FROM checkout_attempts a
         WHERE a.store_id = $1 AND a.idempotency_key = $2),
        (SELECT jsonb_build_array(a.id, a.idempotency_key, a.request_hash) FROM checkout_attempts a
         WHERE a.snapshot_id = $3 AND a.state <> 'failed' AND a.store_id = $1)
    )
"""
_SNAPSHOT_CART_AND_ATTEMPT = """
    SELECT s.id, s.store_id, s.cart_id, s.customer_id, s.email, s.phone, s.currency, s.prices_include_tax,
           s.lines, s.discounts, s.tax_lines, s.shipping, s.address,
           s.subtotal_minor, s.discount_minor, s.shipping_minor, s.tax_minor, s.total_minor,
           s.content_hash, s.expires_at, s.status, s.created_at, s.updated_at,
           -- each line's price by the variant's primary key: as a join, the planner scanned every variant of the
           -- store and probed the cart's lines once per variant (254 buffers for a 3-line cart of an 83-variant
           -- store, growing with the catalog). A variant gone from the store prices its line NULL: the cart's
           -- hash no longer matches the quote's, as when the line is gone.
           (SELECT COALESCE(jsonb_agg(jsonb_build_array(l.variant_id, l.quantity,
                       (SELECT v.price_minor FROM variants v WHERE v.id = l.variant_id AND v.store_id = $2))),
                   '[]'::jsonb)
            FROM cart_lines l WHERE l.cart_id = s.cart_id AND l.store_id = $2) AS cart_lines,
           -- this key's attempt first, else the checkout's live one: two index lookups (one OR across the two
           -- would read every attempt of the store)
           COALESCE(
               (SELECT jsonb_build_array(a.id, a.idempotency_key, a.request_hash) FROM checkout_attempts a
                WHERE a.store_id = $2 AND a.idempotency_key = $3),
               (SELECT jsonb_build_array(a.id, a.idempotency_key, a.request_hash) FROM checkout_attempts a
                WHERE a.snapshot_id = $1 AND a.state <> 'failed' AND a.store_id = $2)
           ) AS existing
    FROM checkout_snapshots s WHERE s.id = $1 AND s.store_id = $2
"""
# Step 2 as one statement (ADR 0003, 0006): the attempt's claim (``holder``) between inventory's reserve
# fragments, gated on every line fitting; with promotions, their uses are claimed in the same statement, after
# the stock rows are locked, and the attempt is gated on every one of them still having a use left.
_CLAIM_ATTEMPT = """
    holder AS (
        INSERT INTO checkout_attempts (id, store_id, snapshot_id, idempotency_key, request_hash, state, amount_minor,
                                       card_brand, card_last4, error_code, error_message, steps, created_at,
                                       updated_at)
        SELECT :attempt_id, :store_id, :snapshot_id, :attempt_key, :attempt_hash, 'reserved', :attempt_amount, '', '',
               '', '', '[]'::jsonb, :attempt_now, :attempt_now
        WHERE NOT EXISTS (SELECT 1 FROM short){gate}
        ON CONFLICT DO NOTHING
        RETURNING id
    )
"""
_RESERVE = f"""
    WITH {RESERVE_CHECK_CTES}, {_CLAIM_ATTEMPT.format(gate="")}, {RESERVE_CTES}
    SELECT (SELECT id FROM holder) AS holder_id, ARRAY(SELECT variant_id FROM short) AS short, NULL AS promo_short
"""  # noqa: S608 (fragments are constants; values are parameters)
_RESERVE_WITH_PROMOTIONS = f"""
    WITH {RESERVE_CHECK_CTES},
    promo_gate AS (SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM short)),
    {PROMO_CHECK_CTES},
    {_CLAIM_ATTEMPT.format(gate=" AND NOT EXISTS (SELECT 1 FROM promo_short)")},
    promo_holder AS (SELECT id FROM holder),
    {RESERVE_CTES},
    {PROMO_CLAIM_CTES}
    SELECT (SELECT id FROM holder) AS holder_id, ARRAY(SELECT variant_id FROM short) AS short,
           (SELECT jsonb_agg(jsonb_build_array(id, code, reason)) FROM promo_short) AS promo_short
"""  # noqa: S608 (fragments are constants; values are parameters)


@functools.lru_cache(maxsize=4)
def _reserve_sql(promotions: bool, stored_value: bool) -> str:
    """Step 2's statement: with promotions their uses are claimed after the stock rows (ADR 0006); with stored
    value the tenders' account rows are locked after those and held (app/stored_value/fragments.py), and the
    attempt is gated on every one of them covering its part."""
    if not stored_value:
        return _RESERVE_WITH_PROMOTIONS if promotions else _RESERVE
    promo_check = ""
    if promotions:
        promo_check = f"promo_gate AS (SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM short)), {PROMO_CHECK_CTES},"  # noqa: S608
    gate = " AND NOT EXISTS (SELECT 1 FROM promo_short)" if promotions else ""
    holder_gate = f"{gate} AND NOT EXISTS (SELECT 1 FROM sv_short)"  # noqa: S608
    promo_claim = f", promo_holder AS (SELECT id FROM holder), {PROMO_CLAIM_CTES}" if promotions else ""  # noqa: S608
    promo_short = "(SELECT jsonb_agg(jsonb_build_array(id, code, reason)) FROM promo_short)" if promotions else "NULL"
    return f"""
    WITH {RESERVE_CHECK_CTES}, {promo_check}
    sv_gate AS (SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM short){gate}),
    {SV_CHECK_CTES},
    {_CLAIM_ATTEMPT.format(gate=holder_gate)},
    sv_holder AS (SELECT id FROM holder),
    {RESERVE_CTES}{promo_claim},
    {SV_HOLD_CTES}
    SELECT (SELECT id FROM holder) AS holder_id, ARRAY(SELECT variant_id FROM short) AS short,
           {promo_short} AS promo_short,
           (SELECT jsonb_agg(jsonb_build_array(account_id, instrument, reason, spendable)) FROM sv_short) AS sv_short
    """  # noqa: S608 (fragments are constants; values are parameters)


_SNAPSHOT_OF_ATTEMPT = "SELECT snapshot_id FROM checkout_attempts WHERE id = $1 AND store_id = $2"
# Lock order: the reserved stock rows first (the sub-select's condition runs ``stock_locked`` before the
# attempt row is locked), then the attempt. A double click's reserve takes the stock rows first too and
# only then waits on the attempt row, so neither can hold what the other waits for. The same condition
# places the order only while the attempt still holds its reservations: a shopper who spent longer in a
# 3-D Secure challenge than a reservation lives (the sweeper released it) gets their money back instead
# of an order whose stock may have been sold to someone else. Selling is not gated on the attempt: an
# attempt that is no longer open has no active reservations left (a failed one released them in the same
# transaction; a completed one sold them).
_PLACE_TEMPLATE = """
    WITH {MOVE_RESERVED_CTES},
    go AS (
        UPDATE checkout_attempts a
        SET state = 'completed', order_id = :order_id,
            payment_intent_id = COALESCE(o.payment_intent_id, :intent_new_id),
            card_brand = :pay_brand, card_last4 = :pay_last4, updated_at = now()
        FROM (SELECT id, payment_intent_id, state FROM checkout_attempts
              WHERE id = :attempt_id AND store_id = :store_id AND EXISTS (SELECT 1 FROM stock_locked){SV_GATE}
              LIMIT 1 FOR UPDATE) o
        -- the state of the row just locked (LIMIT 1 keeps this test out of the subquery's scan): asked of ``a``
        -- or of the subquery's scan, it let the planner walk the partial index of open attempts, every checkout
        -- in flight, when the statistics said few were open
        WHERE a.id = o.id AND o.state NOT IN ('completed', 'failed')
        RETURNING o.payment_intent_id AS intent_id
    ),
    {GUEST_CUSTOMER_CTE},
    {PLACE_ORDER_CTES},
    {RECORD_PAYMENT_CTES},{PROMO_USE_CTES}{SV_CAPTURE}
    snapshot_closed AS (
        UPDATE checkout_snapshots SET status = 'completed', updated_at = now()
        WHERE id = :snapshot_id AND store_id = :store_id AND EXISTS (SELECT 1 FROM go)
    ), cart_converted AS (
        UPDATE carts SET status = 'converted', updated_at = now()
        WHERE id = :cart_id AND store_id = :store_id AND EXISTS (SELECT 1 FROM go)
    )
    SELECT (SELECT number FROM placed)
"""
_FRAGMENTS = {
    "MOVE_RESERVED_CTES": MOVE_RESERVED_CTES,
    "GUEST_CUSTOMER_CTE": GUEST_CUSTOMER_CTE,
    "PLACE_ORDER_CTES": PLACE_ORDER_CTES,
    "RECORD_PAYMENT_CTES": RECORD_PAYMENT_CTES,
}
_PLACE = _PLACE_TEMPLATE.format(**_FRAGMENTS, PROMO_USE_CTES="", SV_GATE="", SV_CAPTURE="")
# A quote with discounts: its held promotion uses go on the order in the same statement.
_PLACE_WITH_PROMOTIONS = _PLACE_TEMPLATE.format(
    **_FRAGMENTS, PROMO_USE_CTES=f"{PROMO_USE_CTES},", SV_GATE="", SV_CAPTURE=""
)


@functools.lru_cache(maxsize=4)
def _place_sql(promotions: bool, stored_value: bool) -> str:
    """Step 3's statement; with stored value it places only while every hold of the attempt is open, and
    captures them with the order."""
    if not stored_value:
        return _PLACE_WITH_PROMOTIONS if promotions else _PLACE
    return _PLACE_TEMPLATE.format(
        **_FRAGMENTS,
        PROMO_USE_CTES=f"{PROMO_USE_CTES}," if promotions else "",
        SV_GATE=SV_PLACE_GATE,
        SV_CAPTURE=f"{SV_CAPTURE_CTES},",
    )


STORED_VALUE_ONLY = "stored_value"  # the payment "provider" of an order the tenders paid in full


class CheckoutSaga:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: Store,
        provider: PaymentProvider,
        *,
        on_pending: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.engine: AsyncEngine = sessions.kw["bind"]  # the hot path's raw SQL (ADR 0003): pg.connection(engine)
        self.store = store
        self.provider = provider
        self.on_pending = on_pending  # told the provider_ref of a payment that completes later (webhook)
        self.settings = CommerceSettings.of(store.settings)

    # ---- entry point ---------------------------------------------------------------------------

    async def complete(
        self, snapshot_id: uuid.UUID, idempotency_key: str, payment: PaymentInput, *, fingerprint: str
    ) -> Outcome:
        now = datetime.now(UTC)
        attempt_id = uuid.uuid4()
        store_id = self.store.id
        async with pg.connection(self.engine) as conn:  # two statements, each its own transaction
            row = await conn.fetchrow(_SNAPSHOT_CART_AND_ATTEMPT, snapshot_id, store_id, idempotency_key)
            if row is None:
                raise ValidationFailed("This checkout does not exist.", fields={"snapshot_id": "Unknown checkout."})
            snapshot = detached(CheckoutSnapshot, {k: v for k, v in row.items() if k not in ("cart_lines", "existing")})
            claimed: uuid.UUID | None = None
            tenders: list[Tender] = []
            if row["existing"] is None:
                self._check_snapshot(snapshot, payment, now)
                if content_hash([(uuid.UUID(v), q, p) for v, q, p in row["cart_lines"]]) != snapshot.content_hash:
                    raise CheckoutExpired(
                        "Your cart changed since the totals were calculated. Please review the new totals."
                    )
                if payment.tenders:  # one statement per instrument; the hold re-checks under the row lock
                    context = SpendContext(store_id, snapshot.currency, snapshot.total_minor, snapshot.customer_id)
                    tenders = await resolve_tenders(conn, payment.tenders, context)
                if (
                    tender_value(tenders) < snapshot.total_minor
                    and payment.card is None
                    and not (payment.payment_method_token)
                ):
                    raise ValidationFailed(
                        "Add a card to pay the rest.", fields={"card": "The balance does not cover the total."}
                    )
                claimed = await self._reserve(
                    conn, attempt_id, snapshot, idempotency_key, fingerprint, now, tenders=tenders
                )
            if claimed is None:  # another request holds this key or this checkout: join it
                existing = row["existing"] or await conn.fetchval(
                    _EXISTING_ATTEMPT, store_id, idempotency_key, snapshot_id
                )
        if claimed is None:
            outcome = await self.wait_for(self._joinable(existing, idempotency_key, fingerprint))
            outcome.replayed = True
            return outcome
        card_minor = snapshot.total_minor - tender_value(tenders)
        if tenders and card_minor == 0:  # the tenders pay it all: no card, the order is placed at once
            return await self._place(attempt_id, _stored_value_result(attempt_id, snapshot.currency), "", snapshot)
        return await self._authorize(attempt_id, snapshot, payment, amount_minor=card_minor)

    async def _reserve(
        self,
        conn: pg.Connection,
        attempt_id: uuid.UUID,
        snapshot: CheckoutSnapshot,
        key: str,
        fingerprint: str,
        now: datetime,
        *,
        tenders: list[Tender] | None = None,
    ) -> uuid.UUID | None:
        """Claim the attempt, reserve every line, claim the quote's promotion uses and hold the stored-value
        tenders, all or nothing, in one statement. SoldOut, PromotionUnavailable or StoredValueUnavailable when
        something is short; None when the key or the checkout has an attempt already (join it)."""
        quantities: dict[uuid.UUID, int] = {}
        for line in snapshot.lines:
            variant_id = uuid.UUID(line["variant_id"])
            quantities[variant_id] = quantities.get(variant_id, 0) + int(line["quantity"])
        params = {
            "store_id": self.store.id,
            "attempt_id": attempt_id,
            "snapshot_id": snapshot.id,
            "attempt_key": key,
            "attempt_hash": fingerprint,
            "attempt_amount": snapshot.total_minor - tender_value(tenders or []),  # what the card pays
            "attempt_now": now,
            **reserve_params(quantities, now=now),
        }
        if snapshot.discounts:
            params |= claim_params(snapshot.discounts, email=snapshot.email, currency=snapshot.currency, channel="web")
        if tenders:
            params |= hold_params(tenders, currency=snapshot.currency, now=now)
        sql, args = pg.named(_reserve_sql(bool(snapshot.discounts), bool(tenders)), params)
        row = await conn.fetchrow(sql, *args)
        if row["short"]:
            raise SoldOut(sorted(row["short"]))
        if tenders and row["sv_short"]:
            if await conn.fetchval(_EXISTING_ATTEMPT, self.store.id, key, snapshot.id) is not None:
                return None  # a double click: join the first
            message, fields = sv_short_message(row["sv_short"], tenders)
            raise StoredValueUnavailable(message, fields=fields)
        if row["promo_short"]:
            # A double click's second request finds the use its first request just claimed: it joins that one.
            if await conn.fetchval(_EXISTING_ATTEMPT, self.store.id, key, snapshot.id) is not None:
                return None
            message, fields = short_message(row["promo_short"])
            raise PromotionUnavailable(message, fields=fields)
        holder_id: uuid.UUID | None = row["holder_id"]
        return holder_id

    # ---- step 2: the provider call, outside any transaction ---------------------------------------

    async def _authorize(
        self, attempt_id: uuid.UUID, snapshot: CheckoutSnapshot, payment: PaymentInput, *, amount_minor: int
    ) -> Outcome:
        key = f"checkout:{attempt_id}:authorize"
        amount = Money(amount_minor, snapshot.currency)  # the total less what stored value pays
        fees = self._fees(amount)
        destination = self.settings.connect_charge_type == "destination" and fees.connected_account
        customer_ref = await self._customer_ref(snapshot)
        request = AuthorizeRequest(
            amount=amount,
            idempotency_key=key,
            card=payment.card,
            payment_method_token=payment.payment_method_token,
            capture=self.settings.capture_policy == "at_checkout",
            return_url=payment.return_url,
            description=f"{self.store.name} checkout",
            metadata={"attempt_id": str(attempt_id), "snapshot_id": str(snapshot.id)},
            customer_ref=customer_ref,
            destination_account=fees.connected_account if destination else "",
            application_fee=Money(fees.application_fee_minor, amount.currency) if destination else None,
            transfer_group=f"attempt-{attempt_id}" if fees.connected_account and not destination else "",
        )
        try:
            result = await self.provider.authorize(request)
        except ProviderTimeout as exc:
            return await self._unknown_outcome(attempt_id, exc.provider_ref, key)
        except PaymentError as exc:
            return await self._fail(attempt_id, "payment_error", exc.message)
        return await self._settle(attempt_id, result, key, snapshot=snapshot)

    async def _unknown_outcome(self, attempt_id: uuid.UUID, provider_ref: str, key: str) -> Outcome:
        """A timeout: ask the provider what happened, never guess. Money held for an unsure order is voided."""
        try:
            result = await self.provider.get_transaction(provider_ref) if provider_ref else None
        except PaymentError:
            result = None
        if result is not None and is_success(result):
            await self._reverse(result, attempt_id, reason="timeout")
        return await self._fail(
            attempt_id, "payment_unconfirmed", "The payment could not be confirmed, and you have not been charged."
        )

    async def _reverse(self, result: ProviderResult, attempt_id: uuid.UUID, *, reason: str) -> None:
        """Give held money back: void an authorisation, refund a capture. Both keyed, so a retry is a no-op."""
        kind, key, reversed_ = await give_money_back(
            self.provider,
            provider_ref=result.provider_ref,
            currency=result.amount.currency,
            captured_minor=result.captured.amount_minor,
            refunded_minor=result.refunded.amount_minor,
            key_prefix=f"checkout:{attempt_id}",
            reason=reason,
        )
        async with self.sessions() as session, session.begin():
            # Locked: two sweepers (or a sweeper and a late return) reversing the same attempt record it once.
            attempt = await self._attempt(session, attempt_id, lock=True)
            intent, _ = await self._intent(session, attempt, result, f"checkout:{attempt_id}:authorize")
            ledger = PaymentLedger(session, self.store.id)
            if not await ledger.has_entry(intent, key):
                ledger.record(intent, kind, reversed_, key)
                attempt.steps = [*attempt.steps, {"step": kind, "reason": reason, "at": _now()}]

    async def _intent(
        self,
        session: AsyncSession,
        attempt: CheckoutAttempt,
        result: ProviderResult,
        key: str,
        *,
        order_id: uuid.UUID | None = None,
    ) -> tuple[PaymentIntent, bool]:
        """The attempt's payment intent, opened from ``result`` when it has none yet. (intent, newly opened)"""
        intent = await session.get(PaymentIntent, attempt.payment_intent_id) if attempt.payment_intent_id else None
        if intent is not None:
            return intent, False
        intent = PaymentLedger(session, self.store.id).open_intent(
            snapshot_id=attempt.snapshot_id,
            provider=self.provider.name,
            capture_method=self._capture_method(),
            result=result,
            idempotency_key=key,
            order_id=order_id,
            fees=self._fees(result.amount),
        )
        attempt.payment_intent_id = intent.id
        return intent, True

    async def _customer_ref(self, snapshot: CheckoutSnapshot) -> str:
        """A signed-in shopper's customer at Stripe (made once, then reused); guests and the sandbox: none."""
        if snapshot.customer_id is None or self.provider.name != "stripe":
            return ""
        if not isinstance(self.provider, SupportsCustomers):
            return ""
        async with self.sessions() as session, session.begin():
            return await CustomerService(session, self.store.id).provider_customer(snapshot.customer_id, self.provider)

    def _fees(self, amount: Money) -> PaymentFees:
        """The payment's fees, and the store's Connect account when its onboarding is done."""
        account = self.settings.connect_account if self.settings.connect_status == "enabled" else ""
        return PaymentFees(
            processing_fee_minor=processing_fee(self.provider.name, amount).amount_minor,
            application_fee_minor=application_fee(self.settings, amount).amount_minor,
            connected_account=account,
        )

    def _capture_method(self) -> str:
        return "automatic" if self.settings.capture_policy == "at_checkout" else "manual"

    # ---- step 3: record the answer and place the order -------------------------------------------

    async def _settle(
        self, attempt_id: uuid.UUID, result: ProviderResult, key: str, *, snapshot: CheckoutSnapshot | None = None
    ) -> Outcome:
        if result.status in (PaymentStatus.DECLINED, PaymentStatus.FAILED):
            return await self._fail(
                attempt_id,
                result.decline_code or "declined",
                _decline_message(result.decline_code),
                result=result,
                key=key,
            )
        if result.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING):
            state = "awaiting_action" if result.status == PaymentStatus.REQUIRES_ACTION else "awaiting_payment"
            async with self.sessions() as session, session.begin():
                attempt = await self._attempt(session, attempt_id)
                await self._intent(session, attempt, result, key)
                attempt.state = state
                attempt.card_brand, attempt.card_last4 = result.brand, result.last4
            if result.status == PaymentStatus.PENDING and self.on_pending is not None:
                await self.on_pending(result.provider_ref)
            return Outcome(attempt_id, state, action_url=result.action_url)
        return await self._place(attempt_id, result, key, snapshot)

    async def _place(
        self, attempt_id: uuid.UUID, result: ProviderResult, key: str, snapshot: CheckoutSnapshot | None = None
    ) -> Outcome:
        """Step 3 as one statement in autocommit (ADR 0003), composed of each domain's fragment: the reserved
        stock is sold, the attempt closes, the customer is found or made, the order, its lines and its event,
        the payment, the snapshot and the cart close. Hot stock rows are locked only while it executes. An
        attempt already completed or failed (a webhook and a return racing) changes nothing."""
        store_id = self.store.id
        async with pg.connection(self.engine) as conn:
            if snapshot is None:
                snapshot_id = await conn.fetchval(_SNAPSHOT_OF_ATTEMPT, attempt_id, store_id)
                snapshot = await snapshot_by_id(conn, store_id, snapshot_id) if snapshot_id else None
                if snapshot is None:
                    raise ValidationFailed("No such checkout attempt.")
            order, order_params = placing(snapshot, payment_status=payment_status_of(result), now=datetime.now(UTC))
            # The card pays less than the total exactly when stored value pays the rest (held in step 2).
            stored_value = result.amount.amount_minor < snapshot.total_minor
            only_stored_value = _is_stored_value_only(result)
            sql, args = pg.named(
                _place_sql(bool(snapshot.discounts), stored_value),
                {
                    "store_id": store_id,
                    "promo_holder_id": attempt_id,
                    "attempt_id": attempt_id,
                    "snapshot_id": snapshot.id,
                    "cart_id": snapshot.cart_id,
                    **guest_customer_params(
                        email=snapshot.email, phone=snapshot.phone, customer_id=snapshot.customer_id
                    ),
                    **order_params,
                    **payment_params(
                        snapshot_id=snapshot.id,
                        provider=STORED_VALUE_ONLY if only_stored_value else self.provider.name,
                        capture_method="automatic" if only_stored_value else self._capture_method(),
                        result=result,
                        idempotency_key=key or f"checkout:{attempt_id}:stored_value",
                        fees=PaymentFees() if only_stored_value else self._fees(result.amount),
                    ),
                    **stock_move_params(attempt_id, sold=True),
                },
            )
            order.number = await conn.fetchval(sql, *args)
        if order.number is not None:
            return Outcome(attempt_id, "completed", order=order)
        outcome = await self.outcome(attempt_id)
        if outcome.state == "completed":  # placed by someone else first (a webhook and a return racing)
            return outcome
        if outcome.state == "failed":
            # Compensated while this payment was on its way (the sweeper took a slow call for a dead process):
            # the money must not stay with the store for an order that will not exist.
            if not only_stored_value:
                await self._reverse(result, attempt_id, reason="attempt_closed")
            return outcome
        # Still open, so its reservations (stock, or a stored-value hold) are gone (expired while the shopper was
        # away): give the money back.
        if not only_stored_value:
            await self._reverse(result, attempt_id, reason="reservation_expired")
        return await self._fail(
            attempt_id,
            "reservation_expired",
            "Your checkout took too long and the items were released. You have not been charged; please try again.",
        )

    async def _fail(
        self,
        attempt_id: uuid.UUID,
        code: str,
        message: str,
        *,
        result: ProviderResult | None = None,
        key: str = "",
    ) -> Outcome:
        """Compensate: give the stock, promotion uses and stored-value holds back and close the attempt. The cart
        stays as it was."""
        async with self.sessions() as session, session.begin():
            attempt = await self._attempt(session, attempt_id, lock=True)
            if attempt.state in TERMINAL:
                return await self._outcome_of(session, attempt)
            await InventoryService(session, self.store.id).release(attempt_id)
            await PromotionService(session, self.store.id).release(attempt_id)  # after the stock rows (lock order)
            await release_holder(
                await pg.writer(session), self.store.id, attempt_id, reason=f"checkout failed: {code}", actor="checkout"
            )
            if result is not None:
                intent, opened = await self._intent(session, attempt, result, key)
                if not opened:
                    PaymentLedger(session, self.store.id).record(intent, "action", result, key)
            attempt.state, attempt.error_code, attempt.error_message = "failed", code, message[:300]
        return Outcome(attempt_id, "failed", error_code=code, message=message)

    # ---- resuming (3-D Secure return, delayed-success webhook, crash recovery) ---------------------

    async def resume(self, attempt_id: uuid.UUID) -> Outcome:
        """Ask the provider where the payment stands and finish or compensate accordingly."""
        async with self.sessions() as session:
            attempt = await self._attempt(session, attempt_id)
            if attempt.state in TERMINAL:
                return await self._outcome_of(session, attempt)
            intent = await session.get(PaymentIntent, attempt.payment_intent_id) if attempt.payment_intent_id else None
            provider_ref = intent.provider_ref if intent else ""
            state = attempt.state
        key = f"checkout:{attempt_id}:authorize"
        if not provider_ref:
            if state in ("started", "reserved"):
                # Crashed before or during the provider call: ask by the deterministic key's reference.
                return await self._unknown_outcome(attempt_id, _sandbox_style_ref(self.provider, key), key)
            return await self._fail(attempt_id, "payment_missing", "The payment was not started.")
        try:
            result = await self.provider.get_transaction(provider_ref)
        except PaymentError as exc:
            return await self._fail(attempt_id, exc.code, exc.message)
        if is_success(result):
            return await self._place(attempt_id, result, f"checkout:{attempt_id}:resume")
        if result.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING):
            return Outcome(attempt_id, state, action_url=result.action_url)
        return await self._fail(
            attempt_id,
            result.decline_code or "declined",
            _decline_message(result.decline_code),
            result=result,
            key=f"checkout:{attempt_id}:resume",
        )

    async def adopt(self, attempt_id: uuid.UUID, provider_ref: str) -> Outcome:
        """A payment the provider made for this attempt that Till has not recorded: the process died during the
        provider call, or the provider's webhook beat its answer (its metadata names the attempt). A successful
        one places the order while the attempt still holds its stock, else its money goes back (``_place``);
        anything else is left to the attempt's own process and the sweeper."""
        result = await self.provider.get_transaction(provider_ref)
        async with self.sessions() as session:
            attempt = await self._attempt(session, attempt_id)
            state, amount_minor, recorded = attempt.state, attempt.amount_minor, attempt.payment_intent_id
        if state == "completed" or recorded is not None or not is_success(result):
            return await self.outcome(attempt_id)
        if result.amount.amount_minor != amount_minor:
            raise ValidationFailed(f"Payment {provider_ref} is not the amount checkout attempt {attempt_id} charges.")
        return await self._place(attempt_id, result, f"checkout:{attempt_id}:authorize")

    async def wait_for(self, attempt_id: uuid.UUID, timeout_s: float = WAIT_FOR_OTHER) -> Outcome:
        """The outcome of an attempt another request is running (a double click joins the first click)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            async with self.sessions() as session:
                attempt = await self._attempt(session, attempt_id)
                if attempt.state in (*TERMINAL, "awaiting_action", "awaiting_payment"):
                    return await self._outcome_of(session, attempt)
            if asyncio.get_running_loop().time() > deadline:
                raise Conflict("This checkout is still being processed. Refresh in a moment.")
            await asyncio.sleep(0.05)

    async def snapshot_of(self, attempt_id: uuid.UUID) -> uuid.UUID:
        async with self.sessions() as session:
            return (await self._attempt(session, attempt_id)).snapshot_id

    async def outcome(self, attempt_id: uuid.UUID) -> Outcome:
        async with self.sessions() as session:
            return await self._outcome_of(session, await self._attempt(session, attempt_id))

    # ---- helpers ---------------------------------------------------------------------------------

    async def _attempt(self, session: AsyncSession, attempt_id: uuid.UUID, *, lock: bool = False) -> CheckoutAttempt:
        bind_store(session, self.store.id)
        stmt = select(CheckoutAttempt).where(CheckoutAttempt.id == attempt_id)
        attempt = await session.scalar(stmt.with_for_update() if lock else stmt)
        if attempt is None:
            raise ValidationFailed("No such checkout attempt.")
        return attempt

    @staticmethod
    def _joinable(existing: list[str] | None, key: str, fingerprint: str) -> uuid.UUID:
        """The attempt a request joins (a double click joins the first click): [id, key, request hash]."""
        if existing is None:  # the conflicting attempt failed between our claim and this read
            raise Conflict("This checkout changed while paying. Please try again.")
        attempt_id, existing_key, request_hash = existing
        if existing_key == key and request_hash != fingerprint:
            raise ValidationFailed(
                "This payment key was used for a different checkout.",
                fields={"idempotency_key": "Used for a different checkout."},
            )
        return uuid.UUID(attempt_id)

    async def _outcome_of(self, session: AsyncSession, attempt: CheckoutAttempt) -> Outcome:
        order = await session.get(Order, attempt.order_id) if attempt.order_id else None
        action_url = ""
        if attempt.state == "awaiting_action" and attempt.payment_intent_id:
            intent = await session.get(PaymentIntent, attempt.payment_intent_id)
            if intent is not None:
                action_url = (await self.provider.get_transaction(intent.provider_ref)).action_url
        return Outcome(
            attempt.id,
            attempt.state,
            order=order,
            action_url=action_url,
            error_code=attempt.error_code,
            message=attempt.error_message,
        )

    def _check_snapshot(self, snapshot: CheckoutSnapshot, payment: PaymentInput, now: datetime) -> None:
        if snapshot.status != "open":
            raise CheckoutExpired("This checkout was already completed.")
        if snapshot.expires_at <= now:
            raise CheckoutExpired("Your checkout expired. We have refreshed the prices for you.")
        if payment.amount_minor is not None and payment.amount_minor != snapshot.total_minor:
            raise ValidationFailed(
                "The amount to pay does not match the checkout total.",
                fields={"amount_minor": f"Expected {snapshot.total_minor}."},
            )


def _decline_message(code: str) -> str:
    return {
        "insufficient_funds": "Your card has insufficient funds. Try another card.",
        "authentication_failed": "The card's security check failed. Try again or use another card.",
        "expired_card": "Your card has expired.",
        "invalid_number": "The card number is not valid.",
        "invalid_cvc": "The security code is not valid.",
    }.get(code, "Your card was declined. Try another card.")


def _stored_value_result(attempt_id: uuid.UUID, currency: str) -> ProviderResult:
    """The "payment" of an order the stored-value tenders pay in full: nothing for a card provider to do."""
    zero = Money(0, currency)
    return ProviderResult(PaymentStatus.CAPTURED, f"{STORED_VALUE_ONLY}:{attempt_id}", zero, zero, zero)


def _is_stored_value_only(result: ProviderResult) -> bool:
    return result.provider_ref.startswith(f"{STORED_VALUE_ONLY}:")


def _sandbox_style_ref(provider: PaymentProvider, key: str) -> str:
    ref_for = getattr(provider, "ref_for", None)
    return str(ref_for(key)) if callable(ref_for) else ""


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def recover_stalled(
    sessions: async_sessionmaker[AsyncSession],
    provider_of: Callable[[Store], Awaitable[PaymentProvider]],
    *,
    older_than: timedelta = STALL_AFTER,
    now: datetime | None = None,
) -> list[Outcome]:
    """Sweeper: finish or compensate attempts stuck mid-saga (a process died)."""
    now = now or datetime.now(UTC)
    async with sessions() as session:
        system_scope(session)
        stalled = (
            await session.execute(
                select(CheckoutAttempt.id, Store)
                .join(Store, Store.id == CheckoutAttempt.store_id)
                .where(CheckoutAttempt.state.not_in(TERMINAL), CheckoutAttempt.updated_at < now - older_than)
                .limit(100)
            )
        ).all()
    outcomes = []
    for attempt_id, store in stalled:
        saga = CheckoutSaga(sessions, store, await provider_of(store))
        outcomes.append(await saga.resume(attempt_id))
    return outcomes


__all__ = [
    "CheckoutExpired",
    "CheckoutSaga",
    "Outcome",
    "PaymentDeclined",
    "PaymentInput",
    "PromotionUnavailable",
    "SoldOut",
    "StoredValueUnavailable",
    "recover_stalled",
]
