"""The card-reader interface beside :class:`~app.payments.provider.PaymentProvider`: plain dataclasses and one
Protocol, so the POS drives the sandbox's simulated reader and a Stripe Terminal reader the same way.

A reader payment is server-driven: the server puts an amount on a paired reader (``start_payment``), asks how
it stands (``payment_status``) until the card is approved, declined or the attempt ends, then captures the
authorisation (``capture``) and records it in the payments ledger. ``cancel_payment`` stops a payment still on
the reader; ``give_back`` returns the money of an approved one (a void while only authorised, a refund once
captured). Every mutating call carries a deterministic idempotency key (Invariant 2).

The reader says what the *card* did (:class:`ReaderState`); whether a payment waited too long is the POS's rule
(app/pos/readers/services.py), not the reader's. A decline is a state, never an exception; :class:`ReaderError`
is for a reader that cannot take the request (offline, busy, an unknown pairing code), and
:class:`~app.payments.provider.ProviderTimeout` means the outcome is unknown (ask ``payment_status`` again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from app.core.errors import Conflict
from app.core.money import Money
from app.payments.provider import CaptureRequest, PaymentError, PaymentProvider, ProviderResult
from app.payments.services import TxKind, give_money_back

__all__ = [
    "CardReader",
    "Clock",
    "MoneyThroughProvider",
    "ReaderDevice",
    "ReaderError",
    "ReaderPaymentRequest",
    "ReaderPaymentState",
    "ReaderState",
    "ReadersNotAvailable",
    "RegisterReaderRequest",
    "utcnow",
]

Clock = Callable[[], datetime]  # what time it is: the system's, or a test's that it moves by hand


def utcnow() -> datetime:
    return datetime.now(UTC)


class ReaderState(StrEnum):
    WAITING = "waiting"  # on the reader's screen, no card yet (or the card is being read)
    AUTHORIZED = "authorized"  # the card was approved and the money is held: capture it next
    CAPTURED = "captured"  # approved and already captured (a payment made to capture on approval)
    DECLINED = "declined"  # the card was declined (``code``: the decline code)
    CANCELED = "canceled"  # stopped at the reader (the customer) or by the POS; no money moved
    TIMED_OUT = "timed_out"  # the reader gave up waiting for a card; no money moved


@dataclass(frozen=True)
class RegisterReaderRequest:
    """Pair a reader by the code its screen shows (Stripe: the registration code)."""

    registration_code: str
    label: str
    idempotency_key: str
    location: str = ""  # Stripe Terminal: the ``tml_…`` location the reader belongs to


@dataclass(frozen=True)
class ReaderDevice:
    reader_ref: str  # the provider's id for the reader (``tmr_…``)
    label: str
    status: str  # online | offline
    device_type: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReaderPaymentRequest:
    reader_ref: str
    amount: Money
    idempotency_key: str
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReaderPaymentState:
    """What the reader says about one payment. ``payment`` is the provider's payment as the ledger records it,
    once a card was presented (approved or declined); None while waiting or when no card was read."""

    state: ReaderState
    payment_ref: str  # the provider's payment (``pi_…``, ``sb_…``); "" when none was made
    amount: Money | None  # None when the reader and the provider no longer know the payment
    brand: str = ""
    last4: str = ""
    code: str = ""  # a decline or failure code
    message: str = ""
    payment: ProviderResult | None = None

    @property
    def approved(self) -> bool:
        return self.state in (ReaderState.AUTHORIZED, ReaderState.CAPTURED)


class ReaderError(PaymentError):
    """The reader cannot take the request: ``invalid_code`` (pairing), ``reader_offline``, ``reader_busy``,
    ``unknown_reader``; ``message`` is for people."""


class ReadersNotAvailable(Conflict):
    """The store's payment provider has no card readers (409)."""

    code = "readers_not_available"
    title = "Card readers not available"


@runtime_checkable
class CardReader(Protocol):
    """One kind of card reader (the sandbox's simulated one, Stripe Terminal). ``name`` is the payment provider
    its payments belong to (``PaymentIntent.provider`` in the ledger)."""

    name: str

    async def register(self, request: RegisterReaderRequest) -> ReaderDevice:
        """Pair the reader showing ``registration_code``; raises ReaderError("invalid_code") for a wrong or
        expired code."""
        ...

    async def start_payment(self, request: ReaderPaymentRequest) -> ReaderPaymentState:
        """Show the amount on the reader and wait for a card (state WAITING, ``payment_ref`` known)."""
        ...

    async def payment_status(self, reader_ref: str, payment_ref: str) -> ReaderPaymentState: ...

    async def cancel_payment(self, reader_ref: str, payment_ref: str, *, idempotency_key: str) -> ReaderPaymentState:
        """Stop a payment still on the reader and release it at the provider. Answers the state after the
        attempt: CANCELED, or AUTHORIZED/CAPTURED when the card was approved first (the caller decides), or
        WAITING when the reader is busy reading the card and could not stop."""
        ...

    async def capture(self, request: CaptureRequest) -> ProviderResult:
        """Capture an approved (authorised) reader payment."""
        ...

    async def give_back(
        self, *, payment_ref: str, currency: str, captured_minor: int, refunded_minor: int, key_prefix: str, reason: str
    ) -> tuple[TxKind, str, ProviderResult]:
        """Return an approved payment's money: a refund of what is captured, else a void of the authorisation.
        Keyed ``<key_prefix>:refund`` / ``:void``; answers (ledger kind, key used, the provider's result)."""
        ...

    async def get_transaction(self, payment_ref: str) -> ProviderResult: ...


class MoneyThroughProvider:
    """The money side every reader kind here shares: an approved reader payment is a payment of the store's
    provider, so capture, give_back and get_transaction go through it (``give_back`` is ``give_money_back``)."""

    def __init__(self, provider: PaymentProvider) -> None:
        self._provider = provider

    async def capture(self, request: CaptureRequest) -> ProviderResult:
        return await self._provider.capture(request)

    async def give_back(
        self, *, payment_ref: str, currency: str, captured_minor: int, refunded_minor: int, key_prefix: str, reason: str
    ) -> tuple[TxKind, str, ProviderResult]:
        return await give_money_back(
            self._provider,
            provider_ref=payment_ref,
            currency=currency,
            captured_minor=captured_minor,
            refunded_minor=refunded_minor,
            key_prefix=key_prefix,
            reason=reason,
        )

    async def get_transaction(self, payment_ref: str) -> ProviderResult:
        return await self._provider.get_transaction(payment_ref)
