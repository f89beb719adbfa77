"""Card payments at a register's reader, once each, whoever clicks and however the reader answers.

A reader payment lives in ``reader_payments`` and moves ``waiting → approved | declined | timed_out | canceled``;
an approved one that no completed sale uses may be voided: ``approved → voiding → voided``. Like
app/payments/operations.py, no transaction or row lock is held across a call to the reader or the provider:
each step is recorded, committed, called, then its answer recorded.

- **Start** (``POST /pos/api/card-payments``): the register's reader row is locked while the payment is
  claimed, so a busy reader answers 409 (and a partial unique index allows one waiting payment per reader).
  The same sale and amount asked again while it waits answers the same payment (a retried request).
- **Approval**: the reader's authorisation opens a PaymentIntent with no checkout snapshot (its ``authorize``
  row), then the payment is captured and the ``capture`` row appended — the ledger holds it exactly like a web
  payment. A declined card opens its intent too (a declined ``authorize`` row): nothing moved.
- **Time-outs** are lazy: whoever reads a payment still waiting past ``expires_at`` (the tablet's poll, the
  reader page's, the next start on that reader) stops it at the reader and marks it ``timed_out``. The clock
  is injected, so tests move time instead of sleeping.
- **Void**: the money goes back through the provider (a refund when captured, a void when only authorised),
  keyed ``pos-card:<id>:refund`` / ``:void``, so a retry or a second click reaches the same provider result; the
  ledger row is appended once. A payment some sale's tender (``pos_tenders.reader_payment_id``) uses is refused.

Every provider key derives from the payment's own: ``pos-card:<id>`` (authorisation / Stripe PaymentIntent),
``:capture``, ``:cancel``, ``:timeout``, ``:refund`` / ``:void``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.money import Money
from app.core.tenancy import bind_store
from app.orders.services import Actor
from app.payments.fees import processing_fee
from app.payments.models import PaymentIntent
from app.payments.provider import CaptureRequest, PaymentError, PaymentStatus, ProviderResult, ProviderTimeout
from app.payments.services import PaymentFees, PaymentLedger
from app.pos.models import CardReader as ReaderRow
from app.pos.models import PosTender, ReaderPayment, Register
from app.pos.readers.interface import (
    CardReader,
    Clock,
    ReaderError,
    ReaderPaymentRequest,
    ReaderPaymentState,
    ReadersNotAvailable,
    ReaderState,
    RegisterReaderRequest,
    utcnow,
)
from app.pos.readers.stripe_terminal import StripeTerminalReader
from app.stores.models import Store

log = structlog.get_logger(__name__)

__all__ = [
    "MAX_AMOUNT_MINOR",
    "WAIT_LIMIT",
    "CardPayment",
    "ReaderPayments",
    "card_payment_for_tender",
]

WAIT_LIMIT = timedelta(seconds=90)  # a payment left waiting this long times out
MAX_AMOUNT_MINOR = 10_000_000  # 100,000.00 in a two-decimal currency: more is a typo at a counter
_ENDED = {ReaderState.DECLINED: "declined", ReaderState.CANCELED: "canceled", ReaderState.TIMED_OUT: "timed_out"}
# Refusals that say nothing about the payment (the same key in flight elsewhere, a rate limit): ask again later.
_TRANSIENT = ("busy", "rate_limited")
_MESSAGES = {
    "declined": "The card was declined.",
    "canceled": "The payment was canceled.",
    "timed_out": "No card was presented in time.",
}


@dataclass(frozen=True)
class CardPayment:
    """A reader payment (detached) and the reader it is on."""

    payment: ReaderPayment
    reader: ReaderRow

    @property
    def voidable(self) -> bool:
        return self.payment.status in ("approved", "voiding")


def _key(payment_id: uuid.UUID) -> str:
    return f"pos-card:{payment_id}"


class ReaderPayments:
    """One store's card readers and their payments (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: Store,
        reader: CardReader,
        *,
        clock: Clock = utcnow,
        wait_limit: timedelta = WAIT_LIMIT,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.reader = reader
        self.clock = clock
        self.wait_limit = wait_limit

    # -- pairing -----------------------------------------------------------------------------------

    async def register_and_reader(self, register_id: uuid.UUID) -> tuple[Register, ReaderRow | None]:
        async with self.sessions() as session:
            bind_store(session, self.store.id)
            register = await session.get(Register, register_id)
            if register is None:
                raise NotFound("No such register.")
            row = await session.scalar(select(ReaderRow).where(ReaderRow.register_id == register_id))
            return register, row

    async def pair(self, register_id: uuid.UUID, *, code: str, label: str, location: str = "") -> ReaderRow:
        """Pair the reader showing ``code`` with the register (replacing the register's reader, unless busy)."""
        code, label = code.strip(), " ".join(label.split())[:80]
        if not code:
            raise ValidationFailed("Enter the code the reader shows.", fields={"code": "Required."})
        register, current = await self.register_and_reader(register_id)
        if current is not None:
            await self._not_busy(current)
        try:
            device = await self.reader.register(
                RegisterReaderRequest(
                    registration_code=code,
                    label=label or f"{register.name} reader",
                    idempotency_key=f"pair:{register_id}:{code}",
                    location=location.strip(),
                )
            )
        except ReaderError as exc:
            if exc.code == "invalid_code":
                raise ValidationFailed("The reader was not paired.", fields={"code": exc.message}) from exc
            raise Conflict(f"The reader could not be paired: {exc.message}") from exc
        except PaymentError as exc:
            raise Conflict(f"The reader could not be paired: {exc.message}") from exc
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            for row in await session.scalars(
                select(ReaderRow).where(ReaderRow.register_id == register_id).with_for_update()
            ):
                row.register_id, row.status = None, "retired"
            await session.flush()
            found = await session.scalar(
                select(ReaderRow)
                .where(ReaderRow.provider == self.reader.name, ReaderRow.provider_reader_id == device.reader_ref)
                .with_for_update()
            )
            row = found or ReaderRow(provider=self.reader.name, provider_reader_id=device.reader_ref)
            session.add(row)
            row.label = (label or device.label or f"{register.name} reader")[:80]
            row.register_id = register_id
            row.status = device.status if device.status in ("online", "offline") else "online"
        return row

    async def unpair(self, register_id: uuid.UUID) -> bool:
        """The register's reader is set aside (kept for the history of its payments); False when it had none."""
        _, current = await self.register_and_reader(register_id)
        if current is None:
            return False
        await self._not_busy(current)
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            row = await session.get(ReaderRow, current.id, with_for_update=True)
            if row is None or row.register_id != register_id:
                return False
            row.register_id, row.status = None, "retired"
        return True

    async def _not_busy(self, row: ReaderRow) -> None:
        async with self.sessions() as session:
            bind_store(session, self.store.id)
            waiting = await session.scalar(
                select(ReaderPayment).where(ReaderPayment.reader_id == row.id, ReaderPayment.status == "waiting")
            )
        if waiting is not None and (await self._advance(CardPayment(waiting, row))).payment.status == "waiting":
            raise Conflict("The register's reader is taking a payment; finish or cancel it first.")

    # -- payments ----------------------------------------------------------------------------------

    async def start(
        self, *, register_id: uuid.UUID, client_sale_id: uuid.UUID, amount_minor: int
    ) -> tuple[CardPayment, bool]:
        """Put ``amount_minor`` on the register's reader. Answers the payment and whether it is new (False: the
        same sale and amount were already waiting there)."""
        if amount_minor <= 0:
            raise ValidationFailed("Enter an amount above zero.", fields={"amount_minor": "Must be more than zero."})
        if amount_minor > MAX_AMOUNT_MINOR:
            most = Money(MAX_AMOUNT_MINOR, self.store.currency)
            raise ValidationFailed(
                "That amount is too large for a card at the counter.", fields={"amount_minor": f"At most {most}."}
            )
        for _attempt in range(3):
            claimed = await self._claim(register_id, client_sale_id, amount_minor)
            if isinstance(claimed, tuple):
                return claimed
            await self._advance(claimed)  # a payment left waiting past its time: it times out, then we retry
        raise Conflict("The register's card reader is busy with another payment.")

    async def connection_token(self) -> str:
        """A Stripe Terminal connection token's secret (for a Terminal SDK on the tablet)."""
        if not isinstance(self.reader, StripeTerminalReader):
            raise ReadersNotAvailable("Connection tokens are Stripe Terminal's; this store's reader is the sandbox's.")
        try:
            return await self.reader.connection_token()
        except PaymentError as exc:
            raise Conflict(f"Stripe gave no connection token: {exc.message}") from exc

    async def latest_on(self, reader: ReaderRow) -> CardPayment | None:
        """The newest payment on a reader, brought up to date (what the reader's own screen shows)."""
        async with self.sessions() as session:
            bind_store(session, self.store.id)
            payment = await session.scalar(
                select(ReaderPayment)
                .where(ReaderPayment.reader_id == reader.id)
                .order_by(ReaderPayment.created_at.desc(), ReaderPayment.id.desc())
                .limit(1)
            )
        return None if payment is None else await self._advance(CardPayment(payment, reader))

    async def get(self, payment_id: uuid.UUID) -> CardPayment:
        """The payment as it stands now: asks the reader while it waits (and times it out when it is late)."""
        return await self._advance(await self._load(payment_id))

    async def cancel(self, payment_id: uuid.UUID) -> CardPayment:
        """Stop a waiting payment. One that already ended without money (declined, timed out, canceled) is
        answered as it is; an approved one is refused (void it)."""
        current = await self.get(payment_id)
        payment = current.payment
        if payment.status in _ENDED.values():
            return current
        if payment.status != "waiting":
            hint = " Void it to give the money back." if current.voidable else ""
            raise Conflict(f"This card payment is {_words(payment.status)}: it cannot be canceled.{hint}")
        if not payment.provider_ref:  # never reached the reader
            return await self._conclude(current, ReaderPaymentState(ReaderState.CANCELED, "", None), ending="canceled")
        try:
            state = await self.reader.cancel_payment(
                current.reader.provider_reader_id,
                payment.provider_ref,
                idempotency_key=f"{payment.idempotency_key}:cancel",
            )
        except PaymentError as exc:
            raise Conflict(f"The reader could not cancel the payment: {exc.message}") from exc
        if state.state is ReaderState.WAITING:
            raise Conflict("The reader is reading the card right now; try again in a moment.")
        done = await self._conclude(current, state, ending="canceled")
        if done.payment.status in ("approved", "waiting"):
            raise Conflict(
                "The card was approved before the payment could be canceled: void it to give the money back."
            )
        return done

    async def void(self, payment_id: uuid.UUID, *, actor: Actor) -> CardPayment:
        """Give an approved payment's money back (once: a repeat is a no-op). ``voiding`` in the answer means the
        provider has not confirmed yet: repeating the void finishes it."""
        current = await self._load(payment_id)
        if current.payment.status == "voided":
            return current
        async with self._locked(payment_id) as (session, payment):
            if payment.status == "voided":
                return CardPayment(payment, current.reader)
            if payment.status not in ("approved", "voiding") or payment.payment_intent_id is None:
                raise Conflict(f"Only an approved card payment can be voided; this one is {_words(payment.status)}.")
            used = await session.scalar(select(PosTender.id).where(PosTender.reader_payment_id == payment.id))
            if used is not None:
                raise Conflict("This card payment pays a completed sale: refund the sale instead.")
            payment.status, payment.message = "voiding", "Giving the money back to the card…"
            intent = await session.get(PaymentIntent, payment.payment_intent_id)
            assert intent is not None
            back = (intent.provider_ref, intent.currency, intent.captured_minor, intent.refunded_minor)
            key_prefix = payment.idempotency_key
        try:
            kind, key, result = await self.reader.give_back(
                payment_ref=back[0],
                currency=back[1],
                captured_minor=back[2],
                refunded_minor=back[3],
                key_prefix=key_prefix,
                reason="voided at the register",
            )
        except PaymentError as exc:
            if isinstance(exc, ProviderTimeout) or exc.code in _TRANSIENT:
                return await self._load(payment_id)  # still voiding: a repeat asks again with the same key
            await self._set(payment_id, "voiding", "approved", f"The money could not be given back: {exc.message}")
            raise Conflict(f"The provider refused to give the money back: {exc.message}") from exc
        async with self._locked(payment_id) as (session, payment):
            assert payment.payment_intent_id is not None
            if payment.status == "voiding":
                intent = await session.get(PaymentIntent, payment.payment_intent_id, with_for_update=True)
                assert intent is not None
                ledger = PaymentLedger(session, self.store.id)
                if not await ledger.has_entry(intent, key):
                    ledger.record(intent, kind, result, key, reason="voided at the register", actor=actor.label)
                payment.status, payment.message = "voided", "Voided: the money went back to the card."
            return CardPayment(payment, current.reader)

    # -- the steps -----------------------------------------------------------------------------------

    async def _claim(
        self, register_id: uuid.UUID, client_sale_id: uuid.UUID, amount_minor: int
    ) -> tuple[CardPayment, bool] | CardPayment:
        """Claim the register's reader for a new payment and put it on the reader. Answers (payment, new?), or the
        late payment still holding the reader (the caller times it out and tries again)."""
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            register = await session.get(Register, register_id)
            if register is None:
                raise NotFound("No such register.")
            row = await session.scalar(select(ReaderRow).where(ReaderRow.register_id == register_id).with_for_update())
            if row is None:
                raise Conflict(
                    f"The register {register.name} has no card reader: a manager pairs one on its Reader page."
                )
            waiting = await session.scalar(
                select(ReaderPayment).where(ReaderPayment.reader_id == row.id, ReaderPayment.status == "waiting")
            )
            if waiting is not None:
                if waiting.expires_at <= self.clock():
                    return CardPayment(waiting, row)
                if waiting.client_sale_id == client_sale_id and waiting.amount_minor == amount_minor:
                    return CardPayment(waiting, row), False
                raise Conflict("The register's card reader is busy with another payment.")
            payment_id = uuid7()
            payment = ReaderPayment(
                id=payment_id,
                reader_id=row.id,
                register_id=register_id,
                client_sale_id=client_sale_id,
                idempotency_key=_key(payment_id),
                currency=self.store.currency,
                amount_minor=amount_minor,
                status="waiting",
                expires_at=self.clock() + self.wait_limit,
            )
            session.add(payment)
            try:
                await session.flush()
            except IntegrityError as exc:  # another start won the reader in between
                raise Conflict("The register's card reader is busy with another payment.") from exc
            claimed = CardPayment(payment, row)
            description = f"{self.store.name} · {register.name}"[:200]
        request = ReaderPaymentRequest(
            reader_ref=row.provider_reader_id,
            amount=Money(amount_minor, self.store.currency),
            idempotency_key=claimed.payment.idempotency_key,
            description=description,
            metadata={
                "reader_payment_id": str(payment_id),
                "register_id": str(register_id),
                "client_sale_id": str(client_sale_id),
            },
        )
        try:
            state = await self.reader.start_payment(request)
        except PaymentError as exc:
            if isinstance(exc, ProviderTimeout) and exc.provider_ref:
                # It may be on the reader: stop it (if that fails too, nothing was approved and it lapses).
                with contextlib.suppress(PaymentError):
                    await self.reader.cancel_payment(
                        row.provider_reader_id, exc.provider_ref, idempotency_key=f"{request.idempotency_key}:cancel"
                    )
            await self._set(payment_id, "waiting", "canceled", f"The reader could not start: {exc.message}")
            raise Conflict(f"The reader could not start the payment: {exc.message}") from exc
        async with self._locked(payment_id) as (session, payment_row):
            payment_row.provider_ref = state.payment_ref
            payment_row.message = "Waiting for a card."
            return CardPayment(payment_row, claimed.reader), True

    async def _advance(self, current: CardPayment) -> CardPayment:
        """Ask the reader about a waiting payment and record how it ended; stop it when it is late."""
        payment = current.payment
        if payment.status != "waiting":
            return current
        late = self.clock() >= payment.expires_at
        if not payment.provider_ref:  # its start is still in flight (or died): only time ends it
            if not late:
                return current
            return await self._conclude(current, ReaderPaymentState(ReaderState.TIMED_OUT, "", None))
        reader_ref = current.reader.provider_reader_id
        try:
            state = await self.reader.payment_status(reader_ref, payment.provider_ref)
            if state.state is ReaderState.WAITING and late:
                state = await self.reader.cancel_payment(
                    reader_ref, payment.provider_ref, idempotency_key=f"{payment.idempotency_key}:timeout"
                )
                if state.state is ReaderState.CANCELED:
                    state = ReaderPaymentState(ReaderState.TIMED_OUT, state.payment_ref, state.amount)
        except PaymentError as exc:  # the reader or the provider did not answer: the next read asks again
            log.warning("pos.reader_unanswered", reader_payment_id=str(payment.id), code=exc.code)
            return current
        if state.state is ReaderState.WAITING:
            return current
        return await self._conclude(current, state)

    async def _conclude(
        self, current: CardPayment, state: ReaderPaymentState, *, ending: Literal["canceled"] | None = None
    ) -> CardPayment:
        if state.approved:
            return await self._approve(current, state)
        status = ending if ending and state.state is ReaderState.CANCELED else _ENDED[state.state]
        async with self._locked(current.payment.id) as (session, payment):
            if payment.status != "waiting":
                return CardPayment(payment, current.reader)
            if state.payment is not None and payment.payment_intent_id is None:  # a card was declined
                payment.payment_intent_id = self._open_intent(session, payment, state.payment).id
            payment.status = status
            payment.message = (state.message or _MESSAGES[status])[:200]
            payment.card_brand, payment.card_last4 = state.brand[:20], state.last4[:4]
            done = CardPayment(payment, current.reader)
        if status == "declined" and payment.provider_ref:
            # Release the declined payment at the provider (Stripe: cancel its PaymentIntent); if that fails,
            # nothing was approved and it lapses.
            with contextlib.suppress(PaymentError):
                await self.reader.cancel_payment(
                    current.reader.provider_reader_id,
                    payment.provider_ref,
                    idempotency_key=f"{payment.idempotency_key}:cancel",
                )
        return done

    async def _approve(self, current: CardPayment, state: ReaderPaymentState) -> CardPayment:
        """Record the authorisation, capture it, record the capture: each step once, each retry-safe."""
        result = state.payment or await self.reader.get_transaction(state.payment_ref)
        async with self._locked(current.payment.id) as (session, payment):
            if payment.status != "waiting":
                return CardPayment(payment, current.reader)
            status: str | None
            if payment.payment_intent_id is None:
                opened = self._open_intent(session, payment, result)
                payment.payment_intent_id, status = opened.id, opened.status
            else:
                status = await session.scalar(
                    select(PaymentIntent.status).where(PaymentIntent.id == payment.payment_intent_id)
                )
            intent_id, authorized_only = payment.payment_intent_id, status == PaymentStatus.AUTHORIZED.value
            capture_key = f"{payment.idempotency_key}:capture"
        captured: ProviderResult | None = None
        if authorized_only:
            request = CaptureRequest(result.provider_ref, result.amount, capture_key)
            try:
                captured = await self.reader.capture(request)
            except PaymentError as exc:
                if isinstance(exc, ProviderTimeout) or exc.code in _TRANSIENT:
                    return await self._load(current.payment.id)  # still waiting: the next read captures, same key
                try:
                    return await self._capture_refused(current, intent_id, capture_key, result, exc)
                except PaymentError:  # the release did not go through either: the next read tries again
                    return await self._load(current.payment.id)
        async with self._locked(current.payment.id) as (session, payment):
            if payment.status != "waiting":
                return CardPayment(payment, current.reader)
            if captured is not None:
                intent = await session.get(PaymentIntent, intent_id, with_for_update=True)
                assert intent is not None
                ledger = PaymentLedger(session, self.store.id)
                if not await ledger.has_entry(intent, capture_key):
                    ledger.record(intent, "capture", captured, capture_key, reason="card at the register")
            final = captured or result
            payment.status, payment.message = "approved", "Approved."
            payment.card_brand, payment.card_last4 = (final.brand or state.brand)[:20], (final.last4 or state.last4)[:4]
            return CardPayment(payment, current.reader)

    async def _capture_refused(
        self,
        current: CardPayment,
        intent_id: uuid.UUID,
        capture_key: str,
        authorized: ProviderResult,
        error: PaymentError,
    ) -> CardPayment:
        """The approval could not be captured: release the authorisation and tell the cashier it was declined."""
        kind, key, released = await self.reader.give_back(
            payment_ref=authorized.provider_ref,
            currency=authorized.amount.currency,
            captured_minor=0,
            refunded_minor=0,
            key_prefix=current.payment.idempotency_key,
            reason="the capture was refused",
        )
        async with self._locked(current.payment.id) as (session, payment):
            intent = await session.get(PaymentIntent, intent_id, with_for_update=True)
            assert intent is not None
            if payment.status == "waiting":
                ledger = PaymentLedger(session, self.store.id)
                if not await ledger.has_entry(intent, capture_key):
                    ledger.record_failure(
                        intent,
                        "capture",
                        tx_id=uuid.uuid4(),
                        key=capture_key,
                        amount_minor=authorized.amount.amount_minor,
                        code=error.code,
                        message=error.message,
                    )
                if not await ledger.has_entry(intent, key):
                    ledger.record(intent, kind, released, key, reason="the capture was refused")
                payment.status = "declined"
                payment.message = f"The card was approved but could not be charged: {error.message}"[:200]
            return CardPayment(payment, current.reader)

    # -- rows ----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self, payment_id: uuid.UUID) -> AsyncIterator[tuple[AsyncSession, ReaderPayment]]:
        """A short transaction with the payment's row locked (committed on leaving, rolled back on an error)."""
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            payment = await session.get(ReaderPayment, payment_id, with_for_update=True)
            if payment is None:
                raise NotFound("No such card payment.")
            yield session, payment

    def _open_intent(self, session: AsyncSession, payment: ReaderPayment, result: ProviderResult) -> PaymentIntent:
        """The payment's PaymentIntent and its ``authorize`` row: no checkout snapshot, no order yet."""
        payment.provider_ref = payment.provider_ref or result.provider_ref
        return PaymentLedger(session, self.store.id).open_intent(
            snapshot_id=None,
            provider=self.reader.name,
            capture_method="manual" if result.status is not PaymentStatus.CAPTURED else "automatic",
            result=result,
            idempotency_key=payment.idempotency_key,
            fees=PaymentFees(processing_fee_minor=processing_fee(self.reader.name, result.amount).amount_minor),
        )

    async def _load(self, payment_id: uuid.UUID) -> CardPayment:
        async with self.sessions() as session:
            bind_store(session, self.store.id)
            row = (
                await session.execute(
                    select(ReaderPayment, ReaderRow)
                    .join(ReaderRow, ReaderRow.id == ReaderPayment.reader_id)
                    .where(ReaderPayment.id == payment_id)
                )
            ).first()
            if row is None:
                raise NotFound("No such card payment.")
            return CardPayment(row[0], row[1])

    async def _set(self, payment_id: uuid.UUID, expected: str, status: str, message: str) -> None:
        async with self._locked(payment_id) as (_session, payment):
            if payment.status == expected:
                payment.status, payment.message = status, message[:200]


async def card_payment_for_tender(
    session: AsyncSession, payment_id: uuid.UUID, *, register_id: uuid.UUID, amount_minor: int
) -> ReaderPayment:
    """For the sale that takes an approved reader payment as its card tender, in the sale's own transaction
    (``session`` bound to the store): the payment, locked, if it is approved, on this register and for exactly
    this amount; else ValidationFailed. The lock orders the sale against a void of the same payment: whichever
    comes second sees the other (a voiding payment is not approved; a used one is refused a void)."""
    payment = await session.get(ReaderPayment, payment_id, with_for_update=True)
    field = {"reader_payment_id": "Not an approved card payment of this register."}
    if payment is None or payment.register_id != register_id:
        raise ValidationFailed("No such card payment at this register.", fields=field)
    if payment.status != "approved":
        raise ValidationFailed(f"This card payment is {_words(payment.status)}, not approved.", fields=field)
    if payment.amount_minor != amount_minor:
        raise ValidationFailed(
            "A card tender is exactly its reader payment's amount.",
            fields={"amount_minor": f"The card payment is {payment.amount_minor}."},
        )
    return payment


def _words(status: str) -> str:
    return status.replace("_", " ")
