"""A store's POS settings (``stores.settings["pos"]``), read in one place with their defaults.

- ``cashier_discount_limit_bps`` (1000 = 10 %): the largest discount a cashier or staff member gives on their own,
  as a share of what it is taken from (a line's price, or the ticket after its line discounts); managers and
  owners have no limit, and a manager's PIN approves more.
- ``offline_tenders`` (["cash"]): the tenders a sale made offline may use.
- ``max_offline_sale_minor`` (20000), ``max_offline_total_minor`` (100000): the most one offline sale, and all the
  offline sales a register made in a row, may come to; ``max_offline_hours`` (24): how old an offline sale may be
  when it reaches the server. A sale past a limit is still sold, and goes to the managers' review list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
