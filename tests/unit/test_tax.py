from __future__ import annotations

import copy
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.money import Money
from app.tax import (
    DEFAULT_TAX_RULES,
    BuiltinTax,
    TaxableLine,
    TaxLine,
    TaxProvider,
    TaxQuote,
    round_half_up,
)

EUR = "EUR"


def _rules() -> dict[str, Any]:
    return {
        "default_class": "standard",
        "jurisdictions": [
            {"country": "DE", "region": "", "name": "MwSt", "rates": {"standard": 1900, "reduced": 700, "zero": 0}},
            {"country": "US", "region": "", "name": "Federal", "rates": {"standard": 0}},
            {"country": "US", "region": "NY", "name": "Sales tax", "rates": {"standard": 888}},
            {"country": "CA", "region": "ON", "name": "HST", "rates": {"standard": 1300}},
        ],
    }


def _line(amount: int, tax_class: str = "standard", key: str = "l1") -> TaxableLine:
    return TaxableLine(key=key, amount=Money(amount, EUR), tax_class=tax_class)


def _one(amount: int, tax_class: str, *, inclusive: bool, country: str = "DE", region: str = "") -> TaxLine:
    provider: TaxProvider = BuiltinTax(_rules(), EUR)
    quote = provider.quote([_line(amount, tax_class)], country=country, region=region, prices_include_tax=inclusive)
    assert len(quote.lines) == 1
    return quote.lines[0]


# --- round_half_up -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (5, 2, 3),  # 2.5 -> 3
        (-5, 2, -3),  # -2.5 -> -3 (symmetric)
        (7, 2, 4),
        (4, 3, 1),  # 1.33 -> 1
        (5, 3, 2),  # 1.67 -> 2
        (-4, 3, -1),
        (-5, 3, -2),
        (0, 7, 0),
        (5, -2, -3),
        (-5, -2, 3),
        (699_300, 10_000, 70),  # 69.93
        (11_900_000, 11_900, 1000),
    ],
)
def test_round_half_up(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_up(numerator, denominator) == expected


def test_round_half_up_rejects_zero_denominator() -> None:
    with pytest.raises(ZeroDivisionError):
        round_half_up(1, 0)


@given(numerator=st.integers(-(10**15), 10**15), denominator=st.integers(1, 10**6))
def test_round_half_up_matches_decimal_half_up(numerator: int, denominator: int) -> None:
    exact = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    # Decimal division is exact enough at these sizes (28 significant digits).
    assert round_half_up(numerator, denominator) == int(exact)
    assert round_half_up(-numerator, denominator) == -round_half_up(numerator, denominator)


# --- per-line arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "tax_class", "inclusive", "taxable", "tax"),
    [
        (1190, "standard", True, 1000, 190),  # 1190 incl. 19 %
        (999, "reduced", False, 999, 70),  # 69.93 -> 70
        (1000, "standard", False, 1000, 190),
        (107, "reduced", True, 100, 7),
        (999, "reduced", True, 934, 65),  # 999 / 1.07 = 933.64 -> 934 net
        (1, "standard", True, 1, 0),  # 1 / 1.19 = 0.84 -> 1 net, no tax
        (250, "reduced", False, 250, 18),  # 17.5 -> 18 (half up)
        (-250, "reduced", False, -250, -18),  # refunds round symmetrically
        (-1190, "standard", True, -1000, -190),
        (500, "zero", True, 500, 0),
        (0, "standard", False, 0, 0),
    ],
)
def test_per_line_rounding(amount: int, tax_class: str, inclusive: bool, taxable: int, tax: int) -> None:
    line = _one(amount, tax_class, inclusive=inclusive)
    assert (line.taxable, line.tax) == (Money(taxable, EUR), Money(tax, EUR))
    assert line.name == "MwSt"


def test_rounding_is_per_line_not_on_the_total() -> None:
    # three lines of 0.50 at 7 %: each 3.5 -> 4 cents, so 12; rounding the 1.50 total would give 11 (10.5 -> 11)
    provider = BuiltinTax(_rules(), EUR)
    lines = [_line(50, "reduced", key=k) for k in "abc"]
    quote = provider.quote(lines, country="DE", prices_include_tax=False)
    assert [line.tax.amount_minor for line in quote.lines] == [4, 4, 4]
    assert quote.total_tax == Money(12, EUR)
    assert quote.net_total == Money(150, EUR)
    assert quote.gross_total == Money(162, EUR)


def test_quote_totals_inclusive() -> None:
    provider = BuiltinTax(_rules(), EUR)
    lines = [_line(1190, "standard", key="coffee"), _line(999, "reduced", key="cake")]
    quote = provider.quote(lines, country="DE", prices_include_tax=True)
    assert quote == TaxQuote(
        lines=(
            TaxLine("coffee", "standard", 1900, "MwSt", Money(1000, EUR), Money(190, EUR)),
            TaxLine("cake", "reduced", 700, "MwSt", Money(934, EUR), Money(65, EUR)),
        ),
        prices_include_tax=True,
        currency=EUR,
    )
    assert quote.total_tax == Money(255, EUR)
    assert quote.gross_total == Money(1190 + 999, EUR)  # inclusive: gross is what the shopper pays


def test_empty_quote_totals_are_zero() -> None:
    quote = BuiltinTax(_rules(), EUR).quote([], country="DE", prices_include_tax=False)
    assert quote.lines == ()
    assert (quote.total_tax, quote.net_total, quote.gross_total) == (Money(0, EUR),) * 3


# --- jurisdiction lookup -------------------------------------------------------------------------


def test_exact_region_wins_over_country() -> None:
    line = _one(10_000, "standard", inclusive=False, country="US", region="NY")
    assert (line.rate_bps, line.name, line.tax.amount_minor) == (888, "Sales tax", 888)


def test_region_lookup_ignores_case_and_spaces() -> None:
    line = _one(10_000, "standard", inclusive=False, country="us", region=" ny ")
    assert line.name == "Sales tax"


def test_unknown_region_falls_back_to_the_country_entry() -> None:
    line = _one(10_000, "standard", inclusive=False, country="US", region="OR")
    assert (line.rate_bps, line.name, line.tax.amount_minor) == (0, "Federal", 0)


def test_region_given_but_country_has_only_a_national_entry() -> None:
    line = _one(10_000, "standard", inclusive=False, country="DE", region="BE")
    assert (line.rate_bps, line.name) == (1900, "MwSt")


def test_country_with_only_regional_entries_and_no_match_is_untaxed() -> None:
    assert _one(10_000, "standard", inclusive=False, country="CA", region="ON").rate_bps == 1300
    line = _one(10_000, "standard", inclusive=False, country="CA", region="QC")
    assert (line.rate_bps, line.name, line.tax.amount_minor) == (0, "No tax", 0)


def test_unknown_country_is_no_tax() -> None:
    line = _one(1190, "standard", inclusive=True, country="JP")
    assert (line.rate_bps, line.name, line.taxable.amount_minor, line.tax.amount_minor) == (0, "No tax", 1190, 0)


def test_unknown_tax_class_uses_the_default_class_rate() -> None:
    line = _one(1000, "luxury", inclusive=False)
    assert (line.tax_class, line.rate_bps, line.tax.amount_minor) == ("luxury", 1900, 190)


def test_jurisdiction_may_name_its_own_default_class() -> None:
    rules = {
        "default_class": "standard",
        "jurisdictions": [{"country": "XY", "name": "T", "default_class": "basic", "rates": {"basic": 500}}],
    }
    quote = BuiltinTax(rules, EUR).quote([_line(1000, "standard")], country="XY", prices_include_tax=False)
    assert quote.lines[0].rate_bps == 500


@pytest.mark.parametrize("inclusive", [True, False])
def test_exempt_zero_rates_every_line(inclusive: bool) -> None:
    provider = BuiltinTax(_rules(), EUR)
    lines = [_line(1190, "standard", key="a"), _line(999, "reduced", key="b")]
    quote = provider.quote(lines, country="DE", prices_include_tax=inclusive, exempt=True)
    assert [(t.rate_bps, t.tax.amount_minor, t.taxable.amount_minor) for t in quote.lines] == [
        (0, 0, 1190),
        (0, 0, 999),
    ]
    assert {t.name for t in quote.lines} == {"Tax exempt"}
    assert quote.total_tax == Money(0, EUR)


def test_line_in_another_currency_is_rejected() -> None:
    with pytest.raises(ValueError, match="USD"):
        BuiltinTax(_rules(), EUR).quote(
            [TaxableLine("x", Money(100, "USD"), "standard")], country="DE", prices_include_tax=False
        )


# --- config --------------------------------------------------------------------------------------


def _jur(**fields: object) -> dict[str, Any]:
    return {"jurisdictions": [{"country": "DE", "region": "", "name": "MwSt", "rates": {"standard": 1900}, **fields}]}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (_jur(country="de"), r"jurisdictions\[0\]\.country must be an ISO-3166"),
        (_jur(country="DEU"), r"country must be an ISO-3166"),
        (_jur(name=""), r"name must be a non-empty string"),
        (_jur(region=None), r"region must be a string"),
        (_jur(rates={"standard": 19.0}), r"rates\.standard must be an integer of basis points"),
        (_jur(rates={"standard": "1900"}), r"rates\.standard must be an integer"),
        (_jur(rates={"standard": -1}), r"basis points 0\.\.10000"),
        (_jur(rates={"standard": 10_001}), r"basis points 0\.\.10000"),
        (_jur(rates={}), r"rates must be a non-empty object"),
        (_jur(rates={"reduced": 700}), r"has no rate for its default class 'standard'"),
        ({"jurisdictions": {"DE": {}}}, r"jurisdictions must be a list"),
        ({"default_class": 3, "jurisdictions": []}, r"default_class must be a non-empty string"),
        ({"jurisdictions": ["DE"]}, r"jurisdictions\[0\] must be an object"),
        (
            {"jurisdictions": [_jur()["jurisdictions"][0], {**_jur()["jurisdictions"][0], "region": " "}]},
            r"jurisdictions\[1\] repeats country 'DE' region ''",
        ),
    ],
)
def test_bad_rules_are_a_clear_value_error(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BuiltinTax(rules, EUR)


def test_from_settings_uses_store_rules_or_the_default() -> None:
    default = BuiltinTax.from_settings({}, EUR)
    assert _rate(default, "DE", "standard") == 1900
    assert _rate(default, "DE", "reduced") == 700
    assert _rate(default, "AT", "standard") == 2000
    assert _rate(default, "GB", "standard") == 2000
    assert _rate(default, "NL", "standard") == 2100
    assert _rate(default, "FR", "standard") == 2000
    assert _rate(default, "US", "standard", region="NY") == 888
    assert _rate(default, "US", "standard", region="CA") == 0

    custom = BuiltinTax.from_settings({"tax": _jur(rates={"standard": 1600})}, EUR)
    assert _rate(custom, "DE", "standard") == 1600


def _rate(provider: BuiltinTax, country: str, tax_class: str, region: str = "") -> int:
    quote = provider.quote([_line(100, tax_class)], country=country, region=region, prices_include_tax=False)
    return quote.lines[0].rate_bps


def test_default_rules_are_json_shaped_and_not_mutated() -> None:
    before = copy.deepcopy(DEFAULT_TAX_RULES)
    BuiltinTax.from_settings({}, EUR)
    assert before == DEFAULT_TAX_RULES
    assert json.loads(json.dumps(DEFAULT_TAX_RULES)) == DEFAULT_TAX_RULES


# --- properties ----------------------------------------------------------------------------------

amounts = st.integers(min_value=-(10**9), max_value=10**9)
bps_values = st.integers(min_value=0, max_value=10_000)
classes = st.sampled_from(["standard", "reduced", "zero", "unknown"])


@given(
    rates=st.fixed_dictionaries({"standard": bps_values, "reduced": bps_values, "zero": bps_values}),
    lines=st.lists(st.tuples(amounts, classes), max_size=25),
    inclusive=st.booleans(),
    exempt=st.booleans(),
)
def test_total_is_sum_of_lines_and_inclusive_lines_add_up(
    rates: dict[str, int], lines: list[tuple[int, str]], inclusive: bool, exempt: bool
) -> None:
    provider = BuiltinTax({"jurisdictions": [{"country": "DE", "name": "T", "rates": rates}]}, EUR)
    taxable_lines = [_line(amount, tax_class, key=str(i)) for i, (amount, tax_class) in enumerate(lines)]
    quote = provider.quote(taxable_lines, country="DE", prices_include_tax=inclusive, exempt=exempt)

    assert quote.total_tax.amount_minor == sum(line.tax.amount_minor for line in quote.lines)
    assert [line.key for line in quote.lines] == [str(i) for i in range(len(lines))]
    for (amount, tax_class), line in zip(lines, quote.lines, strict=True):
        expected_bps = 0 if exempt else rates.get(tax_class, rates["standard"])
        assert line.rate_bps == expected_bps
        if inclusive:
            assert line.taxable.amount_minor + line.tax.amount_minor == amount
        else:
            assert line.taxable.amount_minor == amount
        # the tax is within half a minor unit of the exact tax on the net amount
        exact_doubled = 2 * line.taxable.amount_minor * expected_bps
        assert abs(2 * 10_000 * line.tax.amount_minor - exact_doubled) <= 10_000 * (1 if not inclusive else 2)
    gross = sum(a for a, _ in lines) if inclusive else sum(a for a, _ in lines) + quote.total_tax.amount_minor
    assert quote.gross_total.amount_minor == gross
