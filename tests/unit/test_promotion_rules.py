"""The promotion engine's rules: each kind, each condition and the reason a shopper reads when it is not met,
stacking by priority, and the validity window on the store's clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from app.promotions.engine import Applied, Offer, PricedLine, Shopper, apply_promotions, window

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BEANS = PricedLine("0", 2, 1190, product_id="beans", category_id="coffee")  # 23.80
MUG = PricedLine("1", 1, 1400, product_id="mug", category_id="ware")  # 14.00
CROISSANT = PricedLine("2", 3, 240, product_id="croissant", category_id="bakery")  # 7.20
CART = [BEANS, MUG, CROISSANT]  # 45.00


def ten_percent(**changes: object) -> Offer:
    return replace(Offer(id="ten", name="Ten off", kind="percentage", code="TEN", percent_bps=1000), **changes)  # type: ignore[arg-type]


def price(
    offers: list[Offer],
    codes: tuple[str, ...] = (),
    *,
    lines: list[PricedLine] | None = None,
    shopper: Shopper | None = None,
    shipping: int | None = 490,
    now: datetime = NOW,
    timezone: str = "Europe/Berlin",
    currency: str = "EUR",
) -> Applied:
    return apply_promotions(
        CART if lines is None else lines,
        offers,
        currency=currency,
        now=now,
        timezone=timezone,
        codes=codes,
        shopper=shopper,
        shipping_minor=shipping,
    )


# ---- kinds ---------------------------------------------------------------------------------------------------


def test_percentage_is_split_across_lines_in_proportion_and_adds_up() -> None:
    applied = price([ten_percent()], ("ten",))  # codes are case-insensitive
    assert applied.goods_minor == 450
    assert [applied.line_discount(k) for k in "012"] == [238, 140, 72]
    assert applied.line_labels("0") == [{"label": "TEN", "amount_minor": 238}]
    assert applied.rejected == {}


def test_fixed_amount_never_takes_more_than_the_lines_cost() -> None:
    fixed = Offer(id="f", name="Five off", kind="fixed", code="FIVE", amount_minor=500)
    assert price([fixed], ("FIVE",)).goods_minor == 500
    big = replace(fixed, amount_minor=10_000)
    applied = price([big], ("FIVE",))
    assert applied.goods_minor == 4500 and [applied.line_discount(k) for k in "012"] == [2380, 1400, 720]


def test_max_discount_caps_a_percentage() -> None:
    applied = price([ten_percent(percent_bps=5000, max_discount_minor=1000)], ("TEN",))
    assert applied.goods_minor == 1000
    assert sum(applied.line_discount(k) for k in "012") == 1000


def test_free_shipping_takes_off_the_delivery_charge_and_never_the_goods() -> None:
    free = Offer(id="s", name="Free delivery", kind="free_shipping", code="SHIPFREE")
    applied = price([free], ("SHIPFREE",), shipping=490)
    assert (applied.goods_minor, applied.shipping_minor) == (0, 490)
    # In a cart the delivery charge is not known yet: the code is accepted and applies at checkout.
    pending = price([free], ("SHIPFREE",), shipping=None)
    assert pending.rejected == {} and pending.codes == ["SHIPFREE"] and pending.total_minor == 0


def test_buy_two_get_one_free_gives_the_cheapest_unit_of_each_three() -> None:
    offer = Offer(id="b", name="3 for 2", kind="buy_x_get_y", code="THREE", buy_quantity=2, get_quantity=1,
                  percent_bps=10_000)  # fmt: skip
    applied = price([offer], ("THREE",))  # units: 1400, 1190, 1190, 240, 240, 240 → two groups: two croissants free
    assert applied.goods_minor == 480 and applied.line_discount("2") == 480
    half = price([replace(offer, percent_bps=5000)], ("THREE",))
    assert half.goods_minor == 240


def test_products_and_categories_limit_the_lines_a_promotion_touches() -> None:
    coffee = ten_percent(applies_to="categories", category_ids=frozenset({"coffee"}))
    applied = price([coffee], ("TEN",))
    assert applied.goods_minor == 238 and applied.line_discount("1") == 0
    mugs = ten_percent(applies_to="products", product_ids=frozenset({"mug"}))
    assert price([mugs], ("TEN",)).line_discount("1") == 140


# ---- every reason a code is refused ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "shopper", "lines", "reason"),
    [
        (ten_percent(status="paused"), None, None, "This code is not active at the moment."),
        (ten_percent(starts_at=datetime(2026, 12, 6, 23, 0, tzinfo=UTC)), None, None, "This code starts on 7 Dec."),
        (ten_percent(ends_at=datetime(2026, 12, 3, 23, 0, tzinfo=UTC)), None, None, "This code expired on 3 Dec."),
        (ten_percent(usage_limit=5, uses_claimed=5), None, None, "This code has been used up."),
        (ten_percent(customers_only=True), None, None, "Sign in to your account to use this code."),
        (ten_percent(per_customer_limit=1), Shopper(uses={"ten": 1}), None, "You have already used this code."),
        (
            ten_percent(per_customer_limit=3),
            Shopper(signed_in=True, uses={"ten": 3}),
            None,
            "You have already used this code 3 times, as often as it allows.",
        ),
        (ten_percent(first_order_only=True), Shopper(first_order=False), None, "This code is for a first order only."),
        (ten_percent(min_subtotal_minor=5000), None, None, "Spend €5.00 more to use this code."),
        (
            ten_percent(applies_to="products", product_ids=frozenset({"tea"})),
            None,
            None,
            "None of the items in your cart is part of this offer.",
        ),
        (
            Offer(id="b", name="3 for 2", kind="buy_x_get_y", code="TEN", buy_quantity=2, get_quantity=1,
                  percent_bps=10_000),
            None,
            [MUG],
            "Add 2 more items from this offer to use this code.",
        ),
        (
            Offer(id="s", name="Ship", kind="free_shipping", code="TEN"),
            None,
            None,
            "This order has no delivery charge to take off.",
        ),
        (ten_percent(deleted=True), None, None, "We don't know the code TEN. Check the spelling."),
    ],
)  # fmt: skip
def test_each_refusal_says_why_and_changes_nothing(
    offer: Offer, shopper: Shopper | None, lines: list[PricedLine] | None, reason: str
) -> None:
    shipping = 0 if offer.kind == "free_shipping" else 490
    applied = price([offer], ("ten",), shopper=shopper, lines=lines, shipping=shipping)
    assert applied.rejected == {"TEN": reason}
    assert applied.discounts == () and applied.total_minor == 0


def test_an_unknown_code_is_refused_in_words() -> None:
    assert price([], ("nope",)).rejected == {"NOPE": "We don't know the code NOPE. Check the spelling."}


def test_conditions_met_apply_and_a_guest_cart_is_not_refused_a_first_order_code() -> None:
    offer = ten_percent(first_order_only=True, customers_only=True, per_customer_limit=2, min_subtotal_minor=4500)
    assert price([offer], ("TEN",), shopper=Shopper(signed_in=True, first_order=True, uses={"ten": 1})).goods_minor
    assert price([replace(offer, customers_only=False)], ("TEN",), shopper=Shopper()).goods_minor == 450


def test_minimum_spend_in_a_currency_without_decimals_and_one_with_three() -> None:
    yen = [PricedLine("0", 1, 1200)]
    assert price([ten_percent(min_subtotal_minor=2000)], ("TEN",), lines=yen, currency="JPY").rejected == {
        "TEN": "Spend ¥800 more to use this code."
    }
    dinar = [PricedLine("0", 1, 1250)]
    assert price([ten_percent(min_subtotal_minor=2000)], ("TEN",), lines=dinar, currency="BHD").rejected == {
        "TEN": "Spend BHD0.750 more to use this code."
    }


def test_an_automatic_promotion_that_does_not_qualify_is_left_out_silently() -> None:
    auto = Offer(id="a", name="Big spender", kind="percentage", percent_bps=500, min_subtotal_minor=10_000)
    applied = price([auto])
    assert applied.discounts == () and applied.rejected == {}
    assert price([replace(auto, min_subtotal_minor=0)]).goods_minor == 225


# ---- stacking ----------------------------------------------------------------------------------------------------


def test_an_exclusive_promotion_applies_alone_and_the_code_it_beats_says_so() -> None:
    auto = Offer(id="a", name="Winter sale", kind="percentage", percent_bps=2000, priority=10)
    applied = price([auto, ten_percent(combinable=True)], ("TEN",))
    assert [d.promotion_id for d in applied.discounts] == ["a"]
    assert applied.rejected == {"TEN": "This code can't be combined with Winter sale."}


def test_combinable_promotions_add_up_in_priority_order_each_on_what_is_left() -> None:
    auto = Offer(id="a", name="Winter sale", kind="percentage", percent_bps=2000, priority=1, combinable=True)
    code = ten_percent(combinable=True, priority=5)
    applied = price([auto, code], ("TEN",))
    assert [d.label for d in applied.discounts] == ["TEN", "Winter sale"]  # higher priority first
    assert applied.discounts[0].goods_minor == 450  # 10 % of 45.00
    assert applied.discounts[1].goods_minor == 810  # then 20 % of the 40.50 left
    assert applied.goods_minor == 1260


def test_an_exclusive_code_with_lower_priority_than_a_combinable_one_is_left_out() -> None:
    auto = Offer(id="a", name="Winter sale", kind="percentage", percent_bps=2000, priority=5, combinable=True)
    applied = price([auto, ten_percent(combinable=False, priority=1)], ("TEN",))
    assert [d.label for d in applied.discounts] == ["Winter sale"]
    assert applied.rejected == {"TEN": "This code can't be combined with Winter sale."}


def test_equal_priority_puts_automatic_promotions_before_codes_then_the_oldest() -> None:
    older = datetime(2026, 1, 1, tzinfo=UTC)
    auto = Offer(id="a", name="Auto", kind="fixed", amount_minor=100, combinable=True, created_at=NOW)
    first = ten_percent(id="c1", code="ONE", combinable=True, created_at=older)
    second = ten_percent(id="c2", code="TWO", combinable=True, created_at=NOW)
    applied = price([second, first, auto], ("TWO", "ONE"))
    assert [d.label for d in applied.discounts] == ["Auto", "ONE", "TWO"]


def test_free_shipping_stacks_with_a_goods_discount() -> None:
    ship = Offer(id="s", name="Free delivery", kind="free_shipping", combinable=True)
    applied = price([ship, ten_percent(combinable=True)], ("TEN",), shipping=490)
    assert (applied.goods_minor, applied.shipping_minor) == (450, 490)


# ---- the validity window on the store's clock -------------------------------------------------------------------


def test_whole_days_in_berlin_start_and_end_at_its_midnights() -> None:
    start, end = window(date(2026, 12, 1), date(2026, 12, 3), "Europe/Berlin")
    assert start == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
    offer = ten_percent(starts_at=start, ends_at=end)
    last_moment = end - timedelta(microseconds=1)
    assert price([offer], ("TEN",), now=last_moment).goods_minor == 450
    assert price([offer], ("TEN",), now=end).rejected == {"TEN": "This code expired on 3 Dec."}
    assert price([offer], ("TEN",), now=start).goods_minor == 450
    before = price([offer], ("TEN",), now=start - timedelta(microseconds=1))
    assert before.rejected == {"TEN": "This code starts on 1 Dec."}


def test_the_same_moment_is_another_day_in_auckland() -> None:
    # 3 Dec 12:00 UTC is already 4 Dec (01:00) in Auckland: a code whose last day there was 3 Dec has expired.
    _, end = window(None, date(2026, 12, 3), "Pacific/Auckland")
    assert end == datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    noon_utc = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert price([ten_percent(ends_at=end)], ("TEN",), now=noon_utc, timezone="Pacific/Auckland").rejected == {
        "TEN": "This code expired on 3 Dec."
    }
    # ... while in New York, where it is still 3 Dec at 07:00, a code with the same last day still applies.
    _, new_york_end = window(None, date(2026, 12, 3), "America/New_York")
    assert price([ten_percent(ends_at=new_york_end)], ("TEN",), now=noon_utc, timezone="America/New_York").goods_minor


def test_a_last_day_on_the_spring_clock_change_lasts_until_that_nights_midnight() -> None:
    # Berlin moves to summer time on 28 Mar 2027 (02:00 → 03:00): the day is 23 hours long.
    start, end = window(date(2027, 3, 28), date(2027, 3, 28), "Europe/Berlin")
    assert start == datetime(2027, 3, 27, 23, 0, tzinfo=UTC)
    assert end == datetime(2027, 3, 28, 22, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=23)


def test_an_expiry_in_another_year_names_the_year() -> None:
    offer = ten_percent(ends_at=datetime(2025, 12, 3, 23, 0, tzinfo=UTC))
    assert price([offer], ("TEN",)).rejected == {"TEN": "This code expired on 3 Dec 2025."}
