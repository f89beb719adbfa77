"""Loyalty end to end: a manager sets up the program (a bad value is refused next to its field), a shopper signs
up, sees what the cart earns, pays, and the live worker's outbox consumer puts the points on the shopper's points
page; the manager finds the member. Screenshots: tablet for staff, phone for the shop."""

from __future__ import annotations

import re
import time
import uuid

from playwright.sync_api import Browser, Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import TABLET, screenshot, sign_in

MANAGER = next(a.email for a in DEMO_ACCOUNTS if a.email.startswith("manager@"))


def _set_up_program(tablet: Page) -> None:
    sign_in(tablet, MANAGER)
    tablet.goto("/staff/loyalty")
    form = tablet.get_by_test_id("loyalty-form")
    form.get_by_label("Customers earn and spend points").check()
    form.get_by_label("Points per EUR 1 spent").fill("ten")
    form.get_by_role("button", name="Save loyalty program").click()
    expect(tablet.locator("#e-points_per_unit")).to_have_text("A whole number.")
    screenshot(tablet, "loyalty-settings-error-tablet")
    form.get_by_label("Points per EUR 1 spent").fill("10")
    form.get_by_label("Tier name, row 2").fill("Gold")
    form.get_by_label("From points, row 2").fill("5000")
    form.get_by_label("Multiplier, row 2").fill("1.5")
    form.get_by_label("Fewest points per use").fill("100")
    form.get_by_role("button", name="Save loyalty program").click()
    expect(tablet.get_by_text("Loyalty program saved. Paid orders earn points from now on.")).to_be_visible()
    expect(tablet.get_by_label("Tier name, row 2")).to_have_value("Gold")
    screenshot(tablet, "loyalty-settings-tablet")


def _turn_off(tablet: Page) -> None:
    """Leave the demo store as other e2e files expect it."""
    tablet.goto("/staff/loyalty")
    tablet.get_by_label("Customers earn and spend points").uncheck()
    tablet.get_by_role("button", name="Save loyalty program").click()
    expect(tablet.get_by_text("Loyalty program saved. It is off.")).to_be_visible()


def test_a_shopper_earns_points_on_a_paid_order_and_sees_them(tablet: Page, phone: Page) -> None:
    _set_up_program(tablet)
    try:
        email = f"points-{uuid.uuid4().hex[:6]}@example.com"
        phone.goto("/s/demo/account")
        signup = phone.locator("form[action$='/account/signup']")
        signup.locator("input[name=name]").fill("Pia Points")  # both forms' fields share ids: by name
        signup.locator("input[name=email]").fill(email)
        signup.locator("input[name=password]").fill("long-enough-pw")
        signup.get_by_role("button", name="Create account").click()
        expect(phone.get_by_role("heading", name="Hello, Pia Points")).to_be_visible()
        expect(phone.get_by_test_id("account-points")).to_contain_text("0 points")

        phone.goto("/s/demo")
        phone.get_by_role("link", name=re.compile("Butter Croissant")).first.click()
        phone.get_by_role("button", name="Add to cart").click()
        expect(phone.get_by_test_id("added-message")).to_contain_text("Added to your cart.")
        phone.get_by_test_id("cart-link").click()
        expect(phone.get_by_test_id("cart-points")).to_have_text(re.compile(r"Points this order earns \d+"))
        earns = int(phone.get_by_test_id("cart-points").inner_text().split()[-1].replace(",", ""))
        screenshot(phone, "loyalty-cart-phone")
        phone.get_by_role("link", name="Checkout").click()
        phone.get_by_role("button", name="Continue to payment").click()
        phone.get_by_label("Card number").fill("4242 4242 4242 4242")
        phone.get_by_label("Expiry (MM/YY)").fill("12/34")
        phone.get_by_label("Security code").fill("123")
        phone.get_by_test_id("pay").click()
        expect(phone.get_by_test_id("payment-status")).to_have_text("paid")

        # The worker's outbox consumer earns the points; reload until they are there (a deadline, no sleep-assert).
        deadline = time.monotonic() + 20
        while True:
            phone.goto("/s/demo/account/points")
            if phone.get_by_test_id("points-balance").inner_text() == f"{earns:,}" or time.monotonic() > deadline:
                break
            phone.wait_for_timeout(250)
        expect(phone.get_by_test_id("points-balance")).to_have_text(f"{earns:,}")
        expect(phone.get_by_test_id("points-tier")).to_have_text("Member")
        expect(phone.get_by_test_id("points-history")).to_contain_text(re.compile(rf"Earned on order #\d+\s*\+{earns}"))
        screenshot(phone, "loyalty-points-phone")

        tablet.goto(f"/staff/loyalty?q={email}")
        tablet.get_by_role("link", name=email).click()
        expect(tablet.get_by_test_id("member-balance")).to_have_text(f"{earns:,}")
        expect(tablet.get_by_test_id("member-accruals")).to_contain_text("Member")
        screenshot(tablet, "loyalty-member-tablet")
    finally:
        _turn_off(tablet)


CASHIER = DEMO_ACCOUNTS[3].email
REGISTER = "Points counter"  # its own register in the shared demo store


def test_a_cashier_takes_a_customers_points_and_cash(tablet: Page, phone: Page, browser: Browser) -> None:
    _set_up_program(tablet)
    try:
        email = f"till-{uuid.uuid4().hex[:6]}@example.com"
        phone.goto("/s/demo/account")
        signup = phone.locator("form[action$='/account/signup']")
        signup.locator("input[name=name]").fill("Tom Till")
        signup.locator("input[name=email]").fill(email)
        signup.locator("input[name=password]").fill("long-enough-pw")
        signup.get_by_role("button", name="Create account").click()
        expect(phone.get_by_role("heading", name="Hello, Tom Till")).to_be_visible()
        # The manager gives the new customer 500 points (worth €5.00) and adds a register.
        tablet.goto(f"/staff/loyalty?q={email}")
        tablet.get_by_role("link", name=email).click()
        tablet.get_by_label("Points (a minus takes them away)").fill("500")
        tablet.get_by_label("Reason").fill("Welcome")
        tablet.get_by_role("button", name="Record adjustment").click()
        expect(tablet.get_by_test_id("member-balance")).to_have_text("500")
        tablet.goto("/staff/registers")
        tablet.get_by_label("Name", exact=True).fill(REGISTER)
        tablet.get_by_role("button", name="Add register").click()
        expect(tablet.get_by_test_id("registers").locator(f'tr[data-register="{REGISTER}"]')).to_be_visible()

        context = browser.new_context(viewport=TABLET, base_url=tablet.url.split("/staff")[0], has_touch=True)
        till = context.new_page()
        sign_in(till, CASHIER)
        till.goto("/pos")
        expect(till.locator("body")).to_have_attribute("data-ready", "true")
        till.get_by_test_id("registers").get_by_role("button", name=re.compile(REGISTER)).click()
        till.get_by_test_id("float").fill("100")
        till.get_by_role("button", name="Open shift").click()
        expect(till.get_by_test_id("register-name")).to_contain_text(REGISTER)
        till.get_by_test_id("products").get_by_role("button", name="Kreuzberg House Espresso").click()
        till.get_by_test_id("variants").get_by_role("button", name="250 g / Whole bean").click()
        till.get_by_test_id("customer").click()
        till.get_by_test_id("customer-search").fill(email)
        till.get_by_test_id("customer-results").get_by_role("button", name=re.compile("Tom Till")).click()
        expect(till.get_by_test_id("customer")).to_have_text("Customer: Tom Till")
        till.get_by_test_id("pay-cash").click()
        expect(till.get_by_test_id("pay-due")).to_have_text("€11.90")
        till.get_by_test_id("take-points").click()
        expect(till.get_by_test_id("tenders")).to_contain_text("Points €5.00")
        expect(till.get_by_test_id("pay-due")).to_have_text("€6.90")
        screenshot(till, "pos-points-taken")
        till.get_by_test_id("quick-cash").get_by_role("button", name="Exact €6.90").click()
        expect(till.get_by_test_id("last-sale-text")).to_contain_text("€11.90")
        context.close()

        tablet.goto(f"/staff/loyalty?q={email}")
        tablet.get_by_role("link", name=email).click()
        expect(tablet.get_by_test_id("member-ledger")).to_contain_text("capture")
        # 500 spent; the €6.90 paid in cash earns 69 at 10 a euro (the worker's consumer): reload until it has.
        deadline = time.monotonic() + 20
        while tablet.get_by_test_id("member-balance").inner_text() != "69" and time.monotonic() < deadline:
            tablet.wait_for_timeout(250)
            tablet.reload()
        expect(tablet.get_by_test_id("member-balance")).to_have_text("69")
        screenshot(tablet, "loyalty-member-after-pos-tablet")
    finally:
        _turn_off(tablet)
