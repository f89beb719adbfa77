"""A shopper pays; the shop's manager finds the payment on the payments list on a tablet."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_checkout import _add, _checkout
from tests.e2e.test_staff_nav import open_menu


def test_manager_finds_a_payment_filters_the_list_and_reads_the_totals(phone: Page, tablet: Page) -> None:
    _add(phone, "Butter Croissant")
    _checkout(phone, "4242 4242 4242 4242")
    number = phone.get_by_test_id("order-number").inner_text().removeprefix("Order ")
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    open_menu(tablet, "Money")
    tablet.get_by_role("link", name="Payments").first.click()
    expect(tablet.get_by_test_id("payment-rows")).to_contain_text(number)
    expect(tablet.get_by_test_id("payment-rows")).to_contain_text("•••• 4242")
    expect(tablet.get_by_test_id("payment-totals")).to_contain_text("captured")
    tablet.get_by_label("Any order payment").select_option("paid")
    tablet.get_by_label("Any payment status").select_option("captured")
    tablet.get_by_label("Any provider").select_option("sandbox")
    tablet.get_by_label("From").fill("2020-01-01")
    tablet.get_by_role("button", name="Filter").click()
    expect(tablet.get_by_test_id("payment-rows")).to_contain_text(number)
    screenshot(tablet, "staff-payments-tablet")
    tablet.get_by_label("Order number").fill("not a number")
    tablet.get_by_role("button", name="Filter").click()
    expect(tablet.get_by_text("Enter an order number, such as 1042.")).to_be_visible()
    expect(tablet.get_by_test_id("payment-rows")).to_contain_text("Correct the filters to see payments.")
    screenshot(tablet, "staff-payments-error-tablet")
    tablet.get_by_label("Order number").fill(number)
    tablet.get_by_role("button", name="Filter").click()
    tablet.get_by_role("link", name=number).click()
    expect(tablet.get_by_test_id("order-status")).to_have_text("placed")
