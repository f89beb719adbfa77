"""The POS's pure pieces: ticket pricing (discounts allocated exactly, tax per line), discount limits, tenders and
change, a returned line's share, the store's POS settings, and the canonical JSON an offline sale is checked by."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import ValidationFailed
from app.core.rbac import Role
from app.pos.canonical import canonical_json, checksum, checksum_matches, key_from_text, key_text, sale_fingerprint
from app.pos.pricing import TenderInput, TicketLine, discounts_over_limit, price_ticket, settle_tenders
from app.pos.refunds import line_share
from app.pos.settings import PosSettings
from app.tax.providers import DEFAULT_TAX_RULES, BuiltinTax

TAX = BuiltinTax(DEFAULT_TAX_RULES, "EUR")


def line(quantity: int, price: int, discount: int = 0, tax_class: str = "standard") -> TicketLine:
    return TicketLine(uuid.uuid4(), quantity, price, discount, tax_class)


def price(lines: list[TicketLine], ticket_discount: int = 0, *, include: bool = True) -> tuple[int, int, int]:
    priced = price_ticket(lines, ticket_discount, tax=TAX, country="DE", prices_include_tax=include, currency="EUR")
    return priced.total_minor, priced.discount_minor, priced.tax_minor


def test_a_ticket_is_priced_line_discounts_first_then_the_ticket_discount_shared_out() -> None:
    lines = [line(3, 240, 20, "reduced"), line(1, 1400)]
    priced = price_ticket(lines, 101, tax=TAX, country="DE", prices_include_tax=True, currency="EUR")
    assert [p.discount_minor for p in priced.lines] == [20 + 34, 67]  # 101 in proportion to 700 and 1400
    assert [p.total_minor for p in priced.lines] == [666, 1333]
    assert (priced.subtotal_minor, priced.discount_minor, priced.total_minor) == (2120, 121, 1999)
    assert [p.tax_rate_bps for p in priced.lines] == [700, 1900]
    assert priced.tax_minor == sum(p.tax_minor for p in priced.lines) == 44 + 213


def test_tax_on_top_when_prices_exclude_it() -> None:
    assert price([line(2, 1000)], include=False) == (2380, 0, 380)
    assert price([line(2, 1000, tax_class="exempt")], include=False) == (2000, 0, 0)


@given(
    st.lists(
        st.tuples(
            st.integers(1, 20), st.integers(0, 5000), st.integers(0, 100), st.sampled_from(["standard", "reduced"])
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 100),
    st.booleans(),
)
def test_the_parts_always_add_up(raw: list[tuple[int, int, int, str]], ticket_percent: int, include: bool) -> None:
    lines = [line(q, p, p * q * d // 100, c) for q, p, d, c in raw]
    base = sum(x.gross_minor - x.discount_minor for x in lines)
    ticket = base * ticket_percent // 100
    priced = price_ticket(lines, ticket, tax=TAX, country="DE", prices_include_tax=include, currency="EUR")
    assert priced.discount_minor == sum(x.discount_minor for x in lines) + ticket
    assert priced.total_minor == sum(p.total_minor for p in priced.lines)
    assert priced.tax_minor == sum(p.tax_minor for p in priced.lines)
    net = priced.subtotal_minor - priced.discount_minor
    assert priced.total_minor == (net if include else net + priced.tax_minor)
    assert all(p.total_minor >= 0 for p in priced.lines)


@pytest.mark.parametrize(
    ("lines", "ticket", "field"),
    [
        ([], 0, "lines"),
        ([line(0, 100)], 0, "lines.0.quantity"),
        ([line(10_000, 1)], 0, "lines.0.quantity"),
        ([line(1, -1)], 0, "lines.0.unit_price_minor"),
        ([line(2, 100, 201)], 0, "lines.0.discount_minor"),
        ([line(2, 100, -1)], 0, "lines.0.discount_minor"),
        ([line(2, 100, 50)], 151, "ticket_discount_minor"),
        ([line(2, 100)], -1, "ticket_discount_minor"),
    ],
)
def test_a_ticket_that_is_not_one_names_its_field(lines: list[TicketLine], ticket: int, field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        price(lines, ticket)
    assert field in refused.value.fields


def test_discount_limits_by_what_each_discount_is_taken_from() -> None:
    lines = [line(1, 1000, 100), line(1, 1000, 101)]
    assert discounts_over_limit(lines, 0, 1000) == {"lines.1.discount_minor": "Over the discount limit of 10 %."}
    assert discounts_over_limit(lines, 0, None) == {}
    assert discounts_over_limit([line(1, 1000)], 100, 1000) == {}
    assert set(discounts_over_limit([line(1, 1000, 100)], 91, 1000)) == {"ticket_discount_minor"}  # of 9.00
    assert discounts_over_limit([line(1, 1000, 1000)], 0, 10_000) == {}
    assert PosSettings().discount_limit_bps(Role.CASHIER) == PosSettings().discount_limit_bps(Role.STAFF) == 1000
    assert PosSettings().discount_limit_bps(Role.MANAGER) is None


def test_cash_over_what_is_owed_is_change_and_a_card_never_is() -> None:
    card = uuid.uuid4()
    tenders, change = settle_tenders([TenderInput("cash", 480, 500)], 480)
    assert ([(t.amount_minor, t.tendered_minor, t.change_minor) for t in tenders], change) == ([(480, 500, 20)], 20)
    tenders, change = settle_tenders(
        [TenderInput("card", 1000, reader_payment_id=card), TenderInput("cash", 500, 2000)], 1200
    )
    assert [(t.kind, t.amount_minor, t.change_minor) for t in tenders] == [("card", 1000, 0), ("cash", 200, 1800)]
    assert change == 1800
    other_card = uuid.uuid4()
    tenders, change = settle_tenders(
        [TenderInput("card", 300, reader_payment_id=card), TenderInput("card", 180, reader_payment_id=other_card)], 480
    )
    assert [(t.kind, t.amount_minor, t.reader_payment_id) for t in tenders] == [
        ("card", 300, card),
        ("card", 180, other_card),
    ]
    assert change == 0
    tenders, change = settle_tenders([TenderInput("cash", 300), TenderInput("cash", 300)], 480)
    assert [(t.amount_minor, t.tendered_minor, t.change_minor) for t in tenders] == [(300, 300, 0), (180, 300, 120)]
    assert settle_tenders([], 0) == ([], 0)
    for given_tenders, total, field in (
        ([TenderInput("card", 500, reader_payment_id=card)], 480, "tenders.0.amount_minor"),
        ([TenderInput("cash", 400)], 480, "tenders"),
        ([], 480, "tenders"),
        ([TenderInput("cash", 480, 470)], 480, "tenders.0.tendered_minor"),
        ([TenderInput("cash", 0)], 0, "tenders.0.amount_minor"),
        ([TenderInput("cheque", 480)], 480, "tenders.0.kind"),
        ([TenderInput("card", 480)], 480, "tenders.0.reader_payment_id"),
        (
            [TenderInput("card", 240, reader_payment_id=card), TenderInput("card", 240, reader_payment_id=card)],
            480,
            "tenders.1.reader_payment_id",  # several cards may pay a sale, but one card payment only once
        ),
    ):
        with pytest.raises(ValidationFailed) as refused:
            settle_tenders(given_tenders, total)
        assert field in refused.value.fields, given_tenders


@given(st.integers(0, 100_000), st.integers(1, 50), st.data())
def test_partial_returns_of_a_line_add_up_to_its_total(total: int, quantity: int, data: st.DataObject) -> None:
    returned, parts = 0, []
    while returned < quantity:
        step = data.draw(st.integers(1, quantity - returned))
        parts.append(line_share(total, quantity, returned, step))
        returned += step
    assert sum(parts) == total and all(p >= 0 for p in parts)


def test_pos_settings_defaults_overrides_and_switches() -> None:
    assert PosSettings.of({}).limits() == {
        "offline_tenders": ["cash"],
        "max_offline_sale_minor": 20_000,
        "max_offline_total_minor": 100_000,
        "max_offline_hours": 24,
    }
    custom = PosSettings.of({"pos": {"cashier_discount_limit_bps": 2500, "offline_tenders": ["cash", "card"],
                                     "max_offline_sale_minor": None, "max_offline_hours": "x"}})  # fmt: skip
    assert custom.cashier_discount_limit_bps == 2500 and custom.offline_tenders == ("cash", "card")
    assert (custom.max_offline_sale_minor, custom.max_offline_total_minor, custom.max_offline_hours) == (
        None,
        100_000,
        24,
    )
    assert PosSettings.of({"pos": {"cashier_discount_limit_bps": -5}}).cashier_discount_limit_bps == 1000
    assert PosSettings.of({"pos": "nonsense"}) == PosSettings()


SALE = {
    "client_sale_id": "0193a6f2-5c1e-7b7a-9f1e-2d3c4b5a6978",
    "lines": [
        {"variant_id": "v1", "quantity": 2, "unit_price_minor": 240, "discount_minor": 0, "note": "Crème brûlée 🙂"}
    ],
    "total_minor": 480,
    "manager_pin": None,
    "offline": True,
}


def test_canonical_json_is_pythons_json_dumps_sorted_compact_and_utf8() -> None:
    text = canonical_json(SALE)
    assert text == json.dumps(SALE, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert text.startswith(b'{"client_sale_id":') and b", " not in text and b": " not in text
    assert "Crème brûlée 🙂".encode() in text
    assert (
        canonical_json({"b": {"d": 1, "c": [2, {"z": 0, "a": 1}]}, "a": None})
        == b'{"a":null,"b":{"c":[2,{"a":1,"z":0}],"d":1}}'
    )
    with pytest.raises(ValueError, match="integers only"):
        canonical_json({"total": 4.8})


def test_the_checksum_is_hmac_sha256_of_the_canonical_json_and_compared_safely() -> None:
    key = bytes(range(32))
    mac = checksum(key, SALE)
    assert mac == hmac.new(key, canonical_json(SALE), hashlib.sha256).hexdigest()
    assert checksum_matches(key, SALE, mac) and checksum_matches(key, SALE, mac.upper())
    reordered = json.loads(json.dumps(SALE, sort_keys=False))
    assert checksum_matches(key, dict(reversed(list(reordered.items()))), mac)
    assert not checksum_matches(key, {**SALE, "total_minor": 481}, mac)
    assert not checksum_matches(b"x" * 32, SALE, mac)
    for bad in (None, 5, "", mac[:-1], mac + "0"):
        assert not checksum_matches(key, SALE, bad)
    assert sale_fingerprint(SALE) == hashlib.sha256(canonical_json(SALE)).hexdigest()


def test_the_offline_key_travels_as_unpadded_base64url() -> None:
    key = bytes(range(200, 232))
    text = key_text(key)
    assert "=" not in text and len(text) == 43 and key_from_text(text) == key
    with pytest.raises(ValueError):
        key_from_text(key_text(b"short"))
    with pytest.raises(ValueError):
        key_from_text("not base64!")
