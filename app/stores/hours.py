"""A store's opening hours, closed dates and pickup times, kept in ``stores.settings["hours"]``.

Pure: the stored dict, a moment in UTC and the store's time zone in; answers out. Hours are the store's wall
clock; every moment handed out is an aware UTC datetime, so a DST switch moves nothing a shopper sees.

The stored shape (``parse_hours`` makes it; ``hours_of`` reads it back)::

    {"weekly": {"mon": [["07:30", "18:00"]], ..., "sat": [["09:00", "12:00"], ["13:00", "16:00"]], "sun": []},
     "closed_dates": ["2026-12-24", "2026-12-25"],
     "pickup": {"lead_minutes": 15, "interval_minutes": 15, "days_ahead": 7}}

Rules:
- A day has zero or more ``HH:MM``-``HH:MM`` ranges; ``24:00`` may end one. A range that closes earlier than it
  opens runs overnight (Fri 18:00-02:00 closes Sat 02:00) and belongs to the day it opens. No range may overlap
  another, that day's or a neighbour's overnight one (Sun's overnight range runs into Mon).
- A closed date is closed from 00:00 to 24:00: its own ranges are dropped and the evening before stops at
  midnight.
- Pickup slots start every ``interval_minutes`` on the store's clock (07:30, 07:45, …), no earlier than now plus
  ``lead_minutes``, inside an open range with the whole interval before it closes, on the local dates from today
  to ``days_ahead`` days from now. Whether pickup is offered at all is the shipping config's pickup flag.
- A store without an ``"hours"`` key is always open and takes pickups without a time ("as soon as it's ready").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from app.core.errors import ValidationFailed

__all__ = [
    "DAYS",
    "INTERVALS",
    "Hours",
    "OpenStatus",
    "SlotDay",
    "choose_pickup_time",
    "day_label",
    "first_pickup_slot",
    "format_pickup",
    "hours_of",
    "is_open",
    "next_change",
    "no_slots_message",
    "parse_hours",
    "parse_hours_form",
    "pickup_at_of",
    "pickup_preview",
    "pickup_slots",
    "slot_groups",
    "validate_pickup_time",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SHORT_DAYS = tuple(name[:3] for name in DAY_NAMES)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_RANGES = 4  # per day (the settings page offers two: enough for a lunch break)
FORM_RANGES = 2
INTERVALS = (5, 10, 15, 20, 30, 45, 60, 90, 120)  # each divides a day, so every day's grid starts at 00:00
MAX_LEAD_MINUTES = 7 * 24 * 60
MAX_DAYS_AHEAD = 60
MAX_CLOSED_DATES = 200
DEFAULT_PICKUP = {"lead_minutes": 15, "interval_minutes": 15, "days_ahead": 7}
CHECK = "Check the highlighted fields."
FIELD = "pickup_at"  # the field a refused pickup time is reported on (quote form and API)
_DAY = 24 * 60
_WEEK = 7 * _DAY
_LOOKAHEAD_DAYS = MAX_DAYS_AHEAD + 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Range = tuple[int, int]  # minutes from the opening day's 00:00; the end may pass 1440 (overnight)


@dataclass(frozen=True)
class Hours:
    weekly: tuple[tuple[Range, ...], ...]  # Monday first, each day's ranges by opening time
    closed_dates: frozenset[date] = frozenset()
    lead_minutes: int = DEFAULT_PICKUP["lead_minutes"]
    interval_minutes: int = DEFAULT_PICKUP["interval_minutes"]
    days_ahead: int = DEFAULT_PICKUP["days_ahead"]

    def as_settings(self) -> dict[str, Any]:
        """The JSON kept at ``stores.settings["hours"]``."""
        return {
            "weekly": {day: [[_hhmm(s), _hhmm(e)] for s, e in self.weekly[i]] for i, day in enumerate(DAYS)},
            "closed_dates": [d.isoformat() for d in sorted(self.closed_dates)],
            "pickup": {
                "lead_minutes": self.lead_minutes,
                "interval_minutes": self.interval_minutes,
                "days_ahead": self.days_ahead,
            },
        }

    def form_values(self) -> dict[str, str]:
        """The settings page's field values (``mon_open_1``, ``closed_dates`` comma-separated, …)."""
        values: dict[str, str] = {}
        for i, day in enumerate(DAYS):
            for n, (start, end) in enumerate(self.weekly[i], start=1):
                values[f"{day}_open_{n}"], values[f"{day}_close_{n}"] = _hhmm(start), _hhmm(end)
        values["closed_dates"] = ",".join(d.isoformat() for d in sorted(self.closed_dates))
        values["lead_minutes"] = str(self.lead_minutes)
        values["interval_minutes"] = str(self.interval_minutes)
        values["days_ahead"] = str(self.days_ahead)
        return values


def _hhmm(minutes: int) -> str:
    """Minutes from the opening day's 00:00 as the clock shows them (an overnight end: the next day's clock)."""
    if minutes == _DAY:
        return "24:00"
    minutes %= _DAY
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# ---- parsing and validating ------------------------------------------------------------------------


def _clock(text: str, *, closing: bool) -> int | None:
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if closing and (hours, minutes) == (24, 0):
        return _DAY
    return hours * 60 + minutes if hours < 24 and minutes < 60 else None


def _range(opening: str, closing: str) -> Range | str:
    """A range from two clock texts, or why not."""
    if not opening.strip():
        return "Enter the opening time."
    if not closing.strip():
        return "Enter the closing time."
    start, end = _clock(opening, closing=False), _clock(closing, closing=True)
    if start is None:
        return "Enter the opening time as HH:MM, from 00:00 to 23:59."
    if end is None:
        return "Enter the closing time as HH:MM, from 00:00 to 24:00."
    if end == start:
        return "The closing time is the opening time: enter when you close."
    return (start, end if end > start else end + _DAY)  # closing earlier than opening: overnight


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """On the weekly circle (Sunday's overnight range runs into Monday)."""
    return any(a[0] < b[1] + shift and b[0] + shift < a[1] for shift in (-_WEEK, 0, _WEEK))


def _on_week(day: int, rng: Range) -> tuple[int, int]:
    return day * _DAY + rng[0], day * _DAY + rng[1]


def _weekly(days: list[list[tuple[str, str, str]]], errors: dict[str, str]) -> tuple[tuple[Range, ...], ...]:
    """Each day's ``(error key, opening, closing)`` texts to ranges; problems go to ``errors`` by key."""
    placed: list[tuple[int, Range]] = []  # (day, range) accepted so far, to check overlaps against
    weekly: list[list[Range]] = [[] for _ in DAYS]
    for day, entries in enumerate(days):
        for key, opening, closing in entries:
            rng = _range(opening, closing)
            if isinstance(rng, str):
                errors[key] = rng
                continue
            clash = next((other for other in placed if _overlaps(_on_week(day, rng), _on_week(*other))), None)
            if clash is not None:
                other_day, other = clash
                where = f"{_hhmm(other[0])}–{_hhmm(other[1])}"
                errors[key] = f"Overlaps {where if other_day == day else DAY_NAMES[other_day] + ' ' + where}."
                continue
            placed.append((day, rng))
            weekly[day].append(rng)
    return tuple(tuple(sorted(ranges)) for ranges in weekly)


def _closed_date(text: str) -> date | None:
    text = text.strip()
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _whole(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if low <= number <= high else None


def _pickup(raw: Mapping[str, Any], errors: dict[str, str]) -> dict[str, int]:
    lead = _whole(raw.get("lead_minutes", DEFAULT_PICKUP["lead_minutes"]), 0, MAX_LEAD_MINUTES)
    if lead is None:
        errors["lead_minutes"] = f"Enter whole minutes from 0 to {MAX_LEAD_MINUTES} (a week)."
    interval = _whole(raw.get("interval_minutes", DEFAULT_PICKUP["interval_minutes"]), 1, _DAY)
    if interval not in INTERVALS:
        errors["interval_minutes"] = f"Choose {', '.join(map(str, INTERVALS[:-1]))} or {INTERVALS[-1]} minutes."
    ahead = _whole(raw.get("days_ahead", DEFAULT_PICKUP["days_ahead"]), 0, MAX_DAYS_AHEAD)
    if ahead is None:
        errors["days_ahead"] = f"Enter a number of days from 0 (today only) to {MAX_DAYS_AHEAD}."
    return {"lead_minutes": lead or 0, "interval_minutes": interval or 0, "days_ahead": ahead or 0}


def _closed_dates(texts: list[str], key: str, errors: dict[str, str]) -> list[date]:
    dates: set[date] = set()
    for text in texts:
        if not text.strip():
            continue
        parsed = _closed_date(text)
        if parsed is None:
            errors[key] = f"{text.strip()[:20]!r} is not a date such as 2026-12-24."
        else:
            dates.add(parsed)
    if len(dates) > MAX_CLOSED_DATES:
        errors[key] = f"Keep at most {MAX_CLOSED_DATES} closed dates."
    return sorted(dates)


def _finish(weekly: tuple[tuple[Range, ...], ...], closed: list[date], pickup: dict[str, int]) -> dict[str, Any]:
    return Hours(weekly, frozenset(closed), **pickup).as_settings()


def parse_hours(data: Mapping[str, Any]) -> dict[str, Any]:
    """The stored shape (see the module's doc) checked and normalised: ranges sorted, dates sorted and
    de-duplicated, pickup defaults filled in. ``ValidationFailed`` names each bad field: ``mon_1`` (Monday's
    first range), ``closed_dates``, ``lead_minutes``, ``interval_minutes``, ``days_ahead``, ``weekly``."""
    errors: dict[str, str] = {}
    if not isinstance(data, Mapping):
        raise ValidationFailed(CHECK, fields={"hours": "Give the hours as an object."})
    raw_weekly = data.get("weekly", {})
    days: list[list[tuple[str, str, str]]] = [[] for _ in DAYS]
    if not isinstance(raw_weekly, Mapping) or set(raw_weekly) - set(DAYS):
        errors["weekly"] = f"Give the week as an object with the keys {', '.join(DAYS)}."
    else:
        for i, day in enumerate(DAYS):
            ranges = raw_weekly.get(day, [])
            if not isinstance(ranges, list) or len(ranges) > MAX_RANGES:
                errors[f"{day}_1"] = f"Give {DAY_NAMES[i]} as a list of up to {MAX_RANGES} [opening, closing] pairs."
                continue
            for n, pair in enumerate(ranges, start=1):
                if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                    errors[f"{day}_{n}"] = 'Give a range as ["HH:MM", "HH:MM"].'
                    continue
                days[i].append((f"{day}_{n}", pair[0], pair[1]))
    weekly = _weekly(days, errors)
    raw_dates = data.get("closed_dates", [])
    if not isinstance(raw_dates, list) or not all(isinstance(d, str) for d in raw_dates):
        errors["closed_dates"] = "Give closed dates as a list of dates such as 2026-12-24."
        raw_dates = []
    closed = _closed_dates(raw_dates, "closed_dates", errors)
    raw_pickup = data.get("pickup", {})
    if not isinstance(raw_pickup, Mapping):
        errors["pickup"] = "Give the pickup settings as an object."
        raw_pickup = {}
    pickup = _pickup(raw_pickup, errors)
    if errors:
        raise ValidationFailed(CHECK, fields=errors)
    return _finish(weekly, closed, pickup)


def parse_hours_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The settings page's form to the stored shape. Fields: ``{day}_open_{n}`` / ``{day}_close_{n}`` (n = 1…4;
    both empty: no range), ``closed_dates`` (comma-separated), ``closed_date_new`` (one to add),
    ``remove_closed`` (one to remove), ``lead_minutes``, ``interval_minutes``, ``days_ahead``. Errors are keyed
    like ``parse_hours``'s, plus ``closed_date_new``."""
    errors: dict[str, str] = {}
    days: list[list[tuple[str, str, str]]] = [[] for _ in DAYS]
    for i, day in enumerate(DAYS):
        for n in range(1, MAX_RANGES + 1):
            opening, closing = form.get(f"{day}_open_{n}", ""), form.get(f"{day}_close_{n}", "")
            if opening.strip() or closing.strip():
                days[i].append((f"{day}_{n}", opening, closing))
    weekly = _weekly(days, errors)
    removed = form.get("remove_closed", "").strip()
    kept = [d for d in form.get("closed_dates", "").split(",") if d.strip() and d.strip() != removed]
    closed = _closed_dates(kept, "closed_dates", errors)
    new = form.get("closed_date_new", "").strip()
    if new:
        added = _closed_date(new)
        if added is None:
            errors["closed_date_new"] = "Enter a date such as 2026-12-24."
        elif added not in closed:
            closed = sorted([*closed, added])
            if len(closed) > MAX_CLOSED_DATES:
                errors["closed_date_new"] = f"Keep at most {MAX_CLOSED_DATES} closed dates: remove past ones first."
    pickup = _pickup(form, errors)
    if errors:
        raise ValidationFailed(CHECK, fields=errors)
    return _finish(weekly, closed, pickup)


def _build(settings: Mapping[str, Any]) -> Hours:
    """An ``Hours`` from the normalised shape ``parse_hours`` returns."""
    weekly = tuple(
        tuple(sorted(rng for s, e in settings["weekly"][day] if not isinstance(rng := _range(s, e), str)))
        for day in DAYS
    )
    pickup = settings["pickup"]
    return Hours(
        weekly=weekly,
        closed_dates=frozenset(date.fromisoformat(d) for d in settings["closed_dates"]),
        lead_minutes=pickup["lead_minutes"],
        interval_minutes=pickup["interval_minutes"],
        days_ahead=pickup["days_ahead"],
    )


def hours_from(data: Mapping[str, Any]) -> Hours:
    """An ``Hours`` from the stored (or an API's) shape; ``ValidationFailed`` as ``parse_hours``."""
    return _build(parse_hours(data))


def hours_of(store_settings: Mapping[str, Any]) -> Hours | None:
    """The store's hours, or None when it has none (always open; pickup without a time). Parsed once per
    distinct configuration: a quote needs them every time."""
    raw = store_settings.get("hours")
    if raw is None:
        return None
    return _hours_for(msgspec.json.encode(raw))


@functools.lru_cache(maxsize=256)
def _hours_for(encoded: bytes) -> Hours:
    return hours_from(msgspec.json.decode(encoded))


# ---- time ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else _zone_named(tz)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone: give an aware datetime")
    return moment.astimezone(UTC)


def _wall(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The moment (UTC) the store's clock shows ``minutes`` past 00:00 of ``day`` (may be the next day's clock).
    A time a spring-forward skips counts from the old offset (02:30 → 03:30), an ambiguous one is its first
    occurrence."""
    return (datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minutes)).astimezone(UTC)


def _today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def _openings(hours: Hours, zone: ZoneInfo, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The open spans (UTC, merged where one ends as the next starts) of the ranges opening from the day before
    ``first`` (its overnight range) to ``last``."""
    spans: list[tuple[datetime, datetime]] = []
    day = first - timedelta(days=1)
    while day <= last:
        if day not in hours.closed_dates:
            for start, end in hours.weekly[day.weekday()]:
                opens, closes = _wall(day, start, zone), _wall(day, end, zone)
                if end > _DAY and day + timedelta(days=1) in hours.closed_dates:
                    closes = _wall(day, _DAY, zone)  # a closed date is closed from its 00:00
                if opens < closes:
                    spans.append((opens, closes))
        day += timedelta(days=1)
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for opens, closes in spans:
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def _offset_minutes(moment: datetime, zone: ZoneInfo) -> int:
    offset = moment.astimezone(zone).utcoffset()
    return offset // _MINUTE if offset is not None else 0


def _on_grid(moment: datetime, interval: int, zone: ZoneInfo) -> datetime:
    """The first moment from ``moment`` on whose local clock the minutes since 00:00 are a multiple of
    ``interval``. Counted in real time, so the hour a fall-back repeats gets its slots too."""
    moment = moment.astimezone(UTC)
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + _MINUTE
    for _ in range(4):  # an offset change on the way moves the grid: look again from there
        offset = _offset_minutes(moment, zone)
        wait = -((moment - _EPOCH) // _MINUTE + offset) % interval
        if not wait:
            return moment
        candidate = moment + wait * _MINUTE
        if _offset_minutes(candidate, zone) == offset:
            return candidate
        moment = candidate
    return moment


# ---- open or closed --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenStatus:
    open: bool
    change_at: datetime | None  # when it closes (open) or opens (closed); None: not within two months
    text: str  # "Open now · closes 18:00", "Closed · opens Mon 08:00"


def is_open(hours: Hours | None, now_utc: datetime, tz: str | ZoneInfo) -> bool:
    """Whether the store is open at ``now_utc``; a store without hours always is."""
    if hours is None:
        return True
    now, zone = _aware(now_utc), _zone(tz)
    today = _today(now, zone)
    return any(opens <= now < closes for opens, closes in _openings(hours, zone, today, today))


def next_change(hours: Hours, now_utc: datetime, tz: str | ZoneInfo) -> OpenStatus:
    """Open or closed now, and until when, in the store's time zone: "Open now · closes 18:00",
    "Closed · opens 14:00" (today), "Closed · opens tomorrow 07:30", "Closed · opens Mon 08:00" (this week),
    "Closed · opens Mon 12 Jan 08:00", or "Closed" / "Open now" with nothing in sight for two months."""
    now, zone = _aware(now_utc), _zone(tz)
    today = _today(now, zone)
    horizon = _wall(today + timedelta(days=_LOOKAHEAD_DAYS), 0, zone)
    for opens, closes in _openings(hours, zone, today, today + timedelta(days=_LOOKAHEAD_DAYS)):
        if opens <= now < closes:
            if closes >= horizon:
                return OpenStatus(True, None, "Open now")
            return OpenStatus(True, closes, f"Open now · closes {_when(closes, now, zone, closing=True)}")
        if opens > now:
            return OpenStatus(False, opens, f"Closed · opens {_when(opens, now, zone)}")
    return OpenStatus(False, None, "Closed")


def day_label(day: date) -> str:
    """A date as the pages show it: "Thu 24 Dec 2026"."""
    return f"{_SHORT_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def _day_text(local: datetime, today: date) -> str:
    text = f"{_SHORT_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}"
    return text if local.year == today.year else f"{text} {local.year}"


def _when(moment: datetime, now: datetime, zone: ZoneInfo, *, closing: bool = False) -> str:
    local, today = moment.astimezone(zone), _today(now, zone)
    clock = f"{local:%H:%M}"
    days = (local.date() - today).days
    if days == 0 or (closing and moment - now < timedelta(hours=24)):
        return clock
    if days == 1:
        return f"tomorrow {clock}"
    if 1 < days < 7:
        return f"{_SHORT_DAYS[local.weekday()]} {clock}"
    return f"{_day_text(local, today)} {clock}"


# ---- pickup ----------------------------------------------------------------------------------------


def _slots(hours: Hours, now: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    today = _today(now, zone)
    last = today + timedelta(days=hours.days_ahead)
    window_end = _wall(last + timedelta(days=1), 0, zone)
    earliest = now + hours.lead_minutes * _MINUTE
    step = hours.interval_minutes * _MINUTE
    for opens, closes in _openings(hours, zone, today, last):
        slot = _on_grid(max(opens, earliest), hours.interval_minutes, zone)
        while slot + step <= closes and slot < window_end:
            yield slot
            slot = _on_grid(slot + step, hours.interval_minutes, zone)


def pickup_slots(hours: Hours, now_utc: datetime, tz: str | ZoneInfo) -> list[datetime]:
    """Every pickup time a shopper may choose now (aware UTC, ascending): see the module's doc for the rule."""
    return list(_slots(hours, _aware(now_utc), _zone(tz)))


# The first slot found, kept per (hours, zone) with when it was found: it stays the first slot until its preparation
# time starts (``earliest`` only grows towards it, and no slot before it can open up), so every quote of a store
# need not walk its week of openings again. Checked against ``now``, so a caller passing an earlier ``now`` recomputes.
_first_slots: dict[tuple[Hours, str], tuple[datetime, datetime]] = {}


def first_pickup_slot(hours: Hours, now_utc: datetime, tz: str | ZoneInfo) -> datetime | None:
    now, zone = _aware(now_utc), _zone(tz)
    key = (hours, str(zone))
    kept = _first_slots.get(key)
    if kept is not None and kept[0] <= now <= kept[1] - hours.lead_minutes * _MINUTE:
        return kept[1]
    first = next(_slots(hours, now, zone), None)
    if first is not None:
        if len(_first_slots) >= 256:
            _first_slots.clear()
        _first_slots[key] = (now, first)
    return first


def no_slots_message(hours: Hours) -> str:
    if hours.days_ahead == 0:
        return "There are no pickup times left today."
    return f"There are no pickup times in the next {hours.days_ahead} day{'s' if hours.days_ahead != 1 else ''}."


def _duration(minutes: int) -> str:
    days, rest = divmod(minutes, _DAY)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in ((days, "day"), (hours, "hour"), (mins, "minute")) if n
    ]
    return " ".join(parts) or "no time"


def _refused(message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={FIELD: message})


def validate_pickup_time(hours: Hours, chosen_utc: datetime, now_utc: datetime, tz: str | ZoneInfo) -> datetime:
    """``chosen_utc`` if it is one of ``pickup_slots`` now, else ``ValidationFailed`` on ``pickup_at`` saying
    why in words a shopper understands (passed, too soon, too far ahead, a closed day, outside the hours)."""
    now, zone = _aware(now_utc), _zone(tz)
    if chosen_utc.tzinfo is None or chosen_utc.utcoffset() is None:
        raise _refused("Give the pickup time with its time zone, such as 2026-03-30T07:30:00Z.")
    chosen = chosen_utc.astimezone(UTC)
    for slot in _slots(hours, now, zone):
        if slot == chosen:
            return slot
        if slot > chosen:
            break
    raise _refused(_why_not(hours, chosen, now, zone))


def _why_not(hours: Hours, chosen: datetime, now: datetime, zone: ZoneInfo) -> str:
    local, today = chosen.astimezone(zone), _today(now, zone)
    on_day = _day_text(local, today)
    if chosen <= now:
        return "That pickup time has passed. Choose a later time."
    if chosen < now + hours.lead_minutes * _MINUTE:
        first = next(_slots(hours, now, zone), None)
        later = f"{format_pickup(first, now, zone).removeprefix('on ')} or later" if first else "a later time"
        return f"We need {_duration(hours.lead_minutes)} to prepare your order. Choose {later}."
    if (local.date() - today).days > hours.days_ahead:
        if hours.days_ahead == 0:
            return "Pickup is for today only. Choose a time today."
        return f"Pickup times can be chosen up to {hours.days_ahead} day{'s' if hours.days_ahead != 1 else ''} ahead."
    if local.date() in hours.closed_dates:
        return f"We are closed on {on_day}. Choose another day."
    spans = _openings(hours, zone, local.date(), local.date())
    if not any(opens <= chosen < closes for opens, closes in spans):
        if not hours.weekly[local.weekday()]:
            return f"We are closed on {DAY_NAMES[local.weekday()]}s. Choose another day."
        return f"We are not open at {local:%H:%M} on {on_day}. Choose a time when we are open."
    if _on_grid(chosen, hours.interval_minutes, zone) != chosen:
        return f"Choose one of the offered pickup times (every {hours.interval_minutes} minutes)."
    closes = next(closes for opens, closes in spans if opens <= chosen < closes)
    return f"We close at {closes.astimezone(zone):%H:%M} on {on_day}. Choose an earlier time."


def choose_pickup_time(hours: Hours, requested: str | None, now_utc: datetime, tz: str | ZoneInfo) -> datetime:
    """The pickup time of a quote: ``requested`` (ISO 8601 with an offset) checked, or the first free slot when
    none is given; ``ValidationFailed`` on ``pickup_at`` when it is refused or no slot is free."""
    if requested is None or not requested.strip():
        first = first_pickup_slot(hours, now_utc, tz)
        if first is None:
            reason = no_slots_message(hours)
            raise _refused(f"Pickup is not available: {reason[0].lower()}{reason[1:]} Choose delivery instead.")
        return first
    try:
        chosen = datetime.fromisoformat(requested.strip())
    except ValueError:
        raise _refused("That is not a pickup time. Choose one from the list.") from None
    return validate_pickup_time(hours, chosen, now_utc, tz)


@dataclass(frozen=True)
class SlotDay:
    label: str  # "Today", "Tomorrow", "Thu 15 Jan"
    slots: tuple[tuple[str, str], ...]  # (value: ISO UTC, text: the store's clock "10:15")


def slot_groups(slots: list[datetime], now_utc: datetime, tz: str | ZoneInfo) -> list[SlotDay]:
    """Slots grouped by the store's local date, for a ``<select>`` with ``<optgroup>``s. On a fall-back day
    whose clock shows a time twice, each time names its zone (02:30 CEST, 02:30 CET)."""
    now, zone = _aware(now_utc), _zone(tz)
    today = _today(now, zone)
    by_day: dict[date, list[datetime]] = {}
    for slot in slots:
        by_day.setdefault(slot.astimezone(zone).date(), []).append(slot)
    groups = []
    for day, moments in by_day.items():
        locals_ = [m.astimezone(zone) for m in moments]
        clocks = [f"{m:%H:%M}" for m in locals_]
        if len(set(clocks)) != len(clocks):
            clocks = [f"{m:%H:%M %Z}" for m in locals_]
        offset = (day - today).days
        label = {0: "Today", 1: "Tomorrow"}.get(offset) or _day_text(locals_[0], today)
        groups.append(
            SlotDay(label, tuple((m.astimezone(UTC).isoformat(), c) for m, c in zip(moments, clocks, strict=True)))
        )
    return groups


def pickup_preview(hours: Hours, now_utc: datetime, tz: str | ZoneInfo, count: int = 6) -> str:
    """ "Next pickup times: Tue 10:15, 10:30, …" (the day named where it changes)."""
    now, zone = _aware(now_utc), _zone(tz)
    shown: list[str] = []
    last_day: date | None = None
    more = False
    for slot in _slots(hours, now, zone):
        if len(shown) == count:
            more = True
            break
        local = slot.astimezone(zone)
        shown.append(f"{local:%H:%M}" if local.date() == last_day else f"{_SHORT_DAYS[local.weekday()]} {local:%H:%M}")
        last_day = local.date()
    if not shown:
        return no_slots_message(hours)
    return f"Next pickup times: {', '.join(shown)}{', …' if more else ''}"


def format_pickup(moment: datetime, now_utc: datetime, tz: str | ZoneInfo) -> str:
    """A pickup time in a sentence, on the store's clock: "today at 10:15", "tomorrow at 07:30",
    "on Wed 14 Jan at 10:15"."""
    zone = _zone(tz)
    local, today = moment.astimezone(zone), _today(_aware(now_utc), zone)
    days = (local.date() - today).days
    clock = f"{local:%H:%M}"
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    return f"on {_day_text(local, today)} at {clock}"


def pickup_at_of(shipping: Mapping[str, Any] | None) -> datetime | None:
    """The pickup time frozen into a snapshot's or an order's ``shipping`` JSON, if any."""
    raw = (shipping or {}).get("pickup_at")
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None
