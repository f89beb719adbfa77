from __future__ import annotations

import pytest

from app.core.errors import ValidationFailed
from app.shipping.addresses import SUPPORTED_COUNTRIES, Address, normalise_postal_code, parse_address


def _raw(**overrides: str) -> dict[str, str]:
    base = {
        "name": "Ada Lovelace",
        "line1": "Invalidenstraße 1",
        "line2": "",
        "city": "Berlin",
        "region": "",
        "postal_code": "10115",
        "country": "DE",
    }
    return {**base, **overrides}


def _fields(raw: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_address(raw)
    assert caught.value.detail == "Check the address."
    assert caught.value.status_code == 422
    return caught.value.fields


def test_valid_german_address_is_stripped_and_country_upper_cased() -> None:
    address = parse_address(_raw(name="  Ada Lovelace ", city=" Berlin", country=" de ", phone=" +49 30 1234567 "))
    assert address == Address(
        name="Ada Lovelace",
        line1="Invalidenstraße 1",
        line2="",
        city="Berlin",
        region="",
        postal_code="10115",
        country="DE",
        phone="+49 30 1234567",
    )
    assert address.as_dict() == {
        "name": "Ada Lovelace",
        "line1": "Invalidenstraße 1",
        "line2": "",
        "city": "Berlin",
        "region": "",
        "postal_code": "10115",
        "country": "DE",
        "phone": "+49 30 1234567",
    }


def test_missing_optional_keys_default_to_empty() -> None:
    raw = _raw()
    del raw["line2"], raw["region"]
    address = parse_address(raw)
    assert (address.line2, address.region, address.phone) == ("", "", "")


@pytest.mark.parametrize(
    ("country", "region", "entered", "normalised"),
    [
        ("DE", "", "10115", "10115"),
        ("AT", "", "1010", "1010"),
        ("FR", "", "75001", "75001"),
        ("NL", "", "1012ab", "1012 AB"),
        ("NL", "", " 1012  AB ", "1012 AB"),
        ("GB", "", "sw1a1aa", "SW1A 1AA"),
        ("GB", "", "m1  1ae", "M1 1AE"),
        ("GB", "", "EC1A 1BB", "EC1A 1BB"),
        ("US", "NY", "10001", "10001"),
        ("US", "NY", "10001-1234", "10001-1234"),
        ("CA", "ON", "k1a0b1", "K1A 0B1"),
        ("AU", "NSW", "2000", "2000"),
        ("SE", "", "11122", "111 22"),
        ("IE", "", "d02 x285", "D02 X285"),
        ("CH", "", "8001", "8001"),
    ],
)
def test_valid_postal_codes_are_normalised(country: str, region: str, entered: str, normalised: str) -> None:
    address = parse_address(_raw(country=country, region=region, postal_code=entered))
    assert address.postal_code == normalised
    assert address.country == country


@pytest.mark.parametrize(
    ("country", "region", "bad", "message"),
    [
        ("DE", "", "1011", "Enter a German postal code such as 10115."),
        ("DE", "", "101155", "Enter a German postal code such as 10115."),
        ("DE", "", "1O115", "Enter a German postal code such as 10115."),
        ("AT", "", "10100", "Enter an Austrian postal code such as 1010."),
        ("FR", "", "7500", "Enter a French postal code such as 75001."),
        ("NL", "", "0123 AB", "Enter a Dutch postal code such as 1012 AB."),
        ("NL", "", "1012 A", "Enter a Dutch postal code such as 1012 AB."),
        ("GB", "", "SW1A", "Enter a UK postcode such as SW1A 1AA."),
        ("GB", "", "12345", "Enter a UK postcode such as SW1A 1AA."),
        ("US", "NY", "1000", "Enter a ZIP code such as 10001 or 10001-1234."),
        ("US", "NY", "10001-12", "Enter a ZIP code such as 10001 or 10001-1234."),
        ("CA", "ON", "K1A 0B", "Enter a Canadian postal code such as K1A 0B1."),
        ("AU", "NSW", "200", "Enter an Australian postcode such as 2000."),
        ("IE", "", "D02 X285 12345", "Enter a valid postal code."),
        ("IE", "", "D02_X285", "Enter a valid postal code."),
    ],
)
def test_bad_postal_code_is_named_with_a_country_specific_message(
    country: str, region: str, bad: str, message: str
) -> None:
    assert _fields(_raw(country=country, region=region, postal_code=bad)) == {"postal_code": message}


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("name", "Enter the recipient's name."),
        ("line1", "Enter the street and house number."),
        ("city", "Enter the town or city."),
        ("postal_code", "Enter the postal code."),
        ("country", "Choose a country."),
    ],
)
def test_each_missing_required_field_is_named(field: str, message: str) -> None:
    assert _fields(_raw(**{field: "   "})) == {field: message}


def test_every_problem_is_reported_at_once() -> None:
    fields = _fields({"name": "", "line1": "", "city": "", "postal_code": "abc", "country": "US", "phone": "call me"})
    assert fields == {
        "name": "Enter the recipient's name.",
        "line1": "Enter the street and house number.",
        "city": "Enter the town or city.",
        "region": "Enter the state.",
        "postal_code": "Enter a ZIP code such as 10001 or 10001-1234.",
        "phone": "Enter a phone number using digits, such as +49 30 1234567.",
    }


@pytest.mark.parametrize(
    ("country", "postal_code", "message"),
    [("US", "10001", "Enter the state."), ("CA", "K1A 0B1", "Enter the province."), ("AU", "2000", None)],
)
def test_region_is_required_for_us_ca_au(country: str, postal_code: str, message: str | None) -> None:
    expected = message or "Enter the state or territory."
    assert _fields(_raw(country=country, postal_code=postal_code, region="")) == {"region": expected}


def test_region_is_optional_elsewhere() -> None:
    assert parse_address(_raw(country="DE", region="")).region == ""


def test_unsupported_country_is_named_and_postal_code_not_judged() -> None:
    assert "XX" not in SUPPORTED_COUNTRIES
    assert _fields(_raw(country="xx", postal_code="anything at all!")) == {
        "country": "We can't deliver to this country yet. Choose another country."
    }


def test_supported_countries_cover_the_brief() -> None:
    assert {"DE", "AT", "FR", "NL", "BE", "IT", "ES", "GB", "IE", "US", "CA", "AU", "CH", "DK", "SE"} <= (
        SUPPORTED_COUNTRIES
    )


def test_overlong_field_is_named() -> None:
    assert _fields(_raw(line2="x" * 201)) == {"line2": "Keep this under 200 characters."}


def test_normalise_postal_code_returns_none_for_invalid() -> None:
    assert normalise_postal_code("NL", "1012ab") == "1012 AB"
    assert normalise_postal_code("DE", "ABCDE") is None
