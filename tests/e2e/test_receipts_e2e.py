"""Receipts as people see them: the shopper's order page says where the receipt went and opens its PDF without an
account; the staff order page shows each channel's status and history."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import screenshot, sign_in


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
