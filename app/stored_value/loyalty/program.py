"""A store's loyalty program and its arithmetic: pure, no I/O, integers only (Invariant 1).

- **Earning**: ``points_per_unit`` points per whole currency unit of an order's goods after discounts (shipping
  not counted), times the member's tier multiplier, rounded down.
- **Tiers**: a member's tier is the highest whose ``threshold`` is at most the points they earned (net of
  reversals) in the last ``QUALIFYING_DAYS`` days; recomputed nightly. The first tier's threshold is 0.
- **Reversal**: a refund takes back points in proportion to the money given back (rounded down; a full refund
  takes back all), counted on the order's cumulative refunds so repeated partial refunds never drift.
- **Expiry**: points expire ``expiry_days`` after they were earned; spending and reversals use the oldest first.
- **Redemption**: ``redeem_points`` points are worth ``redeem_value_minor``; a redemption uses at least
  ``min_redeem_points`` and never pays more than what is due.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.core.errors import ValidationFailed
from app.core.money import minor_digits

QUALIFYING_DAYS = 365
BPS = 10_000  # a multiplier of 10 000 bps is ×1
MAX_TIERS = 8
MAX_POINTS_PER_UNIT = 1_000
MAX_EXPIRY_DAYS = 3_650
MAX_POINTS = 100_000_000
MAX_MULTIPLIER_BPS = 10 * BPS
CHECK = "Check the loyalty program's highlighted fields."
_NAME = re.compile(r"^[^\x00-\x1f<>]{1,40}$")


@dataclass(frozen=True)
class Tier:
    name: str
    threshold: int  # points earned in the qualifying window to reach it
    multiplier_bps: int = BPS

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold, "multiplier_bps": self.multiplier_bps}


DEFAULT_TIERS = (Tier("Member", 0, BPS),)


@dataclass(frozen=True)
class Program:
    enabled: bool = False
    points_per_unit: int = 1
    tiers: tuple[Tier, ...] = field(default=DEFAULT_TIERS)
    expiry_days: int | None = 365  # None: points never expire
    redeem_points: int = 100  # this many points ...
    redeem_value_minor: int = 100  # ... are worth this much (minor units of the store's currency)
    min_redeem_points: int = 500

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "points_per_unit": self.points_per_unit,
            "tiers": [t.as_dict() for t in self.tiers],
            "expiry_days": self.expiry_days,
            "redeem_points": self.redeem_points,
            "redeem_value_minor": self.redeem_value_minor,
            "min_redeem_points": self.min_redeem_points,
        }

    # -- tiers --------------------------------------------------------------------------------------------------

    def tier_for(self, qualifying_points: int) -> Tier:
        """The highest tier whose threshold ``qualifying_points`` reaches (the first tier otherwise)."""
        reached = self.tiers[0]
        for tier in self.tiers:
            if qualifying_points >= tier.threshold:
                reached = tier
        return reached

    def tier_named(self, name: str) -> Tier:
        """The tier called ``name``; the first tier when the program no longer has it."""
        return next((t for t in self.tiers if t.name == name), self.tiers[0])

    def next_tier(self, qualifying_points: int) -> Tier | None:
        return next((t for t in self.tiers if t.threshold > qualifying_points), None)

    # -- earning and reversing ----------------------------------------------------------------------------------

    def earn(self, eligible_minor: int, currency: str, multiplier_bps: int) -> int:
        return earn_points(eligible_minor, currency, self.points_per_unit, multiplier_bps)

    # -- redeeming ----------------------------------------------------------------------------------------------

    def value_of(self, points: int) -> int:
        """What ``points`` are worth, in minor units (rounded down)."""
        return points * self.redeem_value_minor // self.redeem_points

    def points_to_cover(self, amount_minor: int) -> int:
        """The fewest points worth at least ``amount_minor``."""
        return -(-amount_minor * self.redeem_points // self.redeem_value_minor)

    def redemption(self, points: int, *, spendable: int, due_minor: int) -> Redemption:
        """Redeem ``points`` against ``due_minor``: the points used and the money they pay, or ValidationFailed
        (field ``points``) with the reason. Asking for more than is due uses only the points that cover it."""
        if not self.enabled:
            raise ValidationFailed("This store has no loyalty program.", fields={"points": "Loyalty is off."})
        if points <= 0:
            raise ValidationFailed("Choose how many points to use.", fields={"points": "More than 0 points."})
        if points > spendable:
            raise ValidationFailed(
                f"Only {spendable} points are available.", fields={"points": f"{spendable} points available."}
            )
        if due_minor <= 0:
            raise ValidationFailed("Nothing is left to pay.", fields={"points": "Nothing is left to pay."})
        if self.points_to_cover(due_minor) < self.min_redeem_points:  # what is due is worth fewer than the minimum
            raise ValidationFailed(
                f"What is left to pay is worth fewer than {self.min_redeem_points} points.",
                fields={"points": f"At least {self.min_redeem_points} points' worth must be due."},
            )
        if points < self.min_redeem_points:
            raise ValidationFailed(
                f"At least {self.min_redeem_points} points at a time.",
                fields={"points": f"At least {self.min_redeem_points} points."},
            )
        used = min(points, self.points_to_cover(due_minor))
        return Redemption(points=used, amount_minor=min(self.value_of(used), due_minor))


@dataclass(frozen=True)
class Redemption:
    points: int
    amount_minor: int


def earn_points(eligible_minor: int, currency: str, points_per_unit: int, multiplier_bps: int) -> int:
    """Points for ``eligible_minor`` of ``currency``: units * points per unit * multiplier (rounded down)."""
    if eligible_minor <= 0:
        return 0
    unit: int = 10 ** minor_digits(currency)
    return eligible_minor * points_per_unit * multiplier_bps // (unit * BPS)


def eligible_minor(lines: Iterable[tuple[int, int]]) -> int:
    """The part of an order that earns points: its lines (total, discount) after their discounts; shipping and
    tax added on top of the prices do not earn."""
    return max(sum(total - discount for total, discount in lines), 0)


def reversal_target(points: int, refunded_minor: int, total_minor: int) -> int:
    """Points to have taken back once ``refunded_minor`` of a ``total_minor`` order went back."""
    if points <= 0 or refunded_minor <= 0:
        return 0
    if total_minor <= 0 or refunded_minor >= total_minor:
        return points
    return points * refunded_minor // total_minor


def expiring(lots: Iterable[tuple[datetime, int]], debited: int, now: datetime, expiry_days: int | None) -> int:
    """Points to expire now: those earned in ``lots`` (earned at, points) more than ``expiry_days`` ago, less what
    was already used, taken back or expired (``debited``), the oldest points counting as used first."""
    if expiry_days is None:
        return 0
    cutoff = now - timedelta(days=expiry_days)
    old = sum(points for earned_at, points in lots if earned_at <= cutoff)
    return max(old - debited, 0)


# -- validation -----------------------------------------------------------------------------------------------


def _whole(value: Any, name: str, fields: dict[str, str], *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fields[name] = "A whole number."
        return low
    if not low <= value <= high:
        fields[name] = f"From {low} to {high}."
    return value


def validate_program(payload: Mapping[str, Any]) -> Program:
    """A program from its JSON shape (``Program.as_dict``), or ValidationFailed naming every wrong field by its
    dotted path (``tiers.1.threshold``)."""
    if not isinstance(payload, Mapping):
        raise ValidationFailed(CHECK, fields={"program": "An object."})
    fields: dict[str, str] = {}
    unknown = sorted(set(payload) - set(Program().as_dict()))
    for name in unknown:
        fields[name] = "Not a field of the loyalty program."
    enabled = payload.get("enabled", False)
    if not isinstance(enabled, bool):
        fields["enabled"] = "true or false."
    ppu = _whole(payload.get("points_per_unit"), "points_per_unit", fields, low=1, high=MAX_POINTS_PER_UNIT)
    expiry = payload.get("expiry_days")
    if expiry is not None:
        expiry = _whole(expiry, "expiry_days", fields, low=1, high=MAX_EXPIRY_DAYS)
    redeem_points = _whole(payload.get("redeem_points"), "redeem_points", fields, low=1, high=MAX_POINTS)
    redeem_value = _whole(payload.get("redeem_value_minor"), "redeem_value_minor", fields, low=1, high=MAX_POINTS)
    minimum = _whole(payload.get("min_redeem_points"), "min_redeem_points", fields, low=1, high=MAX_POINTS)
    tiers = _tiers(payload.get("tiers"), fields)
    if fields:
        raise ValidationFailed(CHECK, fields=fields)
    return Program(
        enabled=bool(enabled),
        points_per_unit=ppu,
        tiers=tiers,
        expiry_days=expiry,
        redeem_points=redeem_points,
        redeem_value_minor=redeem_value,
        min_redeem_points=minimum,
    )


def _tiers(raw: Any, fields: dict[str, str]) -> tuple[Tier, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or not raw:
        fields["tiers"] = "At least one tier, the first from 0 points."
        return DEFAULT_TIERS
    if len(raw) > MAX_TIERS:
        fields["tiers"] = f"At most {MAX_TIERS} tiers."
        return DEFAULT_TIERS
    tiers: list[Tier] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            fields[f"tiers.{i}"] = "An object with name, threshold and multiplier_bps."
            continue
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name.strip()):
            fields[f"tiers.{i}.name"] = "A name of 1 to 40 characters."
            name = ""
        threshold = _whole(item.get("threshold"), f"tiers.{i}.threshold", fields, low=0, high=MAX_POINTS)
        multiplier = _whole(
            item.get("multiplier_bps", BPS), f"tiers.{i}.multiplier_bps", fields, low=BPS // 10, high=MAX_MULTIPLIER_BPS
        )
        tiers.append(Tier(str(name).strip(), threshold, multiplier))
    if len(tiers) != len(raw):
        return DEFAULT_TIERS
    if tiers[0].threshold != 0 and "tiers.0.threshold" not in fields:
        fields["tiers.0.threshold"] = "The first tier starts at 0 points."
    for i in range(1, len(tiers)):
        if tiers[i].threshold <= tiers[i - 1].threshold and f"tiers.{i}.threshold" not in fields:
            fields[f"tiers.{i}.threshold"] = f"More than the tier above ({tiers[i - 1].threshold})."
    seen: set[str] = set()
    for i, tier in enumerate(tiers):
        if tier.name and tier.name.casefold() in seen:
            fields[f"tiers.{i}.name"] = "Another tier has this name."
        seen.add(tier.name.casefold())
    return tuple(tiers)


def program_of(row: Mapping[str, Any] | None) -> Program:
    """A stored program (``Program.as_dict``'s shape, already checked), or the default (off) without one."""
    if not row:
        return Program()
    return Program(
        enabled=bool(row["enabled"]),
        points_per_unit=int(row["points_per_unit"]),
        tiers=tuple(Tier(str(t["name"]), int(t["threshold"]), int(t["multiplier_bps"])) for t in row["tiers"])
        or DEFAULT_TIERS,
        expiry_days=None if row.get("expiry_days") is None else int(row["expiry_days"]),
        redeem_points=int(row["redeem_points"]),
        redeem_value_minor=int(row["redeem_value_minor"]),
        min_redeem_points=int(row["min_redeem_points"]),
    )


__all__ = [
    "BPS",
    "QUALIFYING_DAYS",
    "Program",
    "Redemption",
    "Tier",
    "earn_points",
    "eligible_minor",
    "expiring",
    "program_of",
    "reversal_target",
    "validate_program",
]
