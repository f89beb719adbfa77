from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.core.money import Money
from app.shipping import (
    DEFAULT_SHIPPING_CONFIG,
    Address,
    BuiltinShipping,
    ShipmentItem,
    ShippingProvider,
    ShippingRate,
)

EUR = "EUR"


def _config() -> dict[str, Any]:
    return {
        "pickup": {"enabled": True, "label": "Pickup in store"},
        "flat": {"enabled": False, "label": "Flat rate", "amount_minor": 490},
        "free_over_minor": 5000,
        "zones": [
            {
                "code": "de",
                "label": "Germany",
                "countries": ["DE"],
                "rates": [
                    # deliberately out of weight order: the provider sorts brackets itself
                    {"code": "standard", "label": "Standard", "max_weight_grams": 5000, "amount_minor": 690, "days": 2},
                    {"code": "standard", "label": "Standard", "max_weight_grams": 1000, "amount_minor": 490, "days": 2},
                    {"code": "express", "label": "Express", "max_weight_grams": 2000, "amount_minor": 1290, "days": 1},
                ],
            },
            {
                "code": "eu",
                "label": "EU",
                "countries": ["AT", "FR", "NL"],
                "rates": [{"code": "standard", "label": "Standard", "max_weight_grams": 2000, "amount_minor": 990}],
            },
        ],
        "local_delivery": {
            "enabled": True,
            "label": "Bike courier",
            "countries": ["DE"],
            "postal_codes": ["10115", "10117", "104*"],
            "amount_minor": 350,
            "free_over_minor": 3000,
            "days": 0,
        },
    }


def _address(country: str = "DE", postal_code: str = "10115", region: str = "") -> Address:
    return Address("Ada", "Street 1", "", "City", region, postal_code, country)


def _quote(
    provider: ShippingProvider,
    destination: Address | None,
    *,
    grams: int = 500,
    subtotal: int = 1000,
) -> list[ShippingRate]:
    return provider.quote_rates(
        destination=destination, items=[ShipmentItem(weight_grams=grams, quantity=1)], subtotal=Money(subtotal, EUR)
    )


def _by_code(rates: list[ShippingRate]) -> dict[str, int]:
    return {r.code: r.amount.amount_minor for r in rates}


def test_without_destination_only_pickup_is_offered() -> None:
    rates = _quote(BuiltinShipping(_config(), EUR), None)
    assert rates == [ShippingRate("pickup", "Pickup in store", "pickup", Money(0, EUR), False, None)]


def test_without_destination_and_no_pickup_nothing_is_offered() -> None:
    config = _config()
    config["pickup"]["enabled"] = False
    config["flat"]["enabled"] = True
    assert _quote(BuiltinShipping(config, EUR), None) == []


def test_zone_rate_fields_and_label() -> None:
    rates = _quote(BuiltinShipping(_config(), EUR), _address("FR", "75001"))
    assert rates[1] == ShippingRate("zone:eu:standard", "Standard (EU)", "table", Money(990, EUR), True, None)
    assert [r.code for r in rates] == ["pickup", "zone:eu:standard"]


@pytest.mark.parametrize(
    ("grams", "expected"),
    [
        (0, {"zone:de:standard": 490, "zone:de:express": 1290}),
        (1000, {"zone:de:standard": 490, "zone:de:express": 1290}),  # the bracket limit is inclusive
        (1001, {"zone:de:standard": 690, "zone:de:express": 1290}),
        (2001, {"zone:de:standard": 690}),  # heavier than every express bracket: express not offered
        (5000, {"zone:de:standard": 690}),
        (5001, {}),  # heavier than every bracket: no table rate at all
    ],
)
def test_zone_bracket_is_chosen_by_total_weight(grams: int, expected: dict[str, int]) -> None:
    rates = _quote(BuiltinShipping(_config(), EUR), _address("DE", "80331"), grams=grams)
    assert {code: amount for code, amount in _by_code(rates).items() if code.startswith("zone:")} == expected


def test_total_weight_is_weight_times_quantity_summed() -> None:
    provider = BuiltinShipping(_config(), EUR)
    items = [ShipmentItem(weight_grams=300, quantity=2), ShipmentItem(weight_grams=401, quantity=1)]  # 1001 g
    rates = provider.quote_rates(destination=_address("DE", "80331"), items=items, subtotal=Money(100, EUR))
    assert _by_code(rates)["zone:de:standard"] == 690


def test_country_in_no_zone_gets_no_table_rate_but_flat_rate_applies() -> None:
    config = _config()
    config["flat"]["enabled"] = True
    rates = _quote(BuiltinShipping(config, EUR), _address("US", "10001", "NY"))
    assert _by_code(rates) == {"pickup": 0, "flat": 490}


def test_flat_rate_applies_to_any_supported_destination() -> None:
    config = _config()
    config["flat"]["enabled"] = True
    provider = BuiltinShipping(config, EUR)
    for destination in (_address("DE", "80331"), _address("NL", "1012 AB"), _address("AU", "2000", "NSW")):
        assert _by_code(_quote(provider, destination))["flat"] == 490
    assert "flat" not in _by_code(_quote(provider, _address("XX", "1")))


@pytest.mark.parametrize(("subtotal", "table_amount"), [(4999, 490), (5000, 0), (9000, 0)])
def test_free_shipping_threshold_zeroes_flat_and_table_rates(subtotal: int, table_amount: int) -> None:
    config = _config()
    config["flat"]["enabled"] = True
    config["local_delivery"]["free_over_minor"] = None
    rates = _by_code(_quote(BuiltinShipping(config, EUR), _address("DE", "10115"), subtotal=subtotal))
    assert rates["zone:de:standard"] == table_amount
    assert rates["zone:de:express"] == (1290 if table_amount else 0)
    assert rates["flat"] == table_amount
    assert rates["local"] == 350  # the global threshold never applies to local delivery


def test_local_delivery_has_its_own_threshold() -> None:
    provider = BuiltinShipping(_config(), EUR)
    assert _by_code(_quote(provider, _address("DE", "10115"), subtotal=2999))["local"] == 350
    assert _by_code(_quote(provider, _address("DE", "10115"), subtotal=3000))["local"] == 0


def test_zone_can_override_or_disable_the_free_threshold() -> None:
    config = _config()
    config["zones"][1]["free_over_minor"] = None
    config["zones"][0]["free_over_minor"] = 2000
    provider = BuiltinShipping(config, EUR)
    assert _by_code(_quote(provider, _address("FR", "75001"), subtotal=100_000))["zone:eu:standard"] == 990
    assert _by_code(_quote(provider, _address("DE", "80331"), subtotal=2000))["zone:de:standard"] == 0


@pytest.mark.parametrize(
    ("country", "postal_code", "offered"),
    [
        ("DE", "10115", True),  # exact
        ("DE", "10117", True),  # exact
        ("DE", "10119", False),  # not listed, no matching prefix
        ("DE", "10405", True),  # prefix 104*
        ("DE", "10999", False),
        ("DE", "11040", False),  # contains 104 but does not start with it
        ("US", "10115", False),  # same digits, other country: not local
    ],
)
def test_local_delivery_by_exact_code_and_prefix(country: str, postal_code: str, offered: bool) -> None:
    region = "NY" if country == "US" else ""
    rates = _quote(BuiltinShipping(_config(), EUR), _address(country, postal_code, region))
    local = [r for r in rates if r.code == "local"]
    assert bool(local) is offered
    if offered:
        assert local[0] == ShippingRate("local", "Bike courier", "local_delivery", Money(350, EUR), True, 0)


def test_local_delivery_patterns_ignore_case_and_spaces() -> None:
    config = _config()
    config["local_delivery"] |= {"countries": ["GB"], "postal_codes": ["sw1a 1aa", "EC1*"]}
    provider = BuiltinShipping(config, EUR)
    assert "local" in _by_code(_quote(provider, _address("GB", "SW1A 1AA")))
    assert "local" in _by_code(_quote(provider, _address("GB", "EC1A 1BB")))
    assert "local" not in _by_code(_quote(provider, _address("GB", "E1 6AN")))


def test_local_delivery_disabled_is_never_offered() -> None:
    config = _config()
    config["local_delivery"]["enabled"] = False
    assert "local" not in _by_code(_quote(BuiltinShipping(config, EUR), _address("DE", "10115")))


def test_results_sorted_by_amount_then_label() -> None:
    config = _config()
    config["flat"] |= {"enabled": True, "amount_minor": 490, "label": "Another flat"}
    rates = _quote(BuiltinShipping(config, EUR), _address("DE", "10115"))
    assert [(r.amount.amount_minor, r.label) for r in rates] == [
        (0, "Pickup in store"),
        (350, "Bike courier"),
        (490, "Another flat"),
        (490, "Standard (Germany)"),
        (1290, "Express (Germany)"),
    ]


def test_rate_returns_the_offered_rate() -> None:
    provider = BuiltinShipping(_config(), EUR)
    items = [ShipmentItem(weight_grams=1500, quantity=1)]
    rate = provider.rate("zone:de:standard", destination=_address("DE", "80331"), items=items, subtotal=Money(0, EUR))
    assert rate.amount == Money(690, EUR)
    assert rate.estimated_days == 2
    pickup = provider.rate("pickup", destination=None, items=items, subtotal=Money(0, EUR))
    assert pickup.requires_address is False


@pytest.mark.parametrize(
    ("code", "destination", "grams"),
    [
        ("zone:eu:standard", _address("DE", "80331"), 500),  # a zone that is not the destination's
        ("zone:de:express", _address("DE", "80331"), 3000),  # too heavy for express
        ("local", _address("DE", "80331"), 500),  # outside the local area
        ("zone:de:standard", None, 500),  # needs an address
        ("flat", _address("DE", "80331"), 500),  # disabled
        ("nonsense", _address("DE", "80331"), 500),
    ],
)
def test_rate_rejects_a_code_not_offered(code: str, destination: Address | None, grams: int) -> None:
    provider = BuiltinShipping(_config(), EUR)
    with pytest.raises(ValidationFailed) as caught:
        provider.rate(code, destination=destination, items=[ShipmentItem(grams, 1)], subtotal=Money(0, EUR))
    assert set(caught.value.fields) == {"shipping"}
    assert caught.value.status_code == 422


def _with(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    config = _config()
    target: Any = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_with(("flat", "amount_minor"), 4.9), r"flat\.amount_minor must be an integer"),
        (_with(("flat", "enabled"), "yes"), r"flat\.enabled must be true or false"),
        (_with(("free_over_minor",), -1), r"free_over_minor must be an integer >= 0"),
        (_with(("zones",), {"de": {}}), r"'zones' must be a list"),
        (_with(("zones", 0, "countries"), ["DE", "XX"]), r"zones\[0\]\.countries has 'XX'"),
        (_with(("zones", 1, "countries"), ["DE"]), r"\['DE'\] are in more than one zone"),
        (_with(("zones", 1, "code"), "de"), r"zone code 'de' is used twice"),
        (_with(("zones", 0, "code"), "d:e"), r"zones\[0\]\.code must be a non-empty string matching"),
        (_with(("zones", 0, "rates"), []), r"zones\[0\]\.rates must be a non-empty list"),
        (_with(("zones", 0, "rates", 1, "max_weight_grams"), 0), r"max_weight_grams must be an integer >= 1"),
        (_with(("zones", 0, "rates", 1, "max_weight_grams"), 5000), r"repeats max_weight_grams for rate 'standard'"),
        (_with(("zones", 0, "rates", 0, "amount_minor"), True), r"amount_minor must be an integer"),
        (_with(("local_delivery", "postal_codes"), "10115"), r"local_delivery\.postal_codes must be a list"),
        (_with(("local_delivery",), {"enabled": True, "postal_codes": ["10115"]}), r"local_delivery\.amount_minor"),
        (_with(("pickup",), "on"), r"'pickup' must be an object"),
    ],
)
def test_bad_config_is_a_clear_value_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BuiltinShipping(config, EUR)


def test_enabled_flat_rate_without_amount_is_rejected_but_disabled_one_is_fine() -> None:
    with pytest.raises(ValueError, match=r"flat\.amount_minor"):
        BuiltinShipping({"flat": {"enabled": True}}, EUR)
    assert (
        BuiltinShipping({"flat": {"enabled": False}}, EUR).quote_rates(
            destination=_address(), items=[], subtotal=Money(0, EUR)
        )
        == []
    )


def test_bad_currency_and_mismatched_subtotal() -> None:
    with pytest.raises(ValueError, match="ISO-4217"):
        BuiltinShipping(_config(), "euro")
    with pytest.raises(ValueError, match="subtotal is in USD"):
        BuiltinShipping(_config(), EUR).quote_rates(destination=None, items=[], subtotal=Money(1, "USD"))


def test_negative_item_weight_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        BuiltinShipping(_config(), EUR).quote_rates(
            destination=_address(), items=[ShipmentItem(-1, 1)], subtotal=Money(0, EUR)
        )


def test_from_settings_uses_the_store_config_or_the_default() -> None:
    default = BuiltinShipping.from_settings({"theme": "dark"}, EUR)
    rates = _by_code(_quote(default, _address("DE", "10115"), grams=500, subtotal=1000))
    assert rates == {"pickup": 0, "local": 350, "zone:de:standard": 490, "zone:de:express": 1290}

    custom = BuiltinShipping.from_settings({"shipping": {"pickup": {"enabled": True, "label": "Collect"}}}, EUR)
    assert [r.label for r in _quote(custom, _address("DE", "10115"))] == ["Collect"]


def test_default_config_is_not_mutated_and_is_json_shaped() -> None:
    before = copy.deepcopy(DEFAULT_SHIPPING_CONFIG)
    BuiltinShipping.from_settings({}, EUR)
    assert before == DEFAULT_SHIPPING_CONFIG
    assert json.loads(json.dumps(DEFAULT_SHIPPING_CONFIG)) == DEFAULT_SHIPPING_CONFIG


def test_bracket_code_and_label_default_to_standard() -> None:
    config = {
        "zones": [{"code": "de", "countries": ["DE"], "rates": [{"max_weight_grams": 1000, "amount_minor": 490}]}]
    }
    rates = _quote(BuiltinShipping(config, EUR), _address("DE", "80331"))
    assert rates == [ShippingRate("zone:de:standard", "Standard (DE)", "table", Money(490, EUR), True, None)]
