"""The shipping settings: validation of the config, the page's form, amounts in any currency, the preview."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.core.money import Money, amount_text, parse_amount
from app.shipping import DEFAULT_SHIPPING_CONFIG, BuiltinShipping
from app.shipping.form import (
    bracket_rows,
    read_preview,
    read_shipping_form,
    shipping_form_values,
    shipping_settings_from_form,
    zone_rows,
)
from app.shipping.settings import merged_shipping_config, preview_shipping, validate_shipping_config

# --- amounts as typed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("4.90", "EUR", 490),
        ("4,9", "EUR", 490),
        (" 12 ", "EUR", 1200),
        ("0.05", "EUR", 5),
        ("-2", "EUR", -200),
        ("1500", "JPY", 1500),
        ("1.250", "BHD", 1250),
        ("4.90", "EUR", 490),
    ],
)
def test_an_amount_is_read_in_its_currencys_digits(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"), [("", "EUR"), ("abc", "EUR"), ("4.901", "EUR"), ("1.250", "EUR"), ("1e3", "EUR"),
                           ("1500.5", "JPY"), ("1.2345", "BHD"), ("4 90", "EUR")],
)  # fmt: skip
def test_what_is_not_an_amount_is_none(text: str, currency: str) -> None:
    assert parse_amount(text, currency) is None


def test_amounts_are_shown_for_editing_in_the_currencys_digits() -> None:
    assert [amount_text(490, "EUR"), amount_text(500, "JPY"), amount_text(1250, "BHD")] == ["4.90", "500", "1.250"]
    for minor in (0, 5, 490, 123456):
        for currency in ("EUR", "JPY", "BHD"):
            assert parse_amount(amount_text(minor, currency), currency) == minor


# --- validate_shipping_config ------------------------------------------------------------------------------


def _config() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_SHIPPING_CONFIG)


def _errors(config: dict[str, Any], currency: str = "EUR") -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        validate_shipping_config(config, currency)
    assert caught.value.detail == "Check the highlighted fields."
    return caught.value.fields


def test_the_default_config_is_valid_and_offers_the_same_rates() -> None:
    config = validate_shipping_config(DEFAULT_SHIPPING_CONFIG, "EUR")
    assert config["pickup"] == {"enabled": True, "label": "Pickup in store", "instructions": ""}
    assert config["zones"][2]["free_over_minor"] is None and "free_over_minor" not in config["zones"][0]
    args: dict[str, Any] = {
        "destination": None,
        "items": [],
        "subtotal": Money(2000, "EUR"),
    }
    assert BuiltinShipping(config, "EUR").quote_rates(**args) == BuiltinShipping(
        DEFAULT_SHIPPING_CONFIG, "EUR"
    ).quote_rates(**args)


def test_a_new_stores_pickup_only_config_is_valid() -> None:
    config: dict[str, Any] = {
        "pickup": {"enabled": True, "label": "Pickup in store"},
        "flat": {"enabled": False, "label": "Standard shipping", "amount_minor": 0},
        "free_over_minor": None,
        "zones": [],
        "local_delivery": {"enabled": False, "label": "Local delivery", "postal_codes": [], "amount_minor": 0},
    }
    assert validate_shipping_config(config, "SEK")["local_delivery"]["postal_codes"] == []


def test_codes_and_countries_are_normalised() -> None:
    config = _config()
    config["zones"][1]["countries"] = [" at", "FR", "fr"]
    config["local_delivery"]["postal_codes"] = ["10 115", "104*", "10115"]
    checked = validate_shipping_config(config, "EUR")
    assert checked["zones"][1]["countries"] == ["AT", "FR"]
    assert checked["local_delivery"]["postal_codes"] == ["10115", "104*"]


def _set(path: str, value: Any) -> dict[str, Any]:
    config = _config()
    *parents, last = path.split(".")
    node: Any = config
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is None and last in ("amount_minor",):
        node.pop(last, None)
    else:
        node[last] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "error_at", "message"),
    [
        ("zones.1.countries", ["AT", "DE"], None, "DE is in the zone “Germany” already"),
        ("zones.0.countries", ["DE", "XX"], None, "We can't deliver to XX yet"),
        ("zones.0.countries", [], None, "at least one country"),
        ("zones.0.rates.1.max_weight_grams", 1000, None, "has a price up to 1000 g already"),
        ("zones.0.rates.0.max_weight_grams", 0, None, "grams from 1"),
        ("zones.0.rates.0.max_weight_grams", None, None, "heaviest parcel"),
        ("zones.0.rates.0.amount_minor", -1, None, "can't be negative"),
        ("zones.0.rates.0.amount_minor", None, None, "Enter the price."),
        ("zones.0.rates.0.amount_minor", 4.9, None, "minor units of EUR (490 = 4.90)"),
        ("zones.0.rates.0.amount_minor", True, None, "minor units"),
        ("zones.0.rates.0.code", "Standard Post", None, "lowercase letters"),
        ("zones.0.rates.0.days", -1, None, "whole days from 0"),
        ("zones.0.rates", [], None, "at least one price"),
        ("zones.1.code", "de", None, "Another zone has the code “de”"),
        ("zones.1.code", "E U", None, "lowercase letters"),
        ("zones.1.label", " ", None, "name shoppers see"),
        ("zones.1.free_over_minor", -5, None, "can't be negative"),
        ("free_over_minor", -1, None, "can't be negative"),
        ("flat.enabled", True, "flat.amount_minor", None),  # enabled flat without its price: below
        ("flat.amount_minor", -490, None, "can't be negative"),
        ("flat.enabled", "yes", None, "on or off"),
        ("local_delivery.postal_codes", [], None, "List the postal codes"),
        ("local_delivery.postal_codes", ["10115", "abc def!"], None, "Not a postal code or prefix: ABCDEF!"),
        ("local_delivery.postal_codes", ["*"], None, "Not a postal code or prefix: *"),
        ("local_delivery.countries", [], None, "at least one country"),
        ("local_delivery.amount_minor", None, None, "Enter the price of local delivery"),
        ("pickup.instructions", "x" * 501, None, "under 501 characters"),
        ("pickup.label", "", None, "name shoppers see"),
        ("zones", {}, None, "as a list"),
        ("zones.0", "DE", None, "as an object"),
        ("local_delivery", [], None, "as an object"),
    ],
)
def test_every_bad_value_is_named_by_its_path(path: str, value: Any, error_at: str | None, message: str | None) -> None:
    config = _set(path, value)
    if path == "flat.enabled" and value is True:
        del config["flat"]["amount_minor"]
        message = "Enter the price of flat-rate shipping."
    fields = _errors(config)
    assert (error_at or path) in fields, fields
    assert message is not None and message in fields[error_at or path]


def test_a_disabled_method_needs_no_price() -> None:
    config = _config()
    del config["flat"]["amount_minor"]
    config["local_delivery"] = {"enabled": False, "label": "Local", "postal_codes": []}
    assert validate_shipping_config(config, "EUR")["flat"]["amount_minor"] == 0


def test_at_least_one_way_to_get_an_order() -> None:
    config = _config()
    config["pickup"]["enabled"] = False
    config["local_delivery"]["enabled"] = False
    config["zones"] = []
    assert "Offer at least one way" in _errors(config)["pickup.enabled"]


def test_every_problem_is_reported_at_once() -> None:
    config = _config()
    config["zones"][1]["countries"] = ["DE", "ZZ"]
    config["zones"][0]["rates"][2]["amount_minor"] = -1
    config["flat"] = {"enabled": True, "label": "Flat"}
    fields = _errors(config)
    assert set(fields) == {"zones.1.countries", "zones.0.rates.2.amount_minor", "flat.amount_minor"}


def test_other_features_keys_survive_a_save() -> None:
    stored = _config() | {"carrier_accounts": {"dhl": "x"}}
    stored["pickup"] = stored["pickup"] | {"slots": [1, 2]}
    merged = merged_shipping_config(stored, validate_shipping_config(_config(), "EUR"))
    assert merged["carrier_accounts"] == {"dhl": "x"} and merged["pickup"]["slots"] == [1, 2]
    assert merged["pickup"]["instructions"] == ""


# --- the page's form ------------------------------------------------------------------------------------------


def test_the_form_shows_the_config_and_saves_it_unchanged() -> None:
    values = shipping_form_values(DEFAULT_SHIPPING_CONFIG, "EUR")
    assert values["flat_amount"] == "4.90" and values["free_over"] == "50.00"
    assert values["zones-1-countries"].startswith("AT, FR") and values["zones-2-never_free"] == "on"
    assert values["zones-0-rates-3-code"] == "express" and values["zones-0-rates-3-amount"] == "12.90"
    assert values["local_postal_codes"] == "10115, 10117, 10119, 104*, 10997, 10999"
    assert shipping_settings_from_form(values, "EUR") == validate_shipping_config(DEFAULT_SHIPPING_CONFIG, "EUR")
    assert zone_rows(values) == [0, 1, 2, 3] and bracket_rows(values, 0) == [0, 1, 2, 3, 4]
    assert bracket_rows(values, 3) == [0, 1]  # a new zone shows two empty prices


def test_the_form_edits_add_and_remove_rows() -> None:
    form = shipping_form_values(DEFAULT_SHIPPING_CONFIG, "EUR") | {
        "pickup_instructions": "Side door, ring twice",
        "flat_enabled": "on",
        "flat_amount": "5,50",
        "free_over": "",
        "zones-0-rates-3-remove": "on",  # no express any more
        "zones-0-rates-4-max_weight_grams": "500",  # the empty row: a cheaper small parcel
        "zones-0-rates-4-amount": "3.20",
        "zones-1-remove": "on",
        "zones-2-never_free": "",
        "zones-2-free_over": "100",
        "zones-3-code": "nordics",
        "zones-3-label": "Nordics",
        "zones-3-countries": "dk se",
        "zones-3-rates-0-max_weight_grams": "2000",
        "zones-3-rates-0-amount": "12.00",
        "zones-3-rates-0-days": "4",
    }
    config = shipping_settings_from_form(form, "EUR")
    assert config["pickup"]["instructions"] == "Side door, ring twice"
    assert config["flat"] == {"enabled": True, "label": "Standard shipping", "amount_minor": 550, "days": None}
    assert config["free_over_minor"] is None
    germany = config["zones"][0]["rates"]
    assert [(r["code"], r["max_weight_grams"], r["amount_minor"]) for r in germany] == [
        ("standard", 1000, 490), ("standard", 5000, 690), ("standard", 31500, 1090), ("standard", 500, 320)
    ]  # fmt: skip
    assert [z["code"] for z in config["zones"]] == ["de", "world", "nordics"]
    assert config["zones"][1]["free_over_minor"] == 10000
    assert config["zones"][2] == {
        "code": "nordics",
        "label": "Nordics",
        "countries": ["DK", "SE"],
        "rates": [{"code": "standard", "label": "Standard", "max_weight_grams": 2000, "amount_minor": 1200, "days": 4}],
    }


def _form_errors(changes: dict[str, str], currency: str = "EUR") -> dict[str, str]:
    form = shipping_form_values(DEFAULT_SHIPPING_CONFIG, currency) | changes
    with pytest.raises(ValidationFailed) as caught:
        shipping_settings_from_form(form, currency)
    return caught.value.fields


def test_form_errors_land_on_their_fields() -> None:
    assert _form_errors(
        {
            "flat_amount": "4.999",
            "zones-0-rates-1-max_weight_grams": "1000",
            "zones-0-rates-2-amount": "-3",
            "zones-1-countries": "AT, DE",
            "zones-2-free_over": "10",  # while "never free" is ticked
            "local_postal_codes": "",
            "local_days": "soon",
        }
    ) == {
        "flat_amount": "Enter an amount such as 4.90.",
        "zones-0-rates-1-max_weight_grams": "The “standard” rate has a price up to 1000 g already.",
        "zones-0-rates-2-amount": "An amount can't be negative.",
        "zones-1-countries": "DE is in the zone “Germany” already; a country has one zone.",
        "zones-2-free_over": "Leave this empty when the zone is never free.",
        "local_postal_codes": "List the postal codes you deliver to.",
        "local_days": "Enter whole days, such as 2.",
    }


def test_an_enabled_method_without_a_price_is_refused_on_the_form() -> None:
    assert _form_errors({"flat_enabled": "on", "flat_amount": ""}) == {
        "flat_amount": "Enter the price of flat-rate shipping."
    }
    assert _form_errors({"zones-0-rates-0-amount": ""}) == {"zones-0-rates-0-amount": "Enter the price."}


def test_a_zone_without_prices_says_so_on_the_zone() -> None:
    changes = {f"zones-1-rates-{j}-remove": "on" for j in range(3)}
    assert _form_errors(changes) == {
        "zones-1-rates": "Add at least one price: a rate with a weight limit and an amount."
    }


def test_amounts_follow_the_stores_currency() -> None:
    config: dict[str, Any] = {
        "pickup": {"enabled": True, "label": "Pickup"},
        "flat": {"enabled": True, "label": "Flat", "amount_minor": 500},
        "zones": [],
    }
    values = shipping_form_values(config, "JPY")
    assert values["flat_amount"] == "500"
    assert shipping_settings_from_form(values | {"flat_amount": "650"}, "JPY")["flat"]["amount_minor"] == 650
    reading = read_shipping_form(values | {"flat_amount": "6.50"}, "JPY")
    assert reading.errors == {"flat_amount": "Enter an amount such as 490."}
    bhd = shipping_settings_from_form(shipping_form_values(config, "BHD") | {"flat_amount": "1.5"}, "BHD")
    assert bhd["flat"]["amount_minor"] == 1500


# --- preview ------------------------------------------------------------------------------------------------------


def _codes(**kwargs: Any) -> dict[str, int]:
    args: dict[str, Any] = {"country": "DE", "postal_code": "", "weight_grams": 800, "subtotal_minor": 2000} | kwargs
    return {r.code: r.amount.amount_minor for r in preview_shipping(DEFAULT_SHIPPING_CONFIG, "EUR", **args)}


def test_the_preview_lists_what_the_checkout_offers() -> None:
    assert _codes() == {"pickup": 0, "zone:de:standard": 490, "zone:de:express": 1290}
    assert _codes(postal_code="104 35") == {"pickup": 0, "local": 350, "zone:de:standard": 490, "zone:de:express": 1290}
    assert _codes(postal_code="10435", subtotal_minor=5000)["zone:de:standard"] == 0  # free over 50.00
    assert _codes(weight_grams=6000) == {"pickup": 0, "zone:de:standard": 1090}  # too heavy for express
    assert _codes(country="JP") == {"pickup": 0}
    assert _codes(country="US", subtotal_minor=90000)["zone:world:standard"] == 1690  # never free in "world"


def test_the_preview_inputs_default_to_the_stores_country() -> None:
    inputs, errors = read_preview({}, "EUR", "DE")
    assert (inputs.country, inputs.weight_grams, inputs.subtotal_minor, errors) == ("DE", 500, 2000, {})
    _, errors = read_preview(
        {"preview_country": "Deutschland", "preview_weight": "1kg", "preview_subtotal": "x"}, "EUR", "DE"
    )
    assert set(errors) == {"preview_country", "preview_weight", "preview_subtotal"}
