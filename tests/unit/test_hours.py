"""Opening hours, closed dates and pickup times (app/stores/hours.py): parsing, open/closed, slots, DST."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.core.errors import ValidationFailed
from app.stores import hours as h
from app.stores.hours import Hours

BERLIN = "Europe/Berlin"
CAFE: dict[str, Any] = {
    "weekly": {
        **{day: [["07:30", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        "sat": [["09:00", "16:00"]],
        "sun": [],
    },
    "closed_dates": [],
    "pickup": {"lead_minutes": 15, "interval_minutes": 15, "days_ahead": 7},
}


def cafe(**changes: Any) -> Hours:
    data = {**CAFE, **changes}
    if "pickup" in changes:
        data["pickup"] = {**CAFE["pickup"], **changes["pickup"]}
    return h.hours_from(data)


def at(text: str, tz: str = BERLIN) -> datetime:
    """A wall-clock time in ``tz`` as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def local(moment: datetime, tz: str = BERLIN) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M %Z")


def refusal(call: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        call()
    return caught.value.fields


# ---- parsing ---------------------------------------------------------------------------------------------


def test_parse_normalises_sorts_and_fills_defaults() -> None:
    parsed = h.parse_hours(
        {
            "weekly": {"mon": [["13:00", "18:00"], ["8:00", "12:00"]], "sat": [["09:00", "24:00"]]},
            "closed_dates": ["2026-12-25", "2026-12-24", "2026-12-25"],
        }
    )
    assert parsed == {
        "weekly": {
            "mon": [["08:00", "12:00"], ["13:00", "18:00"]],
            "tue": [],
            "wed": [],
            "thu": [],
            "fri": [],
            "sat": [["09:00", "24:00"]],
            "sun": [],
        },
        "closed_dates": ["2026-12-24", "2026-12-25"],
        "pickup": {"lead_minutes": 15, "interval_minutes": 15, "days_ahead": 7},
    }
    assert h.parse_hours(parsed) == parsed  # idempotent


def test_every_bad_field_gets_its_own_message() -> None:
    fields = refusal(
        lambda: h.parse_hours(
            {
                "weekly": {
                    "mon": [["08:00", "12:00"], ["11:30", "14:00"]],
                    "tue": [["25:00", "18:00"]],
                    "wed": [["08:00", "24:01"]],
                    "thu": [["09:00", "09:00"]],
                    "fri": [["24:00", "02:00"]],
                    "sat": [["09:00"]],
                    "sun": "all day",
                },
                "closed_dates": ["2026-02-30"],
                "pickup": {"lead_minutes": -5, "interval_minutes": 7, "days_ahead": 61},
            }
        )
    )
    assert fields == {
        "mon_2": "Overlaps 08:00–12:00.",
        "tue_1": "Enter the opening time as HH:MM, from 00:00 to 23:59.",
        "wed_1": "Enter the closing time as HH:MM, from 00:00 to 24:00.",
        "thu_1": "The closing time is the opening time: enter when you close.",
        "fri_1": "Enter the opening time as HH:MM, from 00:00 to 23:59.",
        "sat_1": 'Give a range as ["HH:MM", "HH:MM"].',
        "sun_1": "Give Sunday as a list of up to 4 [opening, closing] pairs.",
        "closed_dates": "'2026-02-30' is not a date such as 2026-12-24.",
        "lead_minutes": "Enter whole minutes from 0 to 10080 (a week).",
        "interval_minutes": "Choose 5, 10, 15, 20, 30, 45, 60, 90 or 120 minutes.",
        "days_ahead": "Enter a number of days from 0 (today only) to 60.",
    }


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"weekly": []},
        {"weekly": {"monday": []}},
        {"closed_dates": "2026-12-24"},
        {"closed_dates": [20261224]},
        {"pickup": []},
        {"pickup": {"lead_minutes": True}},
        {"pickup": {"interval_minutes": "15.0"}},
    ],
)
def test_wrong_shapes_are_refused_not_crashed_on(data: Any) -> None:
    with pytest.raises(ValidationFailed):
        h.parse_hours(data)


def test_overnight_ranges_are_kept_and_may_not_overlap_the_next_days_ranges() -> None:
    bar = h.hours_from({"weekly": {"fri": [["18:00", "02:00"]], "sat": [["02:00", "04:00"]]}})
    assert bar.weekly[4] == ((18 * 60, 26 * 60),)
    assert h.parse_hours(bar.as_settings())["weekly"]["fri"] == [["18:00", "02:00"]]
    fields = refusal(lambda: h.parse_hours({"weekly": {"fri": [["18:00", "02:00"]], "sat": [["01:00", "04:00"]]}}))
    assert fields == {"sat_1": "Overlaps Friday 18:00–02:00."}
    # Sunday night runs into Monday morning.
    fields = refusal(lambda: h.parse_hours({"weekly": {"mon": [["00:00", "06:00"]], "sun": [["22:00", "01:00"]]}}))
    assert fields == {"sun_1": "Overlaps Monday 00:00–06:00."}


def test_touching_ranges_are_not_an_overlap() -> None:
    h.parse_hours({"weekly": {"mon": [["08:00", "12:00"], ["12:00", "24:00"]], "tue": [["00:00", "02:00"]]}})


def test_the_form_round_trips_and_adds_and_removes_closed_dates() -> None:
    hours = cafe(closed_dates=["2026-12-24", "2026-12-25"])
    form = hours.form_values()
    assert form["mon_open_1"] == "07:30" and form["sat_close_1"] == "16:00" and "sun_open_1" not in form
    assert form["closed_dates"] == "2026-12-24,2026-12-25"
    assert h.parse_hours_form(form) == hours.as_settings()
    changed = h.parse_hours_form({**form, "closed_date_new": "2026-12-31", "remove_closed": "2026-12-24"})
    assert changed["closed_dates"] == ["2026-12-25", "2026-12-31"]
    again = h.parse_hours_form({**form, "closed_date_new": "2026-12-25"})  # already closed: nothing to add
    assert again["closed_dates"] == ["2026-12-24", "2026-12-25"]


def test_form_errors_name_the_row_and_the_field() -> None:
    form = {
        **cafe().form_values(),
        "mon_open_2": "12:00",
        "mon_close_2": "",
        "tue_open_2": "",
        "tue_close_2": "19:00",
        "wed_open_2": "17:00",
        "wed_close_2": "20:00",
        "closed_date_new": "24.12.2026",
        "lead_minutes": "ten",
        "interval_minutes": "",
        "days_ahead": "7",
    }
    assert refusal(lambda: h.parse_hours_form(form)) == {
        "mon_2": "Enter the closing time.",
        "tue_2": "Enter the opening time.",
        "wed_2": "Overlaps 07:30–18:00.",
        "closed_date_new": "Enter a date such as 2026-12-24.",
        "lead_minutes": "Enter whole minutes from 0 to 10080 (a week).",
        "interval_minutes": "Choose 5, 10, 15, 20, 30, 45, 60, 90 or 120 minutes.",
    }


def test_a_store_without_hours_has_none_and_is_always_open() -> None:
    assert h.hours_of({}) is None
    assert h.hours_of({"shipping": {}}) is None
    assert h.is_open(None, datetime(2026, 3, 29, 3, tzinfo=UTC), BERLIN)
    assert h.hours_of({"hours": CAFE}) == cafe()


# ---- open or closed --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ("2026-03-30 07:29", "Closed · opens 07:30"),  # Monday
        ("2026-03-30 07:30", "Open now · closes 18:00"),
        ("2026-03-30 17:59", "Open now · closes 18:00"),
        ("2026-03-30 18:00", "Closed · opens tomorrow 07:30"),
        ("2026-03-28 16:30", "Closed · opens Mon 07:30"),  # Saturday after closing
        ("2026-03-29 12:00", "Closed · opens tomorrow 07:30"),  # Sunday
    ],
)
def test_next_change_in_the_stores_time_zone(wall: str, expected: str) -> None:
    now = at(wall)
    status = h.next_change(cafe(), now, BERLIN)
    assert status.text == expected
    assert status.open == h.is_open(cafe(), now, BERLIN) == expected.startswith("Open")


def test_next_change_after_a_week_of_closed_dates_names_the_date() -> None:
    closed = [(date(2026, 3, 30) + timedelta(days=i)).isoformat() for i in range(8)]
    status = h.next_change(cafe(closed_dates=closed), at("2026-03-29 12:00"), BERLIN)
    assert status.text == "Closed · opens Tue 7 Apr 07:30"
    never = h.hours_from({"weekly": {}})
    assert h.next_change(never, at("2026-03-29 12:00"), BERLIN).text == "Closed"
    always = h.hours_from({"weekly": {day: [["00:00", "24:00"]] for day in h.DAYS}})
    assert h.next_change(always, at("2026-03-29 12:00"), BERLIN).text == "Open now"


def test_overnight_range_is_open_after_midnight_and_a_closed_date_stops_it_at_midnight() -> None:
    bar = h.hours_from({"weekly": {"fri": [["18:00", "02:00"]]}})
    assert h.is_open(bar, at("2026-04-04 01:30"), BERLIN)  # Saturday 01:30, Friday's night
    assert h.next_change(bar, at("2026-04-03 23:00"), BERLIN).text == "Open now · closes 02:00"
    assert not h.is_open(bar, at("2026-04-04 02:00"), BERLIN)
    holiday = h.hours_from({"weekly": {"fri": [["18:00", "02:00"]]}, "closed_dates": ["2026-04-04"]})
    assert h.is_open(holiday, at("2026-04-03 23:59"), BERLIN)
    assert not h.is_open(holiday, at("2026-04-04 00:30"), BERLIN)
    assert h.next_change(holiday, at("2026-04-03 23:00"), BERLIN).text == "Open now · closes 00:00"


def test_a_closed_date_is_closed_all_day() -> None:
    hours = cafe(closed_dates=["2026-03-31"])
    assert not h.is_open(hours, at("2026-03-31 12:00"), BERLIN)
    assert h.next_change(hours, at("2026-03-30 19:00"), BERLIN).text == "Closed · opens Wed 07:30"


# ---- pickup slots ----------------------------------------------------------------------------------------


def test_slots_start_after_the_lead_time_rounded_up_to_the_interval() -> None:
    slots = h.pickup_slots(cafe(), at("2026-03-30 10:02"), BERLIN)  # Monday
    assert [local(s) for s in slots[:3]] == [
        "Mon 2026-03-30 10:30 CEST",
        "Mon 2026-03-30 10:45 CEST",
        "Mon 2026-03-30 11:00 CEST",
    ]
    assert all(s.tzinfo is UTC for s in slots)
    # The last of a day still fits a whole interval before closing.
    assert local(max(s for s in slots if local(s).startswith("Mon 2026-03-30"))) == "Mon 2026-03-30 17:45 CEST"


def test_slots_skip_sundays_closed_dates_and_stop_at_the_days_ahead() -> None:
    hours = cafe(closed_dates=["2026-04-01"], pickup={"days_ahead": 3})
    days = {local(s)[:14] for s in h.pickup_slots(hours, at("2026-03-28 15:31"), BERLIN)}  # Saturday
    # Saturday 16:00 is closing time; Sunday closed; Wednesday 1 April a holiday; Tuesday is 3 days on.
    assert days == {"Mon 2026-03-30", "Tue 2026-03-31"}
    assert h.pickup_slots(cafe(pickup={"days_ahead": 0}), at("2026-03-28 15:50"), BERLIN) == []


def test_lead_time_and_interval_shape_the_grid() -> None:
    hours = cafe(pickup={"lead_minutes": 90, "interval_minutes": 45})
    slots = h.pickup_slots(hours, at("2026-03-30 07:00"), BERLIN)
    assert [local(s)[15:20] for s in slots[:4]] == ["09:00", "09:45", "10:30", "11:15"]  # 45-minute steps from 00:00


def test_dst_spring_forward_in_berlin() -> None:
    """Sunday 29 March 2026: 02:00 CET jumps to 03:00 CEST. A 24-hour store loses the missing hour's slots;
    the café's hours stay on the clock (07:30 is 06:30 UTC on Saturday, 05:30 UTC on Monday)."""
    always = h.hours_from(
        {"weekly": {day: [["00:00", "24:00"]] for day in h.DAYS}, "pickup": {"interval_minutes": 60, "lead_minutes": 0}}
    )
    slots = [s for s in h.pickup_slots(always, at("2026-03-29 00:00"), BERLIN) if local(s)[4:14] == "2026-03-29"]
    assert [local(s)[15:] for s in slots[:4]] == ["00:00 CET", "01:00 CET", "03:00 CEST", "04:00 CEST"]
    assert len(slots) == 23
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(slots))
    week = h.pickup_slots(cafe(), at("2026-03-27 20:00"), BERLIN)
    assert week[0] == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # Saturday 09:00 CET
    monday = next(s for s in week if local(s).startswith("Mon"))
    assert monday == datetime(2026, 3, 30, 5, 30, tzinfo=UTC)  # Monday 07:30 CEST


def test_dst_fall_back_in_berlin_keeps_the_repeated_hours_slots() -> None:
    """Sunday 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:00-03:00 happens twice."""
    night = h.hours_from(
        {"weekly": {"sun": [["00:00", "06:00"]]}, "pickup": {"interval_minutes": 30, "lead_minutes": 0}}
    )
    slots = h.pickup_slots(night, at("2026-10-24 23:00"), BERLIN)
    assert len(slots) == 14  # seven real hours
    assert all(b - a == timedelta(minutes=30) for a, b in itertools.pairwise(slots))
    assert [local(s)[15:] for s in slots[4:8]] == ["02:00 CEST", "02:30 CEST", "02:00 CET", "02:30 CET"]
    group = h.slot_groups(slots, at("2026-10-24 23:00"), BERLIN)[0]
    assert group.label == "Tomorrow"
    assert [text for _, text in group.slots[4:8]] == ["02:00 CEST", "02:30 CEST", "02:00 CET", "02:30 CET"]


def test_slot_groups_name_today_tomorrow_and_later_days() -> None:
    now = at("2026-03-30 17:00")  # Monday
    groups = h.slot_groups(h.pickup_slots(cafe(), now, BERLIN), now, BERLIN)
    assert [g.label for g in groups] == [
        "Today",
        "Tomorrow",
        "Wed 1 Apr",
        "Thu 2 Apr",
        "Fri 3 Apr",
        "Sat 4 Apr",
        "Mon 6 Apr",
    ]
    assert groups[0].slots == (
        ("2026-03-30T15:15:00+00:00", "17:15"),
        ("2026-03-30T15:30:00+00:00", "17:30"),
        ("2026-03-30T15:45:00+00:00", "17:45"),
    )


def test_preview_line() -> None:
    assert h.pickup_preview(cafe(), at("2026-03-30 17:00"), BERLIN, count=4) == (
        "Next pickup times: Mon 17:15, 17:30, 17:45, Tue 07:30, …"
    )
    closed = cafe(closed_dates=[(date(2026, 3, 30) + timedelta(days=i)).isoformat() for i in range(8)])
    assert h.pickup_preview(closed, at("2026-03-30 10:00"), BERLIN) == "There are no pickup times in the next 7 days."


# ---- a shopper's chosen time -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        ("2026-03-30 09:00", "That pickup time has passed. Choose a later time."),
        ("2026-03-30 10:10", "We need 15 minutes to prepare your order. Choose today at 10:15 or later."),
        ("2026-03-30 18:00", "We are not open at 18:00 on Mon 30 Mar. Choose a time when we are open."),
        ("2026-03-30 17:50", "Choose one of the offered pickup times (every 15 minutes)."),
        ("2026-03-31 12:00", "We are closed on Tue 31 Mar. Choose another day."),
        ("2026-04-05 12:00", "We are closed on Sundays. Choose another day."),
        ("2026-04-07 12:00", "Pickup times can be chosen up to 7 days ahead."),
    ],
)
def test_a_refused_time_says_why(chosen: str, message: str) -> None:
    hours = cafe(closed_dates=["2026-03-31"])
    now = at("2026-03-30 10:00")
    fields = refusal(lambda: h.validate_pickup_time(hours, at(chosen), now, BERLIN))
    assert fields == {"pickup_at": message}


def test_closing_soon_says_when_it_closes() -> None:
    hours = cafe(pickup={"interval_minutes": 30})
    fields = refusal(lambda: h.validate_pickup_time(hours, at("2026-03-30 17:45"), at("2026-03-30 10:00"), BERLIN))
    assert fields == {"pickup_at": "Choose one of the offered pickup times (every 30 minutes)."}
    hours = h.hours_from({"weekly": {"mon": [["07:30", "17:50"]]}})
    fields = refusal(lambda: h.validate_pickup_time(hours, at("2026-03-30 17:45"), at("2026-03-30 10:00"), BERLIN))
    assert fields == {"pickup_at": "We close at 17:50 on Mon 30 Mar. Choose an earlier time."}


def test_choose_takes_a_valid_time_any_offset_or_the_first_slot() -> None:
    now = at("2026-03-30 10:00")
    assert h.choose_pickup_time(cafe(), "2026-03-30T10:30:00+02:00", now, BERLIN) == at("2026-03-30 10:30")
    assert h.choose_pickup_time(cafe(), "2026-03-30T08:30:00Z", now, BERLIN) == at("2026-03-30 10:30")
    assert h.choose_pickup_time(cafe(), None, now, BERLIN) == at("2026-03-30 10:15")
    assert h.choose_pickup_time(cafe(), " ", now, BERLIN) == at("2026-03-30 10:15")
    for bad, message in [
        ("tomorrow at ten", "That is not a pickup time. Choose one from the list."),
        ("2026-03-30T10:30:00", "Give the pickup time with its time zone, such as 2026-03-30T07:30:00Z."),
    ]:
        assert refusal(lambda bad=bad: h.choose_pickup_time(cafe(), bad, now, BERLIN)) == {"pickup_at": message}
    closed = cafe(closed_dates=[(date(2026, 3, 30) + timedelta(days=i)).isoformat() for i in range(8)])
    assert refusal(lambda: h.choose_pickup_time(closed, None, now, BERLIN)) == {
        "pickup_at": "Pickup is not available: there are no pickup times in the next 7 days. Choose delivery instead."
    }


def test_format_and_read_back_a_frozen_pickup_time() -> None:
    now = at("2026-03-30 10:00")
    assert h.format_pickup(at("2026-03-30 10:30"), now, BERLIN) == "today at 10:30"
    assert h.format_pickup(at("2026-03-31 07:30"), now, BERLIN) == "tomorrow at 07:30"
    assert h.format_pickup(at("2026-04-02 07:30"), now, BERLIN) == "on Thu 2 Apr at 07:30"
    assert h.format_pickup(at("2027-01-04 07:30"), now, BERLIN) == "on Mon 4 Jan 2027 at 07:30"
    assert h.pickup_at_of({"code": "pickup", "pickup_at": "2026-03-30T08:30:00+00:00"}) == at("2026-03-30 10:30")
    assert h.pickup_at_of({"code": "pickup"}) is None
    assert h.pickup_at_of({"pickup_at": "soon"}) is None
    assert h.pickup_at_of(None) is None


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        h.is_open(cafe(), datetime(2026, 3, 30, 10), BERLIN)


# ---- properties ------------------------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"]


@st.composite
def weekly_hours(draw: st.DrawFn) -> Hours:
    weekly: dict[str, list[list[str]]] = {}
    for day in h.DAYS:
        points = sorted(draw(st.sets(st.integers(0, 96), max_size=4)))
        pairs = list(zip(points[::2], points[1::2], strict=False))
        ranges = [
            [f"{a * 15 // 60:02d}:{a * 15 % 60:02d}", "24:00" if b == 96 else f"{b * 15 // 60:02d}:{b * 15 % 60:02d}"]
            for a, b in pairs
        ]
        if draw(st.booleans()) and ranges and ranges[-1][1] != "24:00" and draw(st.integers(0, 9)) == 0:
            ranges[-1] = [ranges[-1][0], "02:00"]  # now and then an overnight range
        weekly[day] = ranges
    closed = draw(st.lists(st.dates(date(2026, 1, 1), date(2026, 12, 31)).map(date.isoformat), max_size=6))
    pickup = {
        "lead_minutes": draw(st.sampled_from([0, 5, 15, 60, 24 * 60])),
        "interval_minutes": draw(st.sampled_from(h.INTERVALS)),
        "days_ahead": draw(st.integers(0, 10)),
    }
    try:
        return h.hours_from({"weekly": weekly, "closed_dates": closed, "pickup": pickup})
    except ValidationFailed:
        assume(False)
        raise


moments = st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(weekly_hours(), moments, st.sampled_from(ZONES))
def test_every_slot_is_a_time_the_store_is_open_for_a_whole_interval(hours: Hours, now: datetime, tz: str) -> None:
    zone = ZoneInfo(tz)
    slots = h.pickup_slots(hours, now, tz)
    step = timedelta(minutes=hours.interval_minutes)
    today = now.astimezone(zone).date()
    assert slots == sorted(set(slots))
    for slot in slots:
        wall = slot.astimezone(zone)
        assert slot.tzinfo is UTC
        assert slot >= now + timedelta(minutes=hours.lead_minutes)
        assert (wall.hour * 60 + wall.minute) % hours.interval_minutes == 0
        assert today <= wall.date() <= today + timedelta(days=hours.days_ahead)
        assert wall.date() not in hours.closed_dates
        assert h.is_open(hours, slot, tz)
        assert h.is_open(hours, slot + step - timedelta(minutes=1), tz)
    for slot in slots[:3] + slots[-2:]:
        assert h.validate_pickup_time(hours, slot, now, tz) == slot
    if slots:
        assert h.choose_pickup_time(hours, None, now, tz) == slots[0]


@settings(max_examples=150, deadline=None)
@given(weekly_hours(), moments, st.sampled_from(ZONES), st.integers(0, 8 * 24 * 4))
def test_a_time_is_accepted_exactly_when_it_is_a_slot(hours: Hours, now: datetime, tz: str, quarter: int) -> None:
    chosen = now.replace(second=0, microsecond=0) + timedelta(minutes=15 * quarter)
    slots = set(h.pickup_slots(hours, now, tz))
    try:
        accepted = h.validate_pickup_time(hours, chosen, now, tz) == chosen
    except ValidationFailed as refused:
        accepted = False
        assert set(refused.fields) == {"pickup_at"} and refused.fields["pickup_at"]
    assert accepted == (chosen in slots)


@settings(max_examples=150, deadline=None)
@given(weekly_hours(), moments, st.sampled_from(ZONES))
def test_the_next_change_is_where_open_flips(hours: Hours, now: datetime, tz: str) -> None:
    status = h.next_change(hours, now, tz)
    assert status.open == h.is_open(hours, now, tz)
    if status.change_at is not None:
        assert status.change_at > now
        assert h.is_open(hours, status.change_at, tz) != status.open
        assert h.is_open(hours, status.change_at - timedelta(minutes=1), tz) == status.open


@settings(max_examples=100, deadline=None)
@given(weekly_hours())
def test_stored_and_form_shapes_round_trip(hours: Hours) -> None:
    stored = hours.as_settings()
    assert h.parse_hours(stored) == stored
    assert h.hours_from(stored) == hours
    assert h.parse_hours_form(hours.form_values()) == stored


@settings(max_examples=60, deadline=None)
@given(
    weekly_hours(),
    moments,
    st.sampled_from(ZONES),
    st.lists(st.integers(-3600, 4 * 3600), min_size=1, max_size=60),
)
def test_the_kept_first_slot_is_always_the_first_slot_walked_afresh(
    hours: Hours, start: datetime, tz: str, steps: list[int]
) -> None:
    """first_pickup_slot keeps its answer per store's hours until the slot's preparation time starts: asked at
    moments going forwards and back, it answers what walking the openings from scratch answers."""
    h._first_slots.clear()
    now = start
    for step in steps:  # mostly forwards, now and then back: a moment before the kept one must not reuse it
        now += timedelta(seconds=step)
        fresh = next(iter(h.pickup_slots(hours, now, tz)), None)
        assert h.first_pickup_slot(hours, now, tz) == fresh
