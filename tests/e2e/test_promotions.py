"""A manager creates 10 % off with a minimum spend on a tablet; a shopper on a phone is told how much more to spend,
applies the code, sees each line's discount and pays; the order page, the board and the promotion's report show it."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import TABLET, screenshot, sign_in
from tests.e2e.test_checkout import _add

MANAGER = next(a.email for a in DEMO_ACCOUNTS if a.email.startswith("manager@"))
LIVE_WITHIN_MS = 10_000


def _create_promotion(tablet: Page) -> None:
    sign_in(tablet, MANAGER)
    tablet.goto("/staff")
    tablet.get_by_role("link", name="Promotions").first.click()
    expect(tablet.get_by_role("heading", name="Promotions")).to_be_visible()
    tablet.get_by_role("link", name="New promotion").click()
    tablet.get_by_label("Name (for your staff and the receipt)").fill("Ten percent over five")
    tablet.get_by_label("Code", exact=True).fill("phone10")
    expect(tablet.get_by_test_id("code-check")).to_have_text("PHONE10 is free.")  # checked as it is typed
    tablet.get_by_label("Percent off").fill("10")
    tablet.get_by_label("Minimum spend (EUR)").fill("5.00")
    screenshot(tablet, "promotion-form-tablet")
    tablet.get_by_role("button", name="Create promotion").click()
    expect(tablet.get_by_test_id("promotion-summary")).to_have_text("10 % off over €5.00")
    expect(tablet.get_by_test_id("promotion-code")).to_have_text("PHONE10")
    expect(tablet.get_by_test_id("promotion-state")).to_have_text("active")


def _apply(phone: Page, code: str) -> None:
    box = phone.get_by_test_id("promo-code")
    box.get_by_label("Discount code").fill(code)
    box.get_by_role("button", name="Apply").click()


def test_a_manager_creates_ten_percent_off_and_a_shopper_on_a_phone_uses_it(
    browser: Browser, live_server: str, phone: Page
) -> None:
    context = browser.new_context(viewport=TABLET, base_url=live_server)
    tablet = context.new_page()
    try:
        _create_promotion(tablet)
        promotion_url = tablet.url
        tablet.goto("/staff/board")
        expect(tablet.get_by_test_id("connection")).to_have_text("Live", timeout=LIVE_WITHIN_MS)

        _add(phone, "Butter Croissant")  # 2.40: below the minimum
        phone.get_by_test_id("cart-link").click()
        _apply(phone, "phone10")
        expect(phone.get_by_test_id("code-error")).to_have_text("Spend €2.60 more to use this code.")
        expect(phone.get_by_test_id("line-discount")).to_have_count(0)  # nothing changed
        screenshot(phone, "promotion-cart-refused-phone")
        _add(phone, "Chocolate Chip Cookie")  # 2.60: the cart is 5.00 now
        phone.get_by_test_id("cart-link").click()
        _apply(phone, "phone10")
        expect(phone.get_by_test_id("code-result")).to_have_text("Code PHONE10 applied.")
        discounts = phone.get_by_test_id("line-discount")
        expect(discounts).to_have_text(["−€0.24 · PHONE10", "−€0.26 · PHONE10"])
        expect(phone.get_by_test_id("cart-discount")).to_have_text("−€0.50")
        screenshot(phone, "promotion-cart-phone")

        phone.get_by_role("link", name="Checkout").click()
        phone.get_by_label("E-mail").fill("promo@example.com")
        phone.get_by_role("button", name="Continue to payment").click()
        expect(phone.get_by_test_id("applied-code")).to_have_text("PHONE10")
        expect(phone.get_by_test_id("totals").get_by_test_id("line-discount")).to_have_count(2)
        expect(phone.get_by_test_id("discount")).to_have_text("−€0.50")
        expect(phone.get_by_test_id("total")).to_have_text("€4.50")
        phone.get_by_label("Card number").fill("4242 4242 4242 4242")
        phone.get_by_label("Expiry (MM/YY)").fill("12/34")
        phone.get_by_label("Security code").fill("123")
        screenshot(phone, "promotion-review-phone")
        phone.get_by_test_id("pay").click()

        expect(phone.get_by_test_id("order-number")).to_have_text(re.compile(r"Order #\d+"))
        expect(phone.get_by_test_id("payment-status")).to_have_text("paid")
        expect(phone.get_by_test_id("discount")).to_have_text("−€0.50")
        expect(phone.get_by_test_id("line-discount")).to_have_count(2)
        expect(phone.get_by_test_id("total")).to_have_text("€4.50")
        screenshot(phone, "promotion-order-phone")
        number = phone.get_by_test_id("order-number").inner_text().removeprefix("Order #")

        card = tablet.get_by_test_id(f"card-{number}")
        expect(card).to_be_visible(timeout=LIVE_WITHIN_MS)  # live, no reload
        expect(tablet.get_by_test_id(f"discount-{number}")).to_have_text("−€0.50 · PHONE10")
        screenshot(tablet, "promotion-board-tablet")
        card.get_by_role("link", name=f"#{number}").click()
        expect(tablet.get_by_test_id("order-discount")).to_have_text("−€0.50")
        expect(tablet.get_by_test_id("line-discount")).to_have_count(2)
        screenshot(tablet, "promotion-order-detail-tablet")

        tablet.goto(promotion_url)
        expect(tablet.get_by_test_id("usage-orders")).to_have_text("1")
        expect(tablet.get_by_test_id("usage-discount")).to_have_text("€0.50")
        expect(tablet.get_by_test_id("usage-history")).to_contain_text("promo@example.com")
        screenshot(tablet, "promotion-report-tablet")
        tablet.goto("/staff/promotions")
        row = tablet.get_by_test_id("promotion-rows").locator("tr", has_text="PHONE10")
        expect(row).to_contain_text("10 % off over €5.00")
        expect(row.locator("td.num").first).to_have_text("1")
        screenshot(tablet, "promotion-list-tablet")
    finally:
        context.close()
