"""The shopper's path on a phone: browse → cart → checkout as guest → pay → confirmation."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import screenshot


def _add(page: Page, product: str) -> None:
    page.goto("/s/demo")
    page.get_by_role("link", name=re.compile(product)).first.click()
    count_before = int(page.get_by_test_id("cart-count").inner_text())
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_test_id("added-message")).to_contain_text("Added to your cart.")
    expect(page.get_by_test_id("cart-count")).to_have_text(str(count_before + 1))


def _checkout(page: Page, card: str) -> None:
    page.get_by_test_id("cart-link").click()
    expect(page.get_by_test_id("cart")).to_be_visible()
    screenshot(page, "cart-phone")
    page.get_by_role("link", name="Checkout").click()
    page.get_by_label("E-mail").fill("guest@example.com")
    screenshot(page, "checkout-phone")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_test_id("totals")).to_be_visible()
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("Security code").fill("123")
    screenshot(page, "review-phone")
    page.get_by_test_id("pay").click()


def test_guest_buys_two_items_and_sees_the_confirmation(phone: Page) -> None:
    _add(phone, "Butter Croissant")
    _add(phone, "Chocolate Chip Cookie")
    _checkout(phone, "4242 4242 4242 4242")
    expect(phone.get_by_test_id("order-number")).to_have_text(re.compile(r"Order #\d+"))
    expect(phone.get_by_test_id("payment-status")).to_have_text("paid")
    expect(phone.get_by_test_id("total")).to_have_text("€5.00")
    screenshot(phone, "confirmation-phone")


def test_three_d_secure_card_passes_the_challenge(phone: Page) -> None:
    _add(phone, "Butter Croissant")
    _checkout(phone, "4000 0000 0000 3220")
    expect(phone.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    screenshot(phone, "3ds-phone")
    phone.get_by_role("button", name="Approve").click()
    expect(phone.get_by_test_id("order-number")).to_have_text(re.compile(r"Order #\d+"))
    expect(phone.get_by_test_id("payment-status")).to_have_text("paid")


def test_declined_card_shows_an_inline_error_and_keeps_the_cart(phone: Page) -> None:
    _add(phone, "Butter Croissant")
    _checkout(phone, "4000 0000 0000 0002")
    expect(phone.get_by_test_id("form-error")).to_have_text("Your card was declined. Try another card.")
    screenshot(phone, "declined-phone")
    expect(phone.get_by_test_id("cart-count")).to_have_text("1")
    phone.get_by_test_id("cart-link").click()
    expect(phone.get_by_test_id("cart")).to_contain_text("Butter Croissant")
