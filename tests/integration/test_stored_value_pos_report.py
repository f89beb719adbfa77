"""The shift report with stored value (issue 15): tenders by kind — cash, card, gift card, store credit, loyalty
points — for the sales and for what refunds at the till gave back; only cash counts in the drawer's expected amount
(API, printable page, CSV)."""

from __future__ import annotations

import csv
import io

import pytest

from app.config import Settings
from app.core.encryption import install_keyring
from app.core.tenancy import bind_store
from app.stored_value.services import GiftCardService, StoreCreditService
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, open_till, sale_body
from tests.integration.test_loyalty_pos import _member


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def test_the_shift_report_counts_each_tender_kind_and_keeps_stored_value_out_of_the_drawer(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions, float_minor=5000)
    customer = await _member(sessions, till, 1_000)  # 1,000 points, worth €10.00
    async with sessions() as session, session.begin():
        bind_store(session, till.store.id)
        code = (await GiftCardService(session, till.store.id).issue(1000, "EUR", principal=None))[0].code
        await StoreCreditService(session, till.store.id).issue(customer, 2000, "EUR", "return", principal=None)
    sales = [
        sale_body(till, {"MUG-1": 1}, tenders=[
            {"kind": "gift_card", "amount_minor": 1000, "code": code},
            {"kind": "cash", "amount_minor": 400, "tendered_minor": 500},
        ]),
        sale_body(till, {"MUG-1": 1}, customer_id=customer, tenders=[{"kind": "store_credit", "amount_minor": 1400}]),
        sale_body(till, {"MUG-1": 1}, customer_id=customer, tenders=[
            {"kind": "loyalty", "amount_minor": 900},
            {"kind": "cash", "amount_minor": 500, "tendered_minor": 500},
        ]),
    ]  # fmt: skip
    numbers = []
    for sale in sales:
        sold = await client.post(f"{API}/sales", json=sale, headers=till.headers)
        assert sold.status_code == 201, sold.text
        numbers.append(sold.json()["order_number"])
    for number in numbers[:2]:  # the gift card sale and the store credit sale come back, to what paid
        refund = {"order_number": number, "register_id": str(till.register_id), "shift_id": str(till.shift_id),
                  "reason": "changed their mind", "to": "original"}  # fmt: skip
        answered = await client.post(f"{API}/refunds", json=refund, headers=till.headers)
        assert answered.status_code in (200, 201), answered.text

    report = (await client.get(f"{API}/shifts/{till.shift_id}/report", headers=till.headers)).json()
    assert report["sales_by_tender"] == {"cash": 900, "gift_card": 1000, "loyalty": 900, "store_credit": 1400}
    assert report["refunds_by_tender"] == {"cash": 400, "gift_card": 1000, "store_credit": 1400}
    assert report["sales_minor"] == 4200 and report["refunds_minor"] == 2800
    kinds = [(t["kind"], t["label"], t["sales_minor"], t["refunds_minor"], t["in_drawer"]) for t in report["tenders"]]
    assert kinds == [
        ("cash", "Cash", 900, 400, True),
        ("card", "Card", 0, 0, False),
        ("gift_card", "Gift card", 1000, 1000, False),
        ("store_credit", "Store credit", 1400, 1400, False),
        ("loyalty", "Loyalty points", 900, 0, False),
    ]  # fmt: skip
    assert (report["stored_value_sales_minor"], report["stored_value_refunds_minor"]) == (3300, 2400)
    # The drawer: float + cash sales − cash refunds; the gift card, store credit and points never count.
    assert report["expected_cash_minor"] == 5000 + 900 - 400

    page = await client.get(f"/pos/shifts/{till.shift_id}/report", headers=till.headers)
    assert page.status_code == 200
    for figure, text in (("sales_cash", "€9.00"), ("sales_card", "€0.00"), ("sales_gift_card", "€10.00"),
                         ("sales_store_credit", "€14.00"), ("sales_loyalty", "€9.00"), ("refunds_cash", "€4.00"),
                         ("refunds_gift_card", "€10.00"), ("refunds_store_credit", "€14.00"),
                         ("refunds_loyalty", "€0.00"), ("expected", "€55.00")):  # fmt: skip
        assert f'data-figure="{figure}">{text}<' in page.text, figure
    assert "Paid by gift card" in page.text and "Paid by loyalty points" in page.text
    assert "Refunds to store credit" in page.text and "Refunds in cash" in page.text
    assert "move their balances, not the cash in the drawer" in page.text

    download = await client.get(f"/pos/shifts/{till.shift_id}/report.csv", headers=till.headers)
    rows = dict(csv.reader(io.StringIO(download.text)))
    assert {k: rows[k] for k in rows if k.startswith(("sales_", "refunds_")) and k.endswith("_minor")} == {
        "sales_minor": "4200", "sales_cash_minor": "900", "sales_card_minor": "0", "sales_gift_card_minor": "1000",
        "sales_store_credit_minor": "1400", "sales_loyalty_minor": "900", "sales_stored_value_minor": "3300",
        "refunds_minor": "2800", "refunds_cash_minor": "400", "refunds_card_minor": "0",
        "refunds_gift_card_minor": "1000", "refunds_store_credit_minor": "1400", "refunds_loyalty_minor": "0",
        "refunds_stored_value_minor": "2400",
    }  # fmt: skip
    assert rows["expected_cash_minor"] == "5500"

    closed = await client.post(f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 5500, "note": ""},
                               headers=till.headers)  # fmt: skip
    assert closed.status_code == 200, closed.text
    assert (closed.json()["expected_cash_minor"], closed.json()["over_short_minor"]) == (5500, 0)
