"""A store's POS settings (``stores.settings["pos"]``), read in one place with their defaults.

- ``cashier_discount_limit_bps`` (1000 = 10 %): the largest discount a cashier or staff member gives on their own,
  as a share of what it is taken from (a line's price, or the ticket after its line discounts); managers and
  owners have no limit, and a manager's PIN approves more.
- ``offline_tenders`` (["cash"]): the tenders a sale made offline may use (cash, card, gift_card, store_credit). A
  gift card or store credit taken offline is still spent at sync from what its balance has left (a shortfall goes
  to review, app/stored_value/fragments.py); listing it here only stops the sale being flagged ``offline_tender``.
- ``max_offline_sale_minor`` (20000), ``max_offline_total_minor`` (100000): the most one offline sale, and all the
  offline sales a register made in a row, may come to; ``max_offline_hours`` (24): how old an offline sale may be
  when it reaches the server. A sale past a limit is still sold, and goes to the managers' review list.

Managers change them on the registers page (``/staff/registers``, "Till settings"); ``null`` switches a limit off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.errors import ValidationFailed
from app.core.money import amount_text, parse_amount
from app.core.rbac import Role

DEFAULT_DISCOUNT_LIMIT_BPS = 1000


def _int(value: Any, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return default
    return value


@dataclass(frozen=True)
class PosSettings:
    cashier_discount_limit_bps: int = DEFAULT_DISCOUNT_LIMIT_BPS
    offline_tenders: tuple[str, ...] = ("cash",)
    max_offline_sale_minor: int | None = 20_000
    max_offline_total_minor: int | None = 100_000
    max_offline_hours: int | None = 24

    @classmethod
    def of(cls, store_settings: Mapping[str, Any]) -> PosSettings:
        raw = store_settings.get("pos")
        pos: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        tenders = pos.get("offline_tenders", ["cash"])
        base = cls()
        limit = _int(pos.get("cashier_discount_limit_bps"), DEFAULT_DISCOUNT_LIMIT_BPS)
        return cls(
            cashier_discount_limit_bps=min(limit if limit is not None else DEFAULT_DISCOUNT_LIMIT_BPS, 10_000),
            offline_tenders=tuple(str(t) for t in tenders) if isinstance(tenders, list) else ("cash",),
            max_offline_sale_minor=_limit(pos, "max_offline_sale_minor", base.max_offline_sale_minor),
            max_offline_total_minor=_limit(pos, "max_offline_total_minor", base.max_offline_total_minor),
            max_offline_hours=_limit(pos, "max_offline_hours", base.max_offline_hours),
        )

    def discount_limit_bps(self, role: Role) -> int | None:
        """The caller's own discount limit; None: no limit (managers and owners)."""
        return None if role.at_least(Role.MANAGER) else self.cashier_discount_limit_bps

    def limits(self) -> dict[str, Any]:
        """The offline limits as the catalog snapshot hands them to the tablet."""
        return {
            "offline_tenders": list(self.offline_tenders),
            "max_offline_sale_minor": self.max_offline_sale_minor,
            "max_offline_total_minor": self.max_offline_total_minor,
            "max_offline_hours": self.max_offline_hours,
        }


def _limit(pos: Mapping[str, Any], name: str, default: int | None) -> int | None:
    """A limit of ``null`` switches it off; a missing or malformed one keeps the default."""
    if name in pos and pos[name] is None:
        return None
    return _int(pos.get(name), default)


_PERCENT = re.compile(r"^\s*(\d{1,3})(?:[.,](\d{1,2}))?\s*%?\s*$")
_HOURS = re.compile(r"^\s*(\d{1,4})\s*$")
TENDER_CHOICES = ("cash", "card", "gift_card", "store_credit")
TENDER_NAMES = {"cash": "Cash", "card": "Card", "gift_card": "Gift card", "store_credit": "Store credit"}


def form_values(pos: PosSettings, currency: str) -> dict[str, Any]:
    """The settings as the registers page's form shows them (amounts as typed, "" for no limit)."""

    def amount(minor: int | None) -> str:
        return "" if minor is None else amount_text(minor, currency)

    bps = pos.cashier_discount_limit_bps
    return {
        "discount_limit_percent": f"{bps // 100}" + (f".{bps % 100:02d}".rstrip("0") if bps % 100 else ""),
        "offline_tenders": list(pos.offline_tenders),
        "max_offline_sale": amount(pos.max_offline_sale_minor),
        "max_offline_total": amount(pos.max_offline_total_minor),
        "max_offline_hours": "" if pos.max_offline_hours is None else str(pos.max_offline_hours),
    }


def parse_form(text: Mapping[str, str], tenders: list[str], currency: str) -> dict[str, Any]:
    """``settings["pos"]`` from the registers page's form; ValidationFailed naming each field that is wrong. An empty
    limit is no limit."""
    fields: dict[str, str] = {}
    percent = _PERCENT.match(text.get("discount_limit_percent", ""))
    bps = int(percent.group(1)) * 100 + int((percent.group(2) or "").ljust(2, "0")) if percent else -1
    if not 0 <= bps <= 10_000:
        fields["discount_limit_percent"] = "A share from 0 to 100, like 10 or 12.5."
    if any(t not in TENDER_CHOICES for t in tenders):
        fields["offline_tenders"] = "Cash, card, gift card, store credit, or none."
    limits: dict[str, int | None] = {}
    for name in ("max_offline_sale", "max_offline_total"):
        raw = text.get(name, "").strip()
        minor = None if not raw else parse_amount(raw, currency)
        if raw and (minor is None or minor <= 0):
            fields[name] = "An amount like 200.00, or empty for no limit."
        limits[f"{name}_minor"] = minor
    hours = text.get("max_offline_hours", "").strip()
    hours_match = _HOURS.match(hours)
    if hours and (hours_match is None or int(hours) == 0):
        fields["max_offline_hours"] = "Whole hours like 24, or empty for no limit."
    if fields:
        raise ValidationFailed("Check the till settings.", fields=fields)
    return {
        "cashier_discount_limit_bps": bps,
        "offline_tenders": [t for t in TENDER_CHOICES if t in tenders],
        **limits,
        "max_offline_hours": int(hours) if hours else None,
    }
