"""A store's commerce settings (kept in ``stores.settings``), read in one place with defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

CapturePolicy = Literal["at_checkout", "at_fulfilment"]


@dataclass(frozen=True)
class CommerceSettings:
    country: str = "DE"
    prices_include_tax: bool = True
    capture_policy: CapturePolicy = "at_checkout"
    quote_ttl: timedelta = timedelta(minutes=15)
    payment_provider: str = "sandbox"
    shipping_tax_class: str = "standard"
    board_delay: timedelta = timedelta(minutes=10)  # a board card sitting longer in one status is "delayed"

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
        )

    @property
    def board_delay_minutes(self) -> int:
        return int(self.board_delay.total_seconds() // 60)
