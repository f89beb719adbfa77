"""A new merchant opens Bakery Nord at /start, sets it up, invites a cashier, goes live, and sells to a shopper."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import PHONE, TABLET, screenshot, sign_in

OWNER_PASSWORD = "kanel-och-kardemumma"
CASHIER_PASSWORD = "kassa-kassa-2026"
DELIVERED_WITHIN_MS = 20_000  # the worker delivers the invitation e-mail to the dev outbox


def _sign_up(page: Page) -> None:
    page.goto("/start")
    expect(page.get_by_role("heading", name="Open your shop")).to_be_visible()
    page.get_by_label("Your name").fill("Nora Nord")
    page.get_by_label("E-mail").fill("nora@bakery-nord.se")
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_label("Password again").fill(OWNER_PASSWORD)
    page.get_by_label("Shop name").fill("Bakery Nord")
    expect(page.get_by_label("Shop address")).to_have_value("bakery-nord")  # follows the name
    expect(page.get_by_test_id("slug-check")).to_have_text("/s/bakery-nord is free.")
    page.get_by_label("Country").select_option("SE")
    expect(page.get_by_label("Currency")).to_have_value("SEK")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Stockholm")
    screenshot(page, "onboarding-start-tablet")
    page.get_by_role("button", name="Create my shop").click()
    expect(page.get_by_test_id("setup-checklist")).to_be_visible()
    expect(page.get_by_text("Welcome to Till. Bakery Nord is ready to set up")).to_be_visible()
    screenshot(page, "onboarding-checklist-tablet")


def _set_up(page: Page) -> None:
    page.goto("/staff/settings")
    page.get_by_label("Street address").fill("Storgatan 1")
    page.get_by_label("Postal code").fill("111 22")
    page.get_by_label("City").fill("Stockholm")
    page.get_by_label("Contact e-mail").fill("hej@bakery-nord.se")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_text("Store details saved.")).to_be_visible()
    screenshot(page, "onboarding-settings-tablet")

    page.goto("/staff/settings/tax")
    expect(page.get_by_label("standard rate, row 1", exact=True)).to_have_value("25")  # Sweden's table
    page.get_by_role("button", name="Save tax settings").click()
    expect(page.get_by_text("Tax settings saved.")).to_be_visible()

    page.goto("/staff/settings/shipping")
    for name, value in {
        "zones-0-code": "se",
        "zones-0-label": "Sweden",
        "zones-0-countries": "SE",
        "zones-0-rates-0-code": "standard",
        "zones-0-rates-0-label": "PostNord",
        "zones-0-rates-0-max_weight_grams": "5000",
        "zones-0-rates-0-amount": "49.00",
        "zones-0-rates-0-days": "2",
    }.items():
        page.locator(f'[name="{name}"]').fill(value)
    page.get_by_role("button", name="Save shipping settings").click()
    expect(page.get_by_text("Shipping settings saved.")).to_be_visible()
    expect(page.locator('[name="zones-0-countries"]')).to_have_value("SE")

    page.goto("/staff/products/new")
    page.get_by_label("Name", exact=True).fill("Kanelbulle")
    page.get_by_label("Address (slug)").fill("kanelbulle")
    page.get_by_label("Variant 1 sku").fill("BULLE-1")
    page.get_by_label("Variant 1 price").fill("35.00")
    page.get_by_label("Variant 1 weight_grams").fill("90")
    page.get_by_role("button", name="Save product").click()
    expect(page.get_by_role("heading", name="Stock")).to_be_visible()
    page.get_by_label("Change (+/-)").fill("24")
    page.get_by_label("Reason").select_option("received")
    page.get_by_role("button", name="Adjust stock").click()
    expect(page.get_by_test_id("available-BULLE-1")).to_have_text("24")


def _invite_cashier(page: Page, browser: Browser, live_server: str) -> None:
    page.goto("/staff/team")
    page.get_by_label("E-mail", exact=True).fill("kim@bakery-nord.se")
    page.get_by_label("Role", exact=True).select_option("cashier")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_test_id("invitations")).to_contain_text("kim@bakery-nord.se")
    page.goto("/staff/outbox")
    message = page.get_by_test_id("message").first
    expect(message).to_contain_text("kim@bakery-nord.se")
    for _ in range(40):  # the worker sends it; the page shows what the outbox holds when loaded
        if message.get_by_test_id("message-status").inner_text() == "sent":
            break
        page.wait_for_timeout(500)
        page.reload()
        message = page.get_by_test_id("message").first
    expect(message.get_by_test_id("message-status")).to_have_text("sent")
    link = re.search(r"https?://[^\s]+/invite/[A-Za-z0-9_-]+", message.inner_text())
    assert link, message.inner_text()
    screenshot(page, "onboarding-outbox-tablet")

    cashier = browser.new_context(viewport=TABLET, base_url=live_server).new_page()
    cashier.goto(link.group(0))
    cashier.get_by_label("Your name").fill("Kim Kassa")
    cashier.get_by_label("Choose a password").fill(CASHIER_PASSWORD)
    cashier.get_by_label("The password again").fill(CASHIER_PASSWORD)
    screenshot(cashier, "onboarding-invite-tablet")
    cashier.get_by_role("button", name="Join Bakery Nord").click()
    expect(cashier.get_by_test_id("signed-in-as")).to_contain_text("Kim Kassa")
    expect(cashier.get_by_test_id("signed-in-as")).to_contain_text("cashier")
    cashier.goto(link.group(0))  # the link works once
    expect(cashier.get_by_text(re.compile("used already|already used|has been used", re.I))).to_be_visible()
    cashier.context.close()


def _shopper_buys(browser: Browser, live_server: str) -> str:
    shopper = browser.new_context(viewport=PHONE, base_url=live_server, is_mobile=True, has_touch=True).new_page()
    shopper.goto("/s/bakery-nord")
    expect(shopper.get_by_test_id("products")).to_contain_text("Kanelbulle")
    screenshot(shopper, "onboarding-storefront-phone")
    shopper.get_by_role("link", name=re.compile("Kanelbulle")).first.click()
    shopper.get_by_role("button", name="Add to cart").click()
    expect(shopper.get_by_test_id("cart-count")).to_have_text("1")
    shopper.get_by_test_id("cart-link").click()
    shopper.get_by_role("link", name="Checkout").click()
    shopper.get_by_label("E-mail").fill("ebba@example.se")
    screenshot(shopper, "onboarding-checkout-phone")
    shopper.get_by_role("button", name="Continue to payment").click()
    shopper.get_by_label("Card number").fill("4242 4242 4242 4242")
    shopper.get_by_label("Expiry (MM/YY)").fill("12/34")
    shopper.get_by_label("Security code").fill("123")
    shopper.get_by_test_id("pay").click()
    expect(shopper.get_by_test_id("order-number")).to_have_text(re.compile(r"Order #\d+"))
    expect(shopper.get_by_test_id("payment-status")).to_have_text("paid")
    expect(shopper.get_by_test_id("total")).to_contain_text("35.00")
    screenshot(shopper, "onboarding-confirmation-phone")
    number = shopper.get_by_test_id("order-number").inner_text().removeprefix("Order #")
    shopper.context.close()
    return number


def test_a_new_merchant_opens_bakery_nord_and_sells_its_first_bun(browser: Browser, live_server: str) -> None:
    owner = browser.new_context(viewport=TABLET, base_url=live_server).new_page()
    _sign_up(owner)

    visitor = browser.new_context(viewport=PHONE, base_url=live_server).new_page()
    visitor.goto("/s/bakery-nord")
    expect(visitor.get_by_test_id("opening-soon")).to_contain_text("Opening soon.")
    screenshot(visitor, "onboarding-opening-soon-phone")
    visitor.context.close()

    _set_up(owner)
    _invite_cashier(owner, browser, live_server)
    owner.goto("/staff")
    owner.get_by_role("button", name="Go live").click()
    expect(owner.get_by_text("Bakery Nord is live")).to_be_visible()
    owner.goto("/staff/board")
    expect(owner.get_by_test_id("connection")).to_have_text("Live", timeout=10_000)

    number = _shopper_buys(browser, live_server)
    expect(owner.get_by_test_id(f"card-{number}")).to_be_visible(timeout=10_000)
    screenshot(owner, "onboarding-board-tablet")

    demo = browser.new_context(viewport=TABLET, base_url=live_server).new_page()
    sign_in(demo, DEMO_ACCOUNTS[0].email)
    demo.goto("/staff/board")
    expect(demo.get_by_test_id("connection")).to_have_text("Live", timeout=10_000)
    expect(demo.get_by_test_id(f"card-{number}")).to_have_count(0)
    demo.goto("/staff/orders")
    expect(demo.get_by_text(f"#{number}", exact=True)).to_have_count(0)
    demo.context.close()
    owner.context.close()
