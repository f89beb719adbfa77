"""A store's commerce settings (kept in ``stores.settings``), read in one place with defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

CapturePolicy = Literal["at_checkout", "at_fulfilment"]
PaymentMode = Literal["test", "live"]
ChargeType = Literal["destination", "separate"]


@dataclass(frozen=True)
class CommerceSettings:
    country: str = "DE"
    prices_include_tax: bool = True
    capture_policy: CapturePolicy = "at_checkout"
    quote_ttl: timedelta = timedelta(minutes=15)
    payment_provider: str = "sandbox"
    shipping_tax_class: str = "standard"
    board_delay: timedelta = timedelta(minutes=10)  # a board card sitting longer in one status is "delayed"
    payment_mode: PaymentMode = "test"  # which of the provider's credentials are used (Stripe test vs live keys)
    # Refunds above this need a manager's approval (None: never); managers and owners refund directly.
    refund_approval_threshold_minor: int | None = None
    # Set by the platform owner (`till platform fee`), not by the store: the application fee per payment.
    platform_fee_bps: int = 0
    platform_fee_fixed_minor: int = 0
    # Stripe Connect: the store's connected account, its onboarding status, and how charges reach it.
    connect_account: str = ""
    connect_status: str = "not_started"  # not_started | pending | enabled | restricted
    connect_charge_type: ChargeType = "destination"
    # Whether shoppers may order. A new store starts not live; stores from before onboarding have no key: live.
    live: bool = True

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> CommerceSettings:
        policy = settings.get("capture_policy", "at_checkout")
        return cls(
            country=str(settings.get("country", "DE")),
            prices_include_tax=bool(settings.get("prices_include_tax", True)),
            capture_policy="at_fulfilment" if policy == "at_fulfilment" else "at_checkout",
            quote_ttl=timedelta(minutes=int(settings.get("quote_ttl_minutes", 15))),
            payment_provider=str(settings.get("payment_provider", "sandbox")),
            shipping_tax_class=str(settings.get("shipping_tax_class", "standard")),
            board_delay=timedelta(minutes=int(settings.get("board_delay_minutes", 10))),
            payment_mode="live" if settings.get("payment_mode") == "live" else "test",
            refund_approval_threshold_minor=(
                None
                if settings.get("refund_approval_threshold_minor") is None
                else int(settings["refund_approval_threshold_minor"])
            ),
            platform_fee_bps=int(settings.get("platform_fee_bps", 0)),
            platform_fee_fixed_minor=int(settings.get("platform_fee_fixed_minor", 0)),
            connect_account=str(settings.get("connect_account", "")),
            connect_status=str(settings.get("connect_status", "not_started")),
            connect_charge_type="separate" if settings.get("connect_charge_type") == "separate" else "destination",
            live=bool(settings.get("live", True)),
        )

    @property
    def board_delay_minutes(self) -> int:
        return int(self.board_delay.total_seconds() // 60)
