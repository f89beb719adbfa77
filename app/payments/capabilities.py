"""Optional provider capabilities beyond the payment lifecycle: customers, Stripe Connect and disputes.

A provider implements the protocols it supports; callers check with ``isinstance`` (the protocols
are runtime-checkable) and tell the store what is not available instead of failing later.
Every mutating call takes an ``idempotency_key`` derived from our own row (Invariant 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol, runtime_checkable

from app.core.money import Money

__all__ = [
    "ConnectedAccount",
    "DisputeEvidence",
    "DisputeSubmission",
    "OnboardingLink",
    "Payout",
    "PayoutStatus",
    "SupportsConnect",
    "SupportsCustomers",
    "SupportsDisputes",
    "Transfer",
]

PayoutStatus = Literal["pending", "in_transit", "paid", "failed", "canceled"]


@dataclass(frozen=True)
class ConnectedAccount:
    """A store's account on the platform (Stripe: an Express/Standard ``acct_...``)."""

    id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: tuple[str, ...] = ()

    @property
    def status(self) -> Literal["enabled", "pending", "restricted"]:
        """``enabled`` takes payments and pays out; ``pending`` has onboarding left; ``restricted`` was
        onboarded but the provider wants more (requirements due) before it pays out again."""
        if self.charges_enabled and self.payouts_enabled and not self.requirements_due:
            return "enabled"
        return "restricted" if self.details_submitted else "pending"


@dataclass(frozen=True)
class OnboardingLink:
    url: str
    expires_at: int  # unix seconds


@dataclass(frozen=True)
class Payout:
    id: str
    amount: Money
    status: PayoutStatus
    arrival_date: date
    created: int  # unix seconds
    failure_message: str = ""

    @property
    def upcoming(self) -> bool:
        return self.status in ("pending", "in_transit")


@dataclass(frozen=True)
class Transfer:
    id: str
    amount: Money
    destination: str
    transfer_group: str = ""


@dataclass(frozen=True)
class DisputeEvidence:
    """The text evidence a dispute is answered with, named as Stripe's ``evidence`` fields (each at most
    20,000 characters there). Files stay with the store's evidence pack and are listed in the text."""

    customer_name: str = ""
    customer_email_address: str = ""
    billing_address: str = ""
    shipping_address: str = ""
    shipping_carrier: str = ""
    shipping_tracking_number: str = ""
    shipping_date: str = ""
    product_description: str = ""
    uncategorized_text: str = ""

    def fields(self) -> dict[str, str]:
        """The non-empty fields, by Stripe's names."""
        return {name: value for name, value in self.__dict__.items() if value}


@dataclass(frozen=True)
class DisputeSubmission:
    dispute_id: str
    status: str  # the provider's dispute status after the call (Stripe: under_review once submitted)
    submitted: bool  # sent to the bank (False: staged only)


@runtime_checkable
class SupportsDisputes(Protocol):
    async def submit_dispute_evidence(
        self, dispute_id: str, evidence: DisputeEvidence, submit: bool = True
    ) -> DisputeSubmission:
        """Stage (``submit=False``) or submit the evidence; repeating the same evidence is a replay
        (the idempotency key derives from the dispute and the evidence)."""
        ...


@runtime_checkable
class SupportsCustomers(Protocol):
    async def ensure_customer(self, *, email: str, name: str, existing_ref: str, idempotency_key: str) -> str:
        """The provider's customer id: ``existing_ref`` when it still exists, else a new customer's."""
        ...


@runtime_checkable
class SupportsConnect(Protocol):
    async def create_account(self, *, email: str, country: str, idempotency_key: str) -> ConnectedAccount: ...

    async def onboarding_link(self, account_id: str, *, refresh_url: str, return_url: str) -> OnboardingLink: ...

    async def get_account(self, account_id: str) -> ConnectedAccount: ...

    async def create_transfer(
        self, *, amount: Money, destination: str, transfer_group: str, idempotency_key: str, source_ref: str = ""
    ) -> Transfer:
        """Move ``amount`` from the platform to ``destination`` (separate charges and transfers);
        ``source_ref`` is the payment the money came from (Stripe: ``source_transaction``)."""
        ...

    async def list_payouts(self, account_id: str, *, limit: int = 20) -> list[Payout]:
        """The connected account's payouts, newest first: upcoming (pending, in transit) and past."""
        ...
