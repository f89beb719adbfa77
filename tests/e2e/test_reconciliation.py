"""A manager opens the reconciliation report, drills into a mismatch (a refund made at the provider that Till never
recorded), re-syncs it from the provider, and it clears."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import redis
from playwright.sync_api import Page, expect

from app.payments.sandbox._state import _PI_PREFIX
from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import LIVE_ENV, screenshot, sign_in
from tests.e2e.test_checkout import _add, _checkout


def test_manager_drills_into_a_mismatch_resyncs_it_and_it_clears(phone: Page, tablet: Page) -> None:
    _add(phone, "Butter Croissant")
    _checkout(phone, "4242 4242 4242 4242")
    number = phone.get_by_test_id("order-number").inner_text().removeprefix("Order ")

    sign_in(tablet, DEMO_ACCOUNTS[1].email)  # the manager
    tablet.get_by_role("link", name="Orders").first.click()
    tablet.get_by_role("link", name=number).click()
    link = tablet.get_by_test_id("provider-calls-link").first.get_attribute("href") or ""
    ref = parse_qs(urlsplit(link).query)["q"][0]

    # The provider refunds 1.00 of it (its dashboard): Till is not told.
    client = redis.Redis.from_url(LIVE_ENV["REDIS_URL"])
    try:
        stored = client.get(_PI_PREFIX + ref)
        assert isinstance(stored, bytes)
        state = json.loads(stored)
        assert state["captured"] > 100
        client.set(_PI_PREFIX + ref, json.dumps({**state, "refunded": 100}), keepttl=True)
    finally:
        client.close()

    tablet.goto("/staff/payments/reconciliation")
    tablet.get_by_test_id("run-now").click()
    expect(tablet.get_by_test_id("notice")).to_contain_text("Reconciled")
    expect(tablet.get_by_test_id("total-refund_missing_locally")).to_contain_text("1")
    expect(tablet.get_by_test_id("drift-row")).to_have_count(1)
    screenshot(tablet, "reconciliation-report-tablet")

    tablet.get_by_test_id("drill").click()
    expect(tablet.get_by_role("heading", name="Refund Till never recorded")).to_be_visible()
    expect(tablet.get_by_test_id("drift-ref")).to_have_text(ref)
    expect(tablet.get_by_test_id("drift-difference")).to_contain_text("1.00")
    screenshot(tablet, "reconciliation-drift-tablet")

    tablet.get_by_test_id("resync").click()
    expect(tablet.get_by_test_id("notice")).to_contain_text("it matches now")
    expect(tablet.get_by_test_id("drift-status")).to_have_text("cleared")
    screenshot(tablet, "reconciliation-cleared-tablet")

    tablet.get_by_test_id("back").click()
    expect(tablet.get_by_test_id("no-drifts")).to_be_visible()  # no open drift left
    # The refund is on the order's ledger now, recorded by reconciliation.
    tablet.get_by_role("link", name="Orders").first.click()
    tablet.get_by_role("link", name=number).click()
    expect(tablet.get_by_test_id("payment-ledger").locator("tr[data-kind=refund]")).to_contain_text("reconciliation")


def test_manager_engages_and_releases_a_kill_switch_from_settings(tablet: Page) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    tablet.goto("/staff/settings")
    tablet.get_by_test_id("switches-link").click()
    row = tablet.get_by_test_id("switch-receipts_paused")
    expect(row.get_by_test_id("state")).to_have_text("off")
    row.get_by_test_id("engage").click()  # no reason: said next to the field
    expect(tablet.get_by_test_id("switch-receipts_paused").get_by_role("alert")).to_have_text(
        "Say why (it goes in the audit trail)."
    )
    row = tablet.get_by_test_id("switch-receipts_paused")
    row.get_by_label("Why receipts paused").fill("Printer paper jam")
    row.get_by_test_id("engage").click()
    expect(tablet.get_by_test_id("notice")).to_have_text("Switch engaged.")
    expect(tablet.get_by_test_id("switch-receipts_paused").get_by_test_id("state")).to_have_text("on")
    screenshot(tablet, "kill-switches-tablet")
    tablet.get_by_test_id("switch-receipts_paused").get_by_test_id("release").click()
    expect(tablet.get_by_test_id("notice")).to_have_text("Switch released.")
    expect(tablet.get_by_test_id("switch-receipts_paused").get_by_test_id("state")).to_have_text("off")
    expect(tablet.get_by_test_id("switch-history")).to_contain_text("Printer paper jam")


def test_provider_off_checkout_says_so_on_the_phone_and_works_after_release(phone: Page, tablet: Page) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    tablet.goto("/staff/settings/switches")
    row = tablet.get_by_test_id("switch-provider_off")
    row.get_by_label("Why online card payments off").fill("Provider incident")
    row.get_by_test_id("engage").click()
    expect(tablet.get_by_test_id("switch-provider_off").get_by_test_id("state")).to_have_text("on")

    _add(phone, "Butter Croissant")
    phone.get_by_test_id("cart-link").click()
    phone.get_by_role("link", name="Checkout").click()
    phone.get_by_label("E-mail").fill("guest@example.com")
    phone.get_by_role("button", name="Continue to payment").click()
    expect(phone.get_by_test_id("payments-off")).to_contain_text("Card payments are switched off")
    expect(phone.get_by_test_id("pay-form")).to_have_count(0)
    screenshot(phone, "checkout-payments-off-phone")

    tablet.get_by_test_id("switch-provider_off").get_by_test_id("release").click()
    expect(tablet.get_by_test_id("switch-provider_off").get_by_test_id("state")).to_have_text("off")
    phone.reload()
    expect(phone.get_by_test_id("pay-form")).to_be_visible()
