"""The provider-agnostic payment interface: plain dataclasses and one Protocol (Saleor-style gateway).

Every implementation (``sandbox``, ``stripe``, ``cash``, internal tenders) takes these requests and
answers a :class:`ProviderResult`. A decline is a *result* (``status=DECLINED`` with a
``decline_code``), never an exception; :class:`PaymentError` is for requests the provider refuses
for another reason (wrong state, unknown reference, amount too large), and :class:`ProviderTimeout`
means the outcome is unknown: the caller resolves it with ``get_transaction``.

Every mutating request carries an ``idempotency_key`` (Invariant 2): repeating a request with the
same key never moves money twice. Card data (Invariant 9): :class:`CardDetails` only exists in
memory for test cards; it is never persisted or logged, and its ``repr`` masks the number and CVC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from app.core.money import Money

__all__ = [
    "AuthorizeRequest",
    "CaptureRequest",
    "CardDetails",
    "PaymentError",
    "PaymentProvider",
    "PaymentStatus",
    "ProviderResult",
    "ProviderTimeout",
    "RefundRequest",
    "VoidRequest",
    "WebhookEvent",
]


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    REQUIRES_ACTION = "requires_action"
    PENDING = "pending"
    DECLINED = "declined"
    FAILED = "failed"
    VOIDED = "voided"
    REFUNDED = "refunded"


@dataclass(frozen=True, repr=False)
class CardDetails:
    """Raw card input (sandbox test cards only). Never persisted or logged; ``repr`` is masked."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    holder: str = ""

    @property
    def last4(self) -> str:
        digits = "".join(ch for ch in self.number if ch.isdigit())
        return digits[-4:]

    def __repr__(self) -> str:
        return (
            f"CardDetails(number='**** {self.last4}', exp_month={self.exp_month!r}, "
            f"exp_year={self.exp_year!r}, cvc='***', holder={self.holder!r})"
        )


@dataclass(frozen=True)
class AuthorizeRequest:
    amount: Money
    idempotency_key: str
    card: CardDetails | None = None
    payment_method_token: str | None = None
    capture: bool = False
    return_url: str = ""
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The provider's customer (Stripe ``cus_...``) the payment belongs to, if any.
    customer_ref: str = ""
    # Stripe Connect destination charges: the connected account receives the payment less ``application_fee``.
    destination_account: str = ""
    application_fee: Money | None = None
    # Separate charges and transfers: groups the charge with its later transfer.
    transfer_group: str = ""


@dataclass(frozen=True)
class ProviderResult:
    """What the provider says about one payment after a call.

    ``amount`` is the authorised amount, ``captured`` and ``refunded`` the running totals.
    ``action_url`` is set for ``REQUIRES_ACTION`` (the 3-D Secure challenge page).
    ``raw`` is a redacted copy of the provider's answer, safe to store.
    """

    status: PaymentStatus
    provider_ref: str
    amount: Money
    captured: Money
    refunded: Money
    brand: str = ""
    last4: str = ""
    decline_code: str = ""
    message: str = ""
    action_url: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaptureRequest:
    provider_ref: str
    amount: Money
    idempotency_key: str


@dataclass(frozen=True)
class RefundRequest:
    provider_ref: str
    amount: Money
    idempotency_key: str
    reason: str = ""


@dataclass(frozen=True)
class VoidRequest:
    provider_ref: str
    idempotency_key: str


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created: int
    data: Mapping[str, Any]


class PaymentError(Exception):
    """The provider refused the request in a way that is not a decline (bad state, unknown ref, ...).

    ``code`` is stable and machine-readable (``invalid_state``, ``unknown_payment``,
    ``amount_too_large``, ...); ``message`` is for people.
    """

    def __init__(self, code: str, message: str = "", *, provider_ref: str = "") -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.provider_ref = provider_ref


class ProviderTimeout(PaymentError):
    """The outcome is unknown (the money may have moved): resolve it with ``get_transaction``."""

    def __init__(self, message: str = "provider did not answer in time", *, provider_ref: str = "") -> None:
        super().__init__("timeout", message, provider_ref=provider_ref)


@runtime_checkable
class PaymentProvider(Protocol):
    """One payment gateway. Optional capabilities (customers, Connect accounts, payouts, disputes)
    live on separate protocols so a provider only implements what it supports."""

    name: str

    async def authorize(self, request: AuthorizeRequest) -> ProviderResult: ...

    async def capture(self, request: CaptureRequest) -> ProviderResult: ...

    async def void(self, request: VoidRequest) -> ProviderResult: ...

    async def refund(self, request: RefundRequest) -> ProviderResult: ...

    async def get_transaction(self, provider_ref: str) -> ProviderResult: ...

    def verify_webhook(self, payload: bytes, signature_header: str, *, now: int | None = None) -> WebhookEvent:
        """Check the signature on the raw body and parse it; raises ``signing.InvalidSignature``."""
        ...
