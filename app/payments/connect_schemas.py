"""API shapes for Connect: the onboarding link, the connected account's status, its payouts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

import msgspec

from app.payments.capabilities import OnboardingLink, Payout
from app.payments.connect import ConnectState, PayoutSplit

ConnectStatus = Literal["not_started", "pending", "enabled", "restricted"]


class OnboardingLinkOut(msgspec.Struct):
    url: str
    """Send the store owner here: the provider's onboarding. It comes back to /staff/payouts/return."""
    expires_at: datetime
    """The link works until then (minutes); ask for a new one after."""

    @classmethod
    def of(cls, link: OnboardingLink) -> OnboardingLinkOut:
        return cls(url=link.url, expires_at=datetime.fromtimestamp(link.expires_at, UTC))


class ConnectAccountOut(msgspec.Struct):
    account_id: str | None
    """The store's connected account at the provider (Stripe ``acct_…``); null before onboarding starts."""
    status: ConnectStatus
    """``enabled`` takes payments and pays out; ``pending`` has onboarding left; ``restricted`` needs more
    (see ``requirements_due``) before it pays out again."""
    charges_enabled: bool
    payouts_enabled: bool
    requirements_due: list[str]
    """What the provider still asks for (Stripe's ``requirements.currently_due``)."""

    @classmethod
    def of(cls, state: ConnectState) -> ConnectAccountOut:
        status: ConnectStatus = (
            state.status if state.status in ("pending", "enabled", "restricted") else "not_started"  # type: ignore[assignment]
        )
        return cls(
            account_id=state.account_id or None,
            status=status,
            charges_enabled=state.charges_enabled,
            payouts_enabled=state.payouts_enabled,
            requirements_due=list(state.requirements_due),
        )


class PayoutOut(msgspec.Struct):
    id: str
    amount_minor: int
    currency: str
    status: Literal["pending", "in_transit", "paid", "failed", "canceled"]
    arrival_date: date
    """When the money reaches (or reached) the store's bank account."""
    created_at: datetime
    failure_message: str = ""

    @classmethod
    def of(cls, payout: Payout) -> PayoutOut:
        return cls(
            id=payout.id,
            amount_minor=payout.amount.amount_minor,
            currency=payout.amount.currency,
            status=payout.status,
            arrival_date=payout.arrival_date,
            created_at=datetime.fromtimestamp(payout.created, UTC),
            failure_message=payout.failure_message,
        )


class PayoutsOut(msgspec.Struct):
    upcoming: list[PayoutOut]
    """Pending or in transit, newest first."""
    past: list[PayoutOut]
    """Paid, failed or canceled, newest first."""

    @classmethod
    def of(cls, split: PayoutSplit) -> PayoutsOut:
        return cls(upcoming=[PayoutOut.of(p) for p in split.upcoming], past=[PayoutOut.of(p) for p in split.past])
