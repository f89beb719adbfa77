"""Fees on a payment: the provider's processing fee (an estimate) and the platform's application fee.

Both are fixed when the payment is made and stored on the intent; the breakdown follows refunds.

- processing fee = round(amount * bps / 10,000) + fixed, per provider (:data:`PROCESSING_FEES`);
  providers keep it when money is refunded (Stripe has since 2022).
- platform fee   = round(amount * store.platform_fee_bps / 10,000) + store.platform_fee_fixed_minor,
  capped at the amount; a refund gives back the same share of it (Stripe's ``refund_application_fee``).
- net to the store = captured - refunded - lost to disputes - processing fee - dispute fees - (platform fee -
  platform fee refunded). A lost dispute takes its amount back from the store; the fees stay with the provider
  and the platform, as they do for a refund. Dispute fees are what the provider's balance transactions charged.

Rounding is half up on integer minor units (Invariant 1): no floats.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.money import Money
from app.stores.commerce import CommerceSettings

# Published card rates (basis points, fixed minor units): Stripe's standard European card pricing;
# the sandbox charges like Stripe so its numbers look real; cash costs nothing.
PROCESSING_FEES: dict[str, tuple[int, int]] = {"stripe": (150, 25), "sandbox": (150, 25), "cash": (0, 0)}


def _share(amount_minor: int, bps: int) -> int:
    return (amount_minor * bps + 5_000) // 10_000


def processing_fee(provider: str, amount: Money) -> Money:
    bps, fixed = PROCESSING_FEES.get(provider, (0, 0))
    if amount.amount_minor <= 0:
        return Money(0, amount.currency)
    return Money(min(amount.amount_minor, _share(amount.amount_minor, bps) + fixed), amount.currency)


def application_fee(settings: CommerceSettings, amount: Money) -> Money:
    if amount.amount_minor <= 0 or not (settings.platform_fee_bps or settings.platform_fee_fixed_minor):
        return Money(0, amount.currency)
    fee = _share(amount.amount_minor, settings.platform_fee_bps) + settings.platform_fee_fixed_minor
    return Money(min(amount.amount_minor, fee), amount.currency)


@dataclass(frozen=True)
class FeeBreakdown:
    currency: str
    authorized_minor: int
    captured_minor: int
    refunded_minor: int
    processing_fee_minor: int
    platform_fee_minor: int
    platform_fee_refunded_minor: int
    dispute_lost_minor: int = 0
    dispute_fee_minor: int = 0

    @property
    def net_minor(self) -> int:
        """What the store keeps: captured less refunds, lost disputes, the processing and dispute fees and the
        platform's kept fee."""
        if not self.captured_minor:
            return 0
        kept_fee = self.platform_fee_minor - self.platform_fee_refunded_minor
        taken_back = self.refunded_minor + self.dispute_lost_minor
        return self.captured_minor - taken_back - self.processing_fee_minor - self.dispute_fee_minor - kept_fee


def breakdown(
    *,
    currency: str,
    authorized_minor: int,
    captured_minor: int,
    refunded_minor: int,
    processing_fee_minor: int,
    platform_fee_minor: int,
    dispute_lost_minor: int = 0,
    dispute_fee_minor: int = 0,
) -> FeeBreakdown:
    """Fees of one payment as it stands; nothing is owed on money never captured."""
    refunded_share = platform_fee_minor * refunded_minor // captured_minor if captured_minor else 0
    return FeeBreakdown(
        currency=currency,
        authorized_minor=authorized_minor,
        captured_minor=captured_minor,
        refunded_minor=refunded_minor,
        processing_fee_minor=processing_fee_minor if captured_minor else 0,
        platform_fee_minor=platform_fee_minor if captured_minor else 0,
        platform_fee_refunded_minor=refunded_share,
        dispute_lost_minor=dispute_lost_minor,
        dispute_fee_minor=dispute_fee_minor,
    )
