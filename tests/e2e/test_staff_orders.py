"""A shopper's order, found and moved on by the shop's manager on a tablet."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_checkout import _add, _checkout
from tests.e2e.test_staff_nav import open_menu


def test_manager_finds_the_new_order_accepts_it_and_reads_the_timeline(phone: Page, tablet: Page) -> None:
    _add(phone, "Butter Croissant")
    _checkout(phone, "4242 4242 4242 4242")
    number = phone.get_by_test_id("order-number").inner_text().removeprefix("Order ")
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    tablet.get_by_role("link", name="Orders").first.click()
    expect(tablet.get_by_test_id("order-rows")).to_contain_text(number)
    tablet.get_by_label("Any payment").select_option("paid")
    tablet.get_by_label("From").fill("2020-01-01")
    tablet.get_by_role("button", name="Filter").click()
    expect(tablet.get_by_test_id("order-rows")).to_contain_text(number)
    screenshot(tablet, "staff-orders-tablet")
    tablet.get_by_role("link", name=number).click()
    expect(tablet.get_by_test_id("order-status")).to_have_text("placed")
    tablet.get_by_role("button", name="Mark accepted").click()
    expect(tablet.get_by_test_id("order-status")).to_have_text("accepted")
    expect(tablet.get_by_test_id("timeline")).to_contain_text(re.compile(r"placed → accepted"))
    expect(tablet.get_by_test_id("payment-ledger")).to_contain_text("authorize")
    screenshot(tablet, "staff-order-tablet")
    tablet.get_by_role("link", name="Payment", exact=True).click()
    expect(tablet.get_by_test_id("timeline")).not_to_contain_text("placed → accepted")


def test_manager_sets_the_boards_delay_and_a_wrong_value_is_said_inline(tablet: Page) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    open_menu(tablet, "Setup")
    tablet.get_by_role("link", name="Settings").first.click()
    delay = tablet.get_by_label("Board: delayed after (minutes)")
    delay.fill("0")
    tablet.get_by_role("button", name="Save operations").click()
    expect(tablet.get_by_text("Enter whole minutes from 1 to 1440.")).to_be_visible()
    screenshot(tablet, "settings-error-tablet")
    tablet.get_by_label("Board: delayed after (minutes)").fill("15")
    tablet.get_by_role("button", name="Save operations").click()
    expect(tablet.get_by_text("Settings saved.")).to_be_visible()
    expect(tablet.get_by_label("Board: delayed after (minutes)")).to_have_value("15")
