"""An owner sets up order ingestion; a POS app sends signed orders; the manager reads the attempts on a tablet."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from app.catalog.demo_data import PRODUCTS
from app.core.money import Money
from app.payments.signing import sign
from app.seed import DEMO_ACCOUNTS, DEMO_SLUG
from app.tax.providers import BuiltinTax, TaxableLine
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_staff_nav import open_menu


def _order(client_order_id: str) -> dict[str, Any]:
    product = next(p for p in PRODUCTS if p.variants[0].stock >= 5)
    variant = product.variants[0]
    amount = Money(2 * variant.price_minor, "EUR")
    tax = BuiltinTax.from_settings({}, "EUR").quote(
        [TaxableLine("0", amount, product.tax_class)], country="DE", prices_include_tax=True
    )
    return {
        "client_order_id": client_order_id,
        "store": DEMO_SLUG,
        "customer": {"email": "walk-in@example.com"},
        "items": [{"sku": variant.sku, "quantity": 2, "unit_price_minor": variant.price_minor}],
        "totals": {
            "currency": "EUR",
            "subtotal_minor": amount.amount_minor,
            "tax_minor": tax.total_tax.amount_minor,
            "total_minor": amount.amount_minor,
        },
        "payment": {"status": "paid"},
    }


def _send(base: str, token: str, secret: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = {"authorization": f"Bearer {token}", "x-till-signature": sign(raw, secret, int(time.time()))}
    return httpx.post(f"{base}/webhooks/orders/ingest", content=raw, headers=headers)


def test_owner_sets_up_ingestion_and_the_manager_reads_the_attempts(tablet: Page, live_server: str) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[0].email)
    tablet.goto("/staff/api-tokens")
    tablet.get_by_label("Name").fill("POS app")
    tablet.get_by_label("Role").select_option("cashier")
    tablet.get_by_role("button", name="Create token").click()
    token = tablet.get_by_test_id("issued-token").locator("code").inner_text().strip()
    open_menu(tablet, "Setup")
    tablet.get_by_role("link", name="Ingestion", exact=True).click()
    expect(tablet.get_by_test_id("no-secret")).to_be_visible()
    tablet.get_by_role("button", name="Create secret").click()
    secret = tablet.get_by_test_id("issued-secret").locator("code").inner_text().strip()
    assert secret.startswith("tis_")
    screenshot(tablet, "ingestion-secret-tablet")

    created = _send(live_server, token, secret, _order("pos-e2e-1"))
    assert created.status_code == 201, created.text
    assert _send(live_server, token, secret, _order("pos-e2e-1")).status_code == 200
    wrong_price = _order("pos-e2e-2")
    wrong_price["items"][0]["unit_price_minor"] += 50
    assert _send(live_server, token, secret, wrong_price).status_code == 422
    assert _send(live_server, token, "tis_wrong", _order("pos-e2e-3")).status_code == 400
    number = created.json()["order"]["number"]

    tablet.get_by_role("button", name="Sign out").click()
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    open_menu(tablet, "Setup")
    tablet.get_by_role("link", name="Ingestion", exact=True).click()
    rows = tablet.get_by_test_id("attempt-rows")
    expect(rows.locator("tbody tr")).to_have_count(4)
    expect(rows).to_contain_text(f"#{number}")
    expect(rows).to_contain_text("does not match the catalog")
    expect(rows).to_contain_text("no matching signature")
    expect(tablet.get_by_test_id("secret-hint")).to_have_text(f"tis_…{secret[-4:]}")
    screenshot(tablet, "ingestion-attempts-tablet")
    tablet.get_by_label("Outcome").select_option("rejected")
    tablet.get_by_role("button", name="Filter").click()
    expect(rows.locator("tbody tr")).to_have_count(2)
    tablet.get_by_role("link", name="Board").click()
    expect(tablet.get_by_test_id(f"card-{number}")).to_contain_text("ingested")
