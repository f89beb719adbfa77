"""The tax settings: validation of the JSON shape, the page's form, the preview, and new stores' tables."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import ValidationFailed
from app.core.money import Money
from app.tax import DEFAULT_TAX_RULES, EXEMPT_CLASS, BuiltinTax, TaxableLine
from app.tax.defaults import _NATIONAL, prices_include_tax_for, tax_rules_for_country
from app.tax.form import read_tax_form, row_indexes, tax_form_values, tax_settings_from_form
from app.tax.settings import (
    default_tax_class,
    format_rate_percent,
    parse_rate_percent,
    preview_tax,
    sample_amounts,
    store_tax_classes,
    tax_payload_of,
    validate_tax_settings,
)


def _payload() -> dict[str, Any]:
    return {
        "prices_include_tax": True,
        "shipping_tax_class": "standard",
        "rules": {
            "default_class": "standard",
            "classes": ["standard", "reduced"],
            "jurisdictions": [
                {"country": "DE", "region": "", "name": "MwSt", "rates": {"standard": 1900, "reduced": 700}},
                {"country": "US", "region": "NY", "name": "Sales tax", "rates": {"standard": 888}},
            ],
        },
    }


def _errors(payload: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        validate_tax_settings(payload)
    assert caught.value.detail == "Check the highlighted fields."
    return caught.value.fields


# --- rates as percent -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bps"),
    [("19", 1900), ("7.5", 750), ("7,5", 750), ("8.88", 888), (" 25.5 % ", 2550), ("0", 0), ("100", 10000),
     ("19.00", 1900), ("19.000", 1900), ("2.6", 260)],
)  # fmt: skip
def test_a_percentage_becomes_basis_points(text: str, bps: int) -> None:
    assert parse_rate_percent(text) == bps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter a rate in percent, such as 19 or 7.5."),
        ("abc", "Enter a rate in percent, such as 19 or 7.5."),
        ("1e1", "Enter a rate in percent, such as 19 or 7.5."),
        ("-5", "A rate can't be negative."),
        ("100.01", "A rate can't be over 100 %."),
        ("250", "A rate can't be over 100 %."),
        ("8.885", "Use at most two decimals, such as 8.88."),
    ],
)
def test_a_bad_percentage_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rate_percent(text)


@given(st.integers(min_value=0, max_value=10_000))
def test_a_rate_reads_back_as_it_was_written(bps: int) -> None:
    assert parse_rate_percent(format_rate_percent(bps)) == bps


def test_rates_are_written_as_merchants_type_them() -> None:
    assert [format_rate_percent(b) for b in (1900, 750, 888, 2550, 0, 10000)] == [
        "19",
        "7.5",
        "8.88",
        "25.5",
        "0",
        "100",
    ]


# --- the exempt class --------------------------------------------------------------------------------


@pytest.mark.parametrize("inclusive", [True, False])
@pytest.mark.parametrize(("country", "region"), [("DE", ""), ("US", "NY"), ("JP", "")])
def test_an_exempt_line_is_never_taxed(inclusive: bool, country: str, region: str) -> None:
    lines = [
        TaxableLine("a", Money(1190, "EUR"), EXEMPT_CLASS),
        TaxableLine("b", Money(1190, "EUR"), "standard"),
    ]
    quote = BuiltinTax(DEFAULT_TAX_RULES, "EUR").quote(
        lines, country=country, region=region, prices_include_tax=inclusive
    )
    exempt = quote.lines[0]
    assert (exempt.name, exempt.rate_bps, exempt.tax, exempt.taxable) == (
        "Tax exempt",
        0,
        Money(0, "EUR"),
        Money(1190, "EUR"),
    )
    if country == "DE":
        assert quote.lines[1].tax.amount_minor == (190 if inclusive else 226)


def test_a_rules_table_cannot_give_the_exempt_class_a_rate() -> None:
    rules = {"jurisdictions": [{"country": "DE", "name": "MwSt", "rates": {"standard": 1900, "exempt": 700}}]}
    with pytest.raises(ValueError, match="never taxed"):
        BuiltinTax(rules, "EUR")


def test_a_stores_classes_end_with_exempt_and_new_products_start_in_the_default() -> None:
    assert store_tax_classes({}) == ["standard", "reduced", "zero", EXEMPT_CLASS]
    own = {"tax": {"default_class": "food", "classes": ["food", "general"], "jurisdictions": []}}
    assert store_tax_classes(own) == ["food", "general", EXEMPT_CLASS]
    assert default_tax_class(own) == "food" and default_tax_class({}) == "standard"


# --- validate_tax_settings -----------------------------------------------------------------------------


def test_valid_settings_come_back_normalised_as_the_settings_keys() -> None:
    payload = _payload()
    payload["rules"]["jurisdictions"][1] |= {"country": " us ", "region": "ny", "name": " Sales tax "}
    settings = validate_tax_settings(payload)
    assert settings["prices_include_tax"] is True and settings["shipping_tax_class"] == "standard"
    assert settings["tax"]["jurisdictions"][1] == {
        "country": "US",
        "region": "NY",
        "name": "Sales tax",
        "rates": {"standard": 888},
    }
    assert BuiltinTax(settings["tax"], "EUR").quote(
        [TaxableLine("x", Money(1000, "EUR"), "reduced")], country="US", region="NY", prices_include_tax=False
    ).total_tax == Money(89, "EUR")  # no reduced rate in NY: the default class's 8.88 %


def test_the_class_list_may_be_left_out_and_is_then_read_from_the_rates() -> None:
    payload = _payload()
    del payload["rules"]["classes"]
    assert validate_tax_settings(payload)["tax"]["classes"] == ["standard", "reduced"]
    assert validate_tax_settings(tax_payload_of({}))["tax"]["classes"] == ["standard", "reduced", "zero"]


def test_shipping_may_be_exempt_and_a_store_may_have_no_jurisdictions() -> None:
    payload = _payload() | {"shipping_tax_class": EXEMPT_CLASS, "prices_include_tax": False}
    payload["rules"]["jurisdictions"] = []
    settings = validate_tax_settings(payload)
    assert settings["shipping_tax_class"] == EXEMPT_CLASS and settings["tax"]["jurisdictions"] == []


_DELETE = object()


def _change(payload: dict[str, Any], path: str, value: Any) -> None:
    """Set (or, with ``_DELETE``, remove) the value at a dotted path such as ``rules.jurisdictions.0.name``."""
    *parents, last = path.split(".")
    node: Any = payload
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last) : int(last) + 1] = [value]  # replaces the item, or appends at the next index
    elif value is _DELETE:
        del node[last]
    else:
        node[last] = value


J0, J1 = "rules.jurisdictions.0", "rules.jurisdictions.1"


@pytest.mark.parametrize(
    ("path", "value", "error_at", "message"),
    [
        (f"{J0}.rates.standard", -100, None, "negative"),
        (f"{J0}.rates.standard", 10001, None, "over 100 %"),
        (f"{J0}.rates.reduced", "7", None, "basis points"),
        (f"{J0}.rates.reduced", 7.5, None, "basis points"),
        (f"{J0}.rates.reduced", True, None, "basis points"),
        (f"{J0}.country", "DEU", None, "two-letter"),
        (f"{J0}.country", "D1", None, "two-letter"),
        (f"{J0}.country", None, None, "two-letter"),
        (f"{J0}.region", "New York!", None, "region code"),
        (f"{J0}.name", " ", None, "tax's name"),
        (f"{J0}.name", "x" * 41, None, "under 41"),
        (
            J1,
            {"country": "de", "name": "MwSt", "rates": {"standard": 1}},
            f"{J1}.country",
            "DE is listed twice (also row 1)",
        ),
        (f"{J1}.rates.standard", _DELETE, None, "Enter the rate of the default class “standard”."),
        (f"{J1}.rates.books", 0, None, "not one of the tax classes"),
        (f"{J1}.rates.Books", 0, None, "lowercase letters"),
        ("rules.classes.2", "", None, "Enter a name"),
        ("rules.classes.2", "Food Items", None, "lowercase letters"),
        ("rules.classes.2", "exempt", None, "built in"),
        ("rules.classes.2", "reduced", None, "listed twice"),
        ("rules.classes", [], None, "at least one"),
        ("rules.default_class", "super", None, "Choose the default class"),
        ("shipping_tax_class", "freight", None, "Choose the class shipping"),
        ("prices_include_tax", "yes", None, "include tax"),
        ("rules.jurisdictions", {}, None, "as a list"),
        ("rules.jurisdictions.2", "DE", None, "as an object"),
        ("rules", [], None, "as an object"),
    ],
)
def test_every_bad_value_is_named_by_its_path(path: str, value: Any, error_at: str | None, message: str) -> None:
    payload = _payload()
    _change(payload, path, value)
    fields = _errors(payload)
    assert (error_at or path) in fields, fields
    assert message in fields[error_at or path]


def test_every_problem_is_reported_at_once() -> None:
    payload = _payload()
    payload["rules"]["jurisdictions"][0] |= {"country": "Germany", "name": ""}
    payload["rules"]["jurisdictions"][1]["rates"]["standard"] = -1
    payload["shipping_tax_class"] = "nope"
    assert set(_errors(payload)) == {
        "rules.jurisdictions.0.country",
        "rules.jurisdictions.0.name",
        "rules.jurisdictions.1.rates.standard",
        "shipping_tax_class",
    }


def test_validation_does_not_change_the_payload() -> None:
    payload = _payload()
    before = copy.deepcopy(payload)
    validate_tax_settings(payload)
    assert payload == before


# --- the page's form ------------------------------------------------------------------------------------


def _form() -> dict[str, str]:
    return tax_form_values(_payload())


def test_the_form_shows_the_settings_and_saves_them_unchanged() -> None:
    values = _form()
    assert values["prices_include_tax"] == "yes" and values["default_class"] == "0"
    assert values["classes-1-name"] == "reduced"
    assert values["jurisdictions-0-rate-1"] == "7" and values["jurisdictions-1-rate-0"] == "8.88"
    assert values["jurisdictions-1-rate-1"] == ""  # NY has no reduced rate: the default class's applies
    settings, _ = tax_settings_from_form(values)
    assert settings == validate_tax_settings(_payload())
    assert row_indexes(values, "classes") == [0, 1, 2] and row_indexes(values, "jurisdictions") == [0, 1, 2]


def test_the_empty_rows_add_a_class_and_a_jurisdiction() -> None:
    form = _form() | {
        "classes-2-name": "books",
        "jurisdictions-0-rate-2": "7",
        "jurisdictions-2-country": "at",
        "jurisdictions-2-name": "USt",
        "jurisdictions-2-rate-0": "20",
        "jurisdictions-2-rate-2": "10",
        "shipping_tax_class": "exempt",
        "prices_include_tax": "no",
    }
    settings, _ = tax_settings_from_form(form)
    assert settings["tax"]["classes"] == ["standard", "reduced", "books"]
    assert settings["tax"]["jurisdictions"][0]["rates"] == {"standard": 1900, "reduced": 700, "books": 700}
    assert settings["tax"]["jurisdictions"][2] == {
        "country": "AT", "region": "", "name": "USt", "rates": {"standard": 2000, "books": 1000}
    }  # fmt: skip
    assert settings["shipping_tax_class"] == EXEMPT_CLASS and settings["prices_include_tax"] is False


def test_removing_rows_drops_the_class_and_its_rates_and_the_jurisdiction() -> None:
    settings, _ = tax_settings_from_form(_form() | {"classes-1-remove": "on", "jurisdictions-1-remove": "on"})
    assert settings["tax"]["classes"] == ["standard"]
    assert settings["tax"]["jurisdictions"] == [
        {"country": "DE", "region": "", "name": "MwSt", "rates": {"standard": 1900}}
    ]


def _form_errors(form: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        tax_settings_from_form(form)
    return caught.value.fields


def test_form_errors_are_keyed_by_the_field_that_shows_them() -> None:
    fields = _form_errors(
        _form()
        | {
            "jurisdictions-0-rate-1": "7,5%x",
            "jurisdictions-1-rate-0": "101",
            "jurisdictions-1-region": "N Y",
            "jurisdictions-2-country": "DE",  # the empty row, filled: a second DE
            "jurisdictions-2-name": "MwSt",
            "jurisdictions-2-rate-0": "19",
        }
    )
    assert fields == {
        "jurisdictions-0-rate-1": "Enter a rate in percent, such as 19 or 7.5.",
        "jurisdictions-1-rate-0": "A rate can't be over 100 %.",
        "jurisdictions-1-region": "Leave empty, or enter a region code such as NY (letters, digits, -; up to 10).",
        "jurisdictions-2-country": "DE is listed twice (also row 1); keep one.",
    }


def test_a_missing_default_rate_points_at_its_cell() -> None:
    fields = _form_errors(_form() | {"jurisdictions-0-rate-0": ""})
    assert fields == {"jurisdictions-0-rate-0": "Enter the rate of the default class “standard”."}


def test_classes_that_cannot_be_saved_say_why() -> None:
    assert _form_errors(_form() | {"classes-0-remove": "on"})["default_class"] == (
        "“standard” is being removed; choose another class first."
    )
    assert _form_errors(_form() | {"jurisdictions-0-rate-2": "5"})["classes-2-name"] == (
        "Name this class, or clear its rates."
    )
    assert "lowercase letters" in _form_errors(_form() | {"classes-1-name": "Reduced Rate"})["classes-1-name"]
    assert "built in" in _form_errors(_form() | {"classes-1-name": "exempt"})["classes-1-name"]
    assert _form_errors(_form() | {"classes-0-remove": "on", "classes-1-remove": "on"})["classes"] == (
        "Keep at least one tax class."
    )
    assert "Choose the default class" in _form_errors(_form() | {"default_class": ""})["default_class"]
    assert "Say whether" in _form_errors(_form() | {"prices_include_tax": "maybe"})["prices_include_tax"]


def test_a_service_error_about_a_class_by_name_lands_on_its_row() -> None:
    reading = read_tax_form(_form() | {"classes-1-remove": "on"})
    assert reading.field_for("rules.classes.reduced") == "classes-1-name"
    assert reading.field_for("rules.classes.vanished") == "classes"
    assert reading.field_for("rules.jurisdictions.1.rates.standard") == "jurisdictions-1-rate-0"
    assert reading.field_for("rules") == "form"


# --- preview ----------------------------------------------------------------------------------------------


def test_the_preview_taxes_one_item_per_class_and_the_shipping() -> None:
    preview = preview_tax(validate_tax_settings(_payload()), "EUR", "de")
    rows = [
        (line.label, line.price.amount_minor, line.net.amount_minor, line.tax.amount_minor) for line in preview.lines
    ]
    assert rows == [
        ("Item in “standard”", 1000, 840, 160),
        ("Item in “reduced”", 1000, 935, 65),
        ("Shipping", 490, 412, 78),
    ]
    assert (preview.country, preview.tax_total, preview.total) == ("DE", Money(303, "EUR"), Money(2490, "EUR"))


def test_the_preview_adds_tax_when_prices_exclude_it_and_knows_no_tax_elsewhere() -> None:
    settings = validate_tax_settings(_payload() | {"prices_include_tax": False})
    ny = preview_tax(settings, "USD", "US", "NY")
    assert ny.tax_total == Money(89 + 89 + 44, "USD") and ny.total == Money(2490 + 222, "USD")
    nowhere = preview_tax(settings, "USD", "JP")
    assert {line.tax_name for line in nowhere.lines} == {"No tax"} and nowhere.tax_total == Money(0, "USD")


@pytest.mark.parametrize(("currency", "item", "shipping"), [("EUR", 1000, 490), ("JPY", 10, 5), ("BHD", 10000, 4900)])
def test_the_sample_basket_is_in_the_currencys_own_digits(currency: str, item: int, shipping: int) -> None:
    assert sample_amounts(currency) == (Money(item, currency), Money(shipping, currency))


# --- a new store's table ------------------------------------------------------------------------------------


@pytest.mark.parametrize("country", sorted(_NATIONAL))
def test_every_countrys_table_is_valid_settings(country: str) -> None:
    rules = tax_rules_for_country(country)
    BuiltinTax(rules, "EUR")
    settings = validate_tax_settings(
        {"prices_include_tax": prices_include_tax_for(country), "shipping_tax_class": "standard", "rules": rules}
    )
    assert settings["tax"] == rules


def _rate(country: str, tax_class: str, region: str = "") -> tuple[str, int]:
    quote = BuiltinTax(tax_rules_for_country(country), "EUR").quote(
        [TaxableLine("x", Money(10000, "EUR"), tax_class)], country=country, region=region, prices_include_tax=False
    )
    return quote.lines[0].name, quote.lines[0].rate_bps


def test_the_starting_rates_of_some_countries() -> None:
    assert _rate("DE", "standard") == ("MwSt", 1900) and _rate("DE", "reduced") == ("MwSt", 700)
    assert [_rate("SE", c) for c in ("standard", "reduced", "reduced_2")] == [
        ("Moms", 2500),
        ("Moms", 1200),
        ("Moms", 600),
    ]
    assert [_rate("FI", c)[1] for c in ("standard", "reduced", "reduced_2")] == [2550, 1400, 1000]
    assert [_rate("NO", c)[1] for c in ("standard", "reduced")] == [2500, 1500]
    assert [_rate("CH", c)[1] for c in ("standard", "reduced")] == [810, 260]
    assert _rate("DK", "reduced") == ("Moms", 2500)  # one rate: every class pays it
    assert _rate("AU", "standard") == ("GST", 1000)
    assert _rate("CA", "standard") == ("GST", 500) and _rate("CA", "standard", "ON") == ("HST", 1300)


def test_the_us_and_unknown_countries_start_with_no_jurisdictions() -> None:
    for country in ("US", "XX", "jp"):
        assert tax_rules_for_country(country) == {
            "default_class": "standard",
            "classes": ["standard"],
            "jurisdictions": [],
        }
    assert _rate("US", "standard") == ("No tax", 0)


def test_prices_include_tax_except_in_north_america() -> None:
    assert [prices_include_tax_for(c) for c in ("DE", "se", "AU", "US", "ca", "XX")] == [
        True,
        True,
        True,
        False,
        False,
        True,
    ]
