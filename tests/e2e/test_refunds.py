"""A manager refunds part of a shopper's order from the order page: the ledger and the payment status
update in place, without a reload; a wrong amount is said next to the field."""

from __future__ import annotations

from playwright.sync_api import Dialog, Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_checkout import _add, _checkout


def test_manager_refunds_part_of_an_order_and_the_panel_updates_in_place(phone: Page, tablet: Page) -> None:
    _add(phone, "Butter Croissant")
    _checkout(phone, "4242 4242 4242 4242")
    number = phone.get_by_test_id("order-number").inner_text().removeprefix("Order ")
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    tablet.get_by_role("link", name="Orders").first.click()
    tablet.get_by_role("link", name=number).click()
    expect(tablet.get_by_test_id("payment-status")).to_have_text("paid")
    tablet.evaluate("window.__sameDocument = true")  # gone if the page reloads

    confirmations: list[str] = []

    def accept(dialog: Dialog) -> None:
        confirmations.append(dialog.message)
        dialog.accept()

    tablet.on("dialog", accept)
    tablet.get_by_test_id("open-refund").click()
    tablet.get_by_label("Amount (up to").fill("lots")
    tablet.get_by_label("Reason").fill("Croissant was stale")
    tablet.get_by_test_id("refund").click()
    expect(tablet.get_by_test_id("amount-error")).to_have_text("Enter an amount such as 12.50.")
    screenshot(tablet, "order-refund-error-tablet")

    tablet.get_by_label("Amount (up to").fill("1.00")
    tablet.get_by_test_id("refund").click()
    expect(tablet.get_by_test_id("payment-notice")).to_have_text("Refunded.")
    expect(tablet.get_by_test_id("payment-status")).to_have_text("partially refunded")
    expect(tablet.get_by_test_id("order-payment-badge")).to_have_text("payment: partially refunded")
    expect(tablet.get_by_test_id("payment-ledger").locator("tr[data-kind=refund]")).to_contain_text(
        "Croissant was stale"
    )
    expect(tablet.get_by_test_id("refunded")).to_contain_text("1.00")
    expect(tablet.get_by_test_id("timeline").locator("li").first).to_contain_text("refunded 1.00 EUR")
    assert tablet.evaluate("window.__sameDocument === true"), "the page reloaded"
    assert confirmations == ["Give this money back to the customer?"] * 2
    screenshot(tablet, "order-refunded-tablet")
