"""Property tests of the promotion engine's money (invariant 1): every discount's parts add up to it exactly, for
any lines, amounts and offers, in currencies with 0, 2 and 3 decimals; no line, shipping or total goes below zero;
free shipping never takes anything off the goods; tax is on what is paid."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.money import Money, minor_digits
from app.promotions.engine import BPS, Offer, PricedLine, apply_promotions
from app.tax.providers import BuiltinTax, TaxableLine

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
CURRENCIES = ("JPY", "EUR", "BHD")  # 0, 2 and 3 decimals

lines_strategy = st.lists(
    st.builds(
        lambda i, q, p, product: PricedLine(str(i), q, p, product_id=product),
        st.integers(0, 10**6),
        st.integers(1, 50),
        st.integers(0, 2_000_000),
        st.sampled_from(["p1", "p2", "p3"]),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda line: line.key,
)


@st.composite
def offers(draw: st.DrawFn, n: int) -> Offer:
    kind = draw(st.sampled_from(["percentage", "fixed", "free_shipping", "buy_x_get_y"]))
    return Offer(
        id=f"o{n}",
        name=f"Offer {n}",
        kind=kind,
        percent_bps=draw(st.integers(1, BPS)),
        amount_minor=draw(st.integers(1, 5_000_000)),
        buy_quantity=draw(st.integers(1, 4)),
        get_quantity=draw(st.integers(1, 3)),
        applies_to=draw(st.sampled_from(["all", "products"])),
        product_ids=frozenset(draw(st.sets(st.sampled_from(["p1", "p2", "p3"]), min_size=1))),
        max_discount_minor=draw(st.none() | st.integers(1, 3_000_000)),
        combinable=draw(st.booleans()),
        priority=draw(st.integers(-3, 3)),
    )


@st.composite
def offer_lists(draw: st.DrawFn) -> list[Offer]:
    return [draw(offers(n)) for n in range(draw(st.integers(1, 4)))]


@settings(max_examples=300, deadline=None)
@given(
    lines=lines_strategy,
    offered=offer_lists(),
    currency=st.sampled_from(CURRENCIES),
    shipping=st.integers(0, 100_000),
)
def test_every_discount_splits_exactly_and_nothing_goes_below_zero(
    lines: list[PricedLine], offered: list[Offer], currency: str, shipping: int
) -> None:
    applied = apply_promotions(lines, offered, currency=currency, now=NOW, timezone="UTC", shipping_minor=shipping)
    subtotal = sum(line.total_minor for line in lines)
    for discount in applied.discounts:
        assert sum(discount.lines.values()) == discount.goods_minor
        assert discount.amount_minor == discount.goods_minor + discount.shipping_minor
        assert all(part > 0 for part in discount.lines.values())
        if discount.kind == "free_shipping":
            assert discount.lines == {}  # free shipping never discounts goods
        else:
            assert discount.shipping_minor == 0
    for line in lines:
        assert 0 <= applied.line_discount(line.key) <= line.total_minor
    assert sum(applied.line_discount(line.key) for line in lines) == applied.goods_minor
    assert 0 <= applied.shipping_minor <= shipping
    total = subtotal - applied.total_minor + shipping
    assert total >= 0
    assert applied.goods_minor <= subtotal
    # Amounts the engine speaks of are whole minor units of the currency (formatting them cannot fail).
    assert Money(applied.total_minor, currency).format()
    assert minor_digits(currency) in (0, 2, 3)


@settings(max_examples=200, deadline=None)
@given(lines=lines_strategy, bps=st.integers(1, BPS), currency=st.sampled_from(CURRENCIES))
def test_a_percentage_is_the_rounded_share_of_the_subtotal_split_by_line(
    lines: list[PricedLine], bps: int, currency: str
) -> None:
    offer = Offer(id="p", name="Percent", kind="percentage", percent_bps=bps)
    applied = apply_promotions(lines, [offer], currency=currency, now=NOW, timezone="UTC")
    subtotal = sum(line.total_minor for line in lines)
    expected = (2 * subtotal * bps + BPS) // (2 * BPS)
    assert applied.goods_minor == expected
    for line in lines:  # each line's part is within one unit of its exact share
        exact = line.total_minor * expected / subtotal if subtotal else 0
        assert exact - 1 < applied.line_discount(line.key) < exact + 1


@settings(max_examples=200, deadline=None)
@given(lines=lines_strategy, shipping=st.integers(0, 50_000), cap=st.none() | st.integers(1, 50_000))
def test_free_shipping_takes_off_the_delivery_charge_only(
    lines: list[PricedLine], shipping: int, cap: int | None
) -> None:
    offer = Offer(id="s", name="Free delivery", kind="free_shipping", max_discount_minor=cap)
    applied = apply_promotions(lines, [offer], currency="EUR", now=NOW, timezone="UTC", shipping_minor=shipping)
    assert applied.goods_minor == 0
    assert applied.shipping_minor == (min(shipping, cap) if cap is not None else shipping)


@settings(max_examples=200, deadline=None)
@given(
    lines=lines_strategy,
    offered=offer_lists(),
    currency=st.sampled_from(CURRENCIES),
    shipping=st.integers(0, 100_000),
    inclusive=st.booleans(),
)
def test_tax_is_on_what_is_paid_and_the_total_is_never_negative(
    lines: list[PricedLine], offered: list[Offer], currency: str, shipping: int, inclusive: bool
) -> None:
    """As the quote does it (app/checkout/quotes.py): each line taxed after its discounts, shipping after free
    shipping; the total is the subtotal less the discounts plus shipping (plus tax when prices exclude it)."""
    applied = apply_promotions(lines, offered, currency=currency, now=NOW, timezone="UTC", shipping_minor=shipping)
    taxable = [
        TaxableLine(line.key, Money(line.total_minor - applied.line_discount(line.key), currency), "standard")
        for line in lines
    ]
    if shipping - applied.shipping_minor:
        taxable.append(TaxableLine("shipping", Money(shipping - applied.shipping_minor, currency), "standard"))
    tax = BuiltinTax.from_settings({}, currency).quote(taxable, country="DE", prices_include_tax=inclusive)
    assert all(t.tax.amount_minor >= 0 for t in tax.lines)
    assert sum(t.tax.amount_minor for t in tax.lines) == tax.total_tax.amount_minor
    subtotal = sum(line.total_minor for line in lines)
    total = subtotal - applied.total_minor + shipping + (0 if inclusive else tax.total_tax.amount_minor)
    assert total >= 0
    if inclusive:  # the tax is part of what is paid, never more than it
        assert tax.total_tax.amount_minor <= subtotal - applied.total_minor + shipping
