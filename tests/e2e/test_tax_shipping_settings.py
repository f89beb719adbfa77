from __future__ import annotations

from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import screenshot, sign_in


def test_manager_previews_and_saves_tax_rates(tablet: Page) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[0].email)
    tablet.goto("/staff/settings")
    tablet.get_by_role("link", name="Tax →").click()
    expect(tablet.get_by_role("heading", name="Tax", exact=True)).to_be_visible()
    expect(tablet.get_by_test_id("preview-tax")).to_have_text("€3.03")  # the saved rules, without a request

    rate = tablet.get_by_label("standard rate, row 1", exact=True)
    rate.fill("25")
    rate.dispatch_event("change")  # htmx: the preview follows the unsaved value
    expect(tablet.get_by_test_id("preview-tax")).to_have_text("€3.63")
    screenshot(tablet, "tax-settings-preview-tablet")

    rate.fill("250")
    tablet.get_by_role("button", name="Save tax settings").click()
    expect(tablet.locator("#e-jurisdictions-0-rate-0")).to_have_text("A rate can't be over 100 %.")
    expect(tablet.get_by_label("standard rate, row 1", exact=True)).to_have_value("250")
    screenshot(tablet, "tax-settings-error-tablet")

    tablet.get_by_label("standard rate, row 1", exact=True).fill("19")
    tablet.get_by_role("button", name="Save tax settings").click()
    expect(tablet.get_by_text("Tax settings saved. New checkouts use them now.")).to_be_visible()
    expect(tablet.get_by_label("standard rate, row 1", exact=True)).to_have_value("19")


def test_manager_previews_and_saves_shipping(tablet: Page) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[0].email)
    tablet.goto("/staff/settings")
    tablet.get_by_role("link", name="Shipping →").click()
    expect(tablet.get_by_role("heading", name="Shipping", exact=True)).to_be_visible()
    preview = tablet.locator("#shipping-preview")
    expect(preview).to_contain_text("Standard (Germany)")

    postal_code = tablet.get_by_label("Postal code", exact=True)
    postal_code.fill("10435")
    postal_code.dispatch_event("change")
    expect(preview).to_contain_text("Bike courier")
    screenshot(tablet, "shipping-settings-preview-tablet")

    tablet.get_by_label("Where and how to pick up").fill("Side door, ring twice.")
    tablet.get_by_role("button", name="Save shipping settings").click()
    expect(tablet.get_by_text("Shipping settings saved.")).to_be_visible()
    expect(tablet.get_by_label("Where and how to pick up")).to_have_value("Side door, ring twice.")
