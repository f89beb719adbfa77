"""Loyalty arithmetic: earning with tier multipliers, tiers, proportional reversal, expiry, redemption, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import ValidationFailed
from app.stored_value.loyalty.form import form_values, program_from_form
from app.stored_value.loyalty.program import (
    Program,
    Tier,
    earn_points,
    eligible_minor,
    expiring,
    program_of,
    reversal_target,
    validate_program,
)

TIERS = (Tier("Member", 0, 10_000), Tier("Silver", 500, 12_500), Tier("Gold", 2_000, 15_000))
PROGRAM = Program(enabled=True, points_per_unit=1, tiers=TIERS, redeem_points=100, redeem_value_minor=100)
NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_points_per_whole_unit_times_the_tier_multiplier_rounded_down() -> None:
    assert earn_points(4_999, "EUR", 1, 10_000) == 49  # €49.99 → 49 points
    assert earn_points(4_999, "EUR", 1, 15_000) == 74  # ×1.5 → 74.985 → 74
    assert earn_points(4_999, "EUR", 2, 12_500) == 124
    assert earn_points(1_500, "JPY", 1, 10_000) == 1_500  # no minor digits
    assert earn_points(1_250, "BHD", 1, 10_000) == 1  # three minor digits: 1.250 BHD
    assert earn_points(0, "EUR", 5, 10_000) == 0
    assert earn_points(-100, "EUR", 5, 10_000) == 0


def test_what_earns_is_the_lines_after_their_discounts() -> None:
    assert eligible_minor([(2_000, 500), (1_000, 0)]) == 2_500
    assert eligible_minor([(1_000, 1_000)]) == 0
    assert eligible_minor([]) == 0


def test_tiers_by_threshold() -> None:
    assert PROGRAM.tier_for(0).name == "Member"
    assert PROGRAM.tier_for(499).name == "Member"
    assert PROGRAM.tier_for(500).name == "Silver"
    assert PROGRAM.tier_for(1_999).name == "Silver"
    assert PROGRAM.tier_for(2_000).name == "Gold"
    assert PROGRAM.tier_for(10**9).name == "Gold"
    assert PROGRAM.next_tier(600) == TIERS[2]
    assert PROGRAM.next_tier(2_000) is None
    assert PROGRAM.tier_named("Gold") == TIERS[2]
    assert PROGRAM.tier_named("Platinum (removed)") == TIERS[0]  # a member of a removed tier falls to the first


def test_a_refund_takes_back_points_in_proportion() -> None:
    assert reversal_target(100, 0, 10_000) == 0
    assert reversal_target(100, 2_500, 10_000) == 25
    assert reversal_target(100, 3_333, 10_000) == 33  # rounded down
    assert reversal_target(100, 10_000, 10_000) == 100  # a full refund takes back all
    assert reversal_target(100, 12_000, 10_000) == 100  # never more than was earned
    assert reversal_target(0, 5_000, 10_000) == 0


@given(
    points=st.integers(0, 10_000),
    total=st.integers(1, 1_000_000),
    refunds=st.lists(st.integers(1, 200_000), max_size=8),
)
def test_repeated_partial_refunds_never_take_back_more_than_earned(points: int, total: int, refunds: list[int]) -> None:
    """Counted on the cumulative refunds, each step's reversal is never negative and the sum never exceeds the
    points, reaching all of them exactly when everything was refunded."""
    refunded = taken = 0
    for amount in refunds:
        refunded += amount
        step = reversal_target(points, refunded, total) - taken
        assert step >= 0
        taken += step
    assert taken <= points
    if refunded >= total:
        assert taken == points


def test_points_expire_after_their_days_oldest_used_first() -> None:
    lots = [(NOW - timedelta(days=400), 100), (NOW - timedelta(days=200), 50), (NOW - timedelta(days=10), 30)]
    assert expiring(lots, 0, NOW, 365) == 100  # the first lot is over a year old
    assert expiring(lots, 40, NOW, 365) == 60  # 40 were spent: from the oldest lot
    assert expiring(lots, 150, NOW, 365) == 0  # the old lot was spent entirely
    assert expiring(lots, 0, NOW, 180) == 150
    assert expiring(lots, 0, NOW, None) == 0  # never expire
    # After an expiry entry, the same lots expire nothing more (the expired points count as debited).
    assert expiring(lots, 100, NOW, 365) == 0


def test_redemption_minimum_balance_and_what_is_due() -> None:
    program = Program(enabled=True, redeem_points=100, redeem_value_minor=100, min_redeem_points=500)
    r = program.redemption(800, spendable=1_000, due_minor=5_000)
    assert (r.points, r.amount_minor) == (800, 800)
    with pytest.raises(ValidationFailed) as below_minimum:
        program.redemption(499, spendable=1_000, due_minor=5_000)
    assert below_minimum.value.fields == {"points": "At least 500 points."}
    with pytest.raises(ValidationFailed) as too_many:
        program.redemption(1_200, spendable=1_000, due_minor=5_000)
    assert "1000 points available" in too_many.value.fields["points"]
    # Asking for more than is due uses only the points that pay it.
    r = program.redemption(1_000, spendable=1_000, due_minor=650)
    assert (r.points, r.amount_minor) == (650, 650)
    with pytest.raises(ValidationFailed):  # €3 due is worth 300 points, under the minimum
        program.redemption(600, spendable=1_000, due_minor=300)
    with pytest.raises(ValidationFailed):
        Program(enabled=False).redemption(600, spendable=1_000, due_minor=5_000)


def test_redemption_rate_rounds_in_the_stores_favour() -> None:
    program = Program(enabled=True, redeem_points=3, redeem_value_minor=1, min_redeem_points=1)
    assert program.value_of(10) == 3  # 10 points at 3 per cent: 3.33 → 3
    assert program.points_to_cover(3) == 9
    r = program.redemption(100, spendable=100, due_minor=7)
    assert r.points == 21 and r.amount_minor == 7


def test_validation_names_every_wrong_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_program(
            {
                "enabled": "yes",
                "points_per_unit": 0,
                "expiry_days": -1,
                "redeem_points": 1.5,
                "redeem_value_minor": 100,
                "min_redeem_points": 10,
                "tiers": [
                    {"name": "Member", "threshold": 10, "multiplier_bps": 10_000},
                    {"name": "member", "threshold": 5, "multiplier_bps": 1_000_000},
                ],
                "colour": "blue",
            }
        )
    assert set(caught.value.fields) == {
        "enabled",
        "points_per_unit",
        "expiry_days",
        "redeem_points",
        "tiers.0.threshold",
        "tiers.1.threshold",
        "tiers.1.multiplier_bps",
        "tiers.1.name",
        "colour",
    }
    with pytest.raises(ValidationFailed) as no_tiers:
        validate_program({**PROGRAM.as_dict(), "tiers": []})
    assert "tiers" in no_tiers.value.fields


def test_a_valid_program_round_trips() -> None:
    assert validate_program(PROGRAM.as_dict()) == PROGRAM
    assert program_of(PROGRAM.as_dict()) == PROGRAM
    assert program_of(None) == Program()
    assert validate_program({**PROGRAM.as_dict(), "expiry_days": None}).expiry_days is None


def test_the_form_reads_and_refuses_in_its_own_field_names() -> None:
    values = form_values(PROGRAM, "EUR")
    assert values["redeem_value"] == "1.00" and values["tier-2-multiplier"] == "1.50"
    assert program_from_form(values, "EUR") == PROGRAM
    added = {**values, "tier-3-name": "Platinum", "tier-3-threshold": "5000", "tier-3-multiplier": "2"}
    assert program_from_form(added, "EUR").tiers[-1] == Tier("Platinum", 5_000, 20_000)
    removed = {**values, "tier-1-remove": "on"}
    assert [t.name for t in program_from_form(removed, "EUR").tiers] == ["Member", "Gold"]
    bad = {
        **values,
        "points_per_unit": "lots",
        "redeem_value": "-1",
        "tier-2-threshold": "100",
        "tier-1-multiplier": "x",
    }
    with pytest.raises(ValidationFailed) as caught:
        program_from_form(bad, "EUR")
    assert caught.value.fields == {
        "points_per_unit": "A whole number.",
        "redeem_value": "An amount in EUR above 0, such as 1.00.",
        "tier-1-multiplier": "A multiplier such as 1 or 1.5.",
        "tier-2-threshold": "More than the tier above (500).",
    }
