from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.money import Money, allocate, minor_digits

weights = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30).filter(lambda w: sum(w) > 0)


@given(total=st.integers(min_value=-(10**12), max_value=10**12), weights=weights)
def test_allocation_always_sums_exactly(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)


@given(total=st.integers(min_value=0, max_value=10**12), weights=weights)
def test_each_part_is_within_one_unit_of_its_exact_share(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = total * weight / weight_sum
        assert exact - 1 < part < exact + 1
        if weight == 0:
            assert part == 0


@given(total=st.integers(min_value=0, max_value=10**9), n=st.integers(min_value=1, max_value=50))
def test_equal_weights_differ_by_at_most_one_and_earlier_parts_get_the_extra(total: int, n: int) -> None:
    parts = allocate(total, [1] * n)
    assert max(parts) - min(parts) <= 1
    assert parts == sorted(parts, reverse=True)


def test_known_split() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]
    assert allocate(5, [3, 7]) == [2, 3]  # equal remainders: the earlier part gets the unit
    assert allocate(10, [1, 2, 7]) == [1, 2, 7]
    assert Money(1000, "EUR").allocate([1, 2]) == [Money(333, "EUR"), Money(667, "EUR")]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_bad_weights_are_refused(weights: list[int]) -> None:
    with pytest.raises(ValueError):
        allocate(10, weights)


def test_money_refuses_floats_bad_currencies_and_mixing() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "EUR")
    with pytest.raises(ValueError):
        Money(1, "eur")
    with pytest.raises(ValueError):
        Money(1, "EUR") + Money(1, "USD")


def test_arithmetic_and_formatting() -> None:
    assert Money(250, "EUR") + Money(50, "EUR") == Money(300, "EUR")
    assert Money(250, "EUR").times(3) == Money(750, "EUR")
    assert Money(1999, "EUR").format("de_DE") == "19,99\xa0€"
    assert Money(1500, "JPY").format("en_US") == "¥1,500"
    assert minor_digits("JPY") == 0 and minor_digits("BHD") == 3
    assert str(Money(-1234, "USD")) == "-$12.34"
