"""Day ranges as staff type them: whole days in the store's time zone, both ends included."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.core.errors import ValidationFailed


def day_range(since: str, until: str, timezone: str) -> tuple[datetime | None, datetime | None]:
    """``since``..``until`` (YYYY-MM-DD, either may be empty) as ``[start, end)`` moments; a date that is not
    one, or a last day before the first, is a ValidationFailed naming the field (``since`` / ``until``)."""
    zone = ZoneInfo(timezone)
    errors: dict[str, str] = {}
    days: dict[str, datetime | None] = {}
    for name, text in (("since", since.strip()), ("until", until.strip())):
        try:
            days[name] = datetime.combine(date.fromisoformat(text), time(), zone) if text else None
        except ValueError:
            errors[name] = "Enter a date such as 2026-11-23."
    start, last = days.get("since"), days.get("until")
    if start and last and last < start:
        errors["until"] = "The last day comes before the first."
    if errors:
        raise ValidationFailed("Check the dates.", fields=errors)
    return start, last + timedelta(days=1) if last else None
