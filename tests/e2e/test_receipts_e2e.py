"""Receipts as people see them: the shopper's order page says where the receipt went and opens its PDF without an
account; the staff order page shows each channel's status and history."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import TABLET, screenshot, sign_in


def _buy(page: Page) -> str:
    page.goto("/s/demo")
    page.get_by_role("link", name=re.compile("Butter Croissant")).first.click()
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_test_id("added-message")).to_contain_text("Added to your cart.")
    page.get_by_test_id("cart-link").click()
    page.get_by_role("link", name="Checkout").click()
    page.get_by_label("E-mail").fill("receipt@example.com")
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("Security code").fill("123")
    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("order-number")).to_have_text(re.compile(r"Order #\d+"))
    return page.url


def test_the_shopper_sees_where_the_receipt_went_and_opens_its_pdf(phone: Page, tablet: Page) -> None:
    order_url = _buy(phone)
    note = phone.get_by_test_id("receipt-note")
    expect(note).to_contain_text("receipt@example.com")
    for _ in range(60):  # the worker makes and e-mails it (the dev outbox folder): reload until the page says so
        if "was e-mailed to receipt@example.com" in note.inner_text():
            break
        phone.wait_for_timeout(250)
        phone.goto(order_url)
    expect(note).to_contain_text(re.compile(r"Your receipt R-\d{6} was e-mailed to receipt@example.com\."))
    screenshot(phone, "receipt-order-phone")
    href = phone.get_by_test_id("receipt-link").get_attribute("href")
    assert href is not None and href.startswith("/r/")
    pdf = phone.request.get(href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    assert phone.request.get(href.replace("sig=", "sig=0")).status == 403

    order_id = order_url.split("/orders/")[1].split("?")[0]
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    tablet.goto(f"/staff/orders/{order_id}")
    receipts = tablet.get_by_test_id("receipts")
    expect(receipts.get_by_test_id("delivery-email").get_by_test_id("delivery-status")).to_have_text("sent")
    expect(receipts).to_contain_text("receipt@example.com")
    receipts.scroll_into_view_if_needed()
    screenshot(tablet, "receipt-staff-order-tablet")


def test_the_till_prints_each_sale_once_and_emails_it_on_request(
    tablet: Page, browser: Browser, live_server: str
) -> None:
    import time

    from tests.integration.receipt_printer import threaded_fake_printer

    register = "Receipt counter"
    with threaded_fake_printer() as printer:
        sign_in(tablet, DEMO_ACCOUNTS[1].email)  # the manager sets up the register and its printer
        tablet.goto("/staff/registers")
        tablet.get_by_label("Name", exact=True).fill(register)
        tablet.get_by_role("button", name="Add register").click()
        row = tablet.get_by_test_id("registers").locator(f'tr[data-register="{register}"]')
        row.get_by_test_id("printer-link").click()
        tablet.get_by_label("Host or IP address").fill("127.0.0.1")
        tablet.get_by_label("Port").fill(str(printer.port))
        tablet.get_by_label("58 mm").check()
        tablet.get_by_role("button", name="Save").click()
        expect(tablet.get_by_text("Receipt printer saved.")).to_be_visible()
        screenshot(tablet, "receipt-printer-tablet")

        context = browser.new_context(viewport=TABLET, base_url=live_server, has_touch=True)
        till = context.new_page()
        sign_in(till, DEMO_ACCOUNTS[3].email)
        till.goto("/pos")
        expect(till.locator("body")).to_have_attribute("data-ready", "true")
        till.get_by_test_id("registers").get_by_role("button", name=re.compile(register)).click()
        till.get_by_test_id("float").fill("100")
        till.get_by_role("button", name="Open shift").click()
        expect(till.get_by_test_id("register-name")).to_contain_text(register)
        till.get_by_test_id("products").get_by_role("button", name="Butter Croissant").click()
        till.get_by_test_id("pay-cash").click()
        till.get_by_test_id("quick-cash").get_by_role("button", name=re.compile("^Exact")).click()
        expect(till.get_by_test_id("last-sale-text")).to_contain_text(re.compile(r"Order #\d+"))
        deadline = time.monotonic() + 20
        while not printer.jobs and time.monotonic() < deadline:  # the worker prints it by itself
            till.wait_for_timeout(200)
        till.get_by_test_id("receipt-print").click()
        expect(till.get_by_test_id("receipt-status")).to_contain_text(re.compile(r"Receipt R-\d{6}: printing \(sent\)"))
        till.get_by_test_id("receipt-email").fill("counter@example.com")
        till.get_by_test_id("receipt-send").click()
        expect(till.get_by_test_id("receipt-status")).to_contain_text("e-mail queued")
        screenshot(till, "receipt-till-tablet")
        till.wait_for_timeout(500)
        context.close()
    assert len(printer.jobs) == 1  # printed by the worker; the tap did not print it again


def test_a_stuck_receipt_appears_on_the_board_live_and_goes_when_it_is_printed(
    tablet: Page, browser: Browser, live_server: str
) -> None:
    """A counter sale whose printer is out of paper: the worker's 3rd failed attempt puts the receipt on the open
    board (no reload); paper back in, the next attempt prints it and the board takes the alert off."""
    from tests.integration.receipt_printer import threaded_fake_printer

    register = "Alert counter"
    live_within = 45_000  # SAQ retries with exponential backoff (1, 2, 4, 8 s, with jitter)
    with threaded_fake_printer(paper=False) as printer:
        sign_in(tablet, DEMO_ACCOUNTS[1].email)  # the manager: a register whose printer has no paper
        tablet.goto("/staff/registers")
        tablet.get_by_label("Name", exact=True).fill(register)
        tablet.get_by_role("button", name="Add register").click()
        row = tablet.get_by_test_id("registers").locator(f'tr[data-register="{register}"]')
        row.get_by_test_id("printer-link").click()
        tablet.get_by_label("Host or IP address").fill("127.0.0.1")
        tablet.get_by_label("Port").fill(str(printer.port))
        tablet.get_by_label("80 mm").check()
        tablet.get_by_role("button", name="Save").click()
        expect(tablet.get_by_text("Receipt printer saved.")).to_be_visible()
        tablet.goto("/staff/board")  # the board, open before anything goes wrong
        expect(tablet.get_by_test_id("connection")).to_have_text("Live", timeout=10_000)
        expect(tablet.get_by_test_id("receipt-alerts")).to_have_count(0)

        context = browser.new_context(viewport=TABLET, base_url=live_server, has_touch=True)
        till = context.new_page()
        sign_in(till, DEMO_ACCOUNTS[2].email)
        till.goto("/pos")
        expect(till.locator("body")).to_have_attribute("data-ready", "true")
        till.get_by_test_id("registers").get_by_role("button", name=re.compile(register)).click()
        till.get_by_test_id("float").fill("100")
        till.get_by_role("button", name="Open shift").click()
        expect(till.get_by_test_id("register-name")).to_contain_text(register)
        till.get_by_test_id("products").get_by_role("button", name="Butter Croissant").click()
        till.get_by_test_id("pay-cash").click()
        till.get_by_test_id("quick-cash").get_by_role("button", name=re.compile("^Exact")).click()
        expect(till.get_by_test_id("last-sale-text")).to_contain_text(re.compile(r"Order #\d+"))
        context.close()

        alerts = tablet.get_by_test_id("receipt-alerts")
        expect(alerts).to_contain_text("Receipts not delivered", timeout=live_within)  # live: no reload
        expect(alerts).to_contain_text(re.compile(r"R-\d{6} \(sale\): Receipt printer: 3 attempts failed"))
        expect(alerts).to_contain_text("out of paper")
        alerts.scroll_into_view_if_needed()
        screenshot(tablet, "board-receipt-alert-tablet")
        assert not printer.jobs
        printer.paper = True  # paper back in: the next attempt prints
        expect(alerts).to_have_count(0, timeout=live_within)
        expect(tablet.get_by_test_id("connection")).to_have_text("Live")
    assert len(printer.jobs) == 1
