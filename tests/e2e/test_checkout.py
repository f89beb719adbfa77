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


def test_delivery_to_an_address_with_express(phone: Page) -> None:
    _add(phone, "Chocolate Chip Cookie")
    phone.get_by_test_id("cart-link").click()
    phone.get_by_role("link", name="Checkout").click()
    phone.get_by_label("E-mail").fill("deliver@example.com")
    phone.get_by_label("Delivery to an address").check()
    phone.get_by_label("Full name").fill("Dana Delivery")
    phone.get_by_label("Street and number").fill("Torstraße 1")
    phone.get_by_label("Postal code").fill("10119")
    phone.get_by_label("City").fill("Berlin")
    phone.get_by_role("button", name="Continue to payment").click()
    choices = phone.get_by_test_id("delivery-choices")
    expect(choices).to_be_visible()
    choices.get_by_label(re.compile("Express")).check()
    phone.get_by_role("button", name="Update delivery").click()
    expect(phone.get_by_test_id("totals")).to_contain_text("Express (Germany)")
    screenshot(phone, "review-delivery-phone")
    phone.get_by_label("Card number").fill("4242 4242 4242 4242")
    phone.get_by_label("Expiry (MM/YY)").fill("12/34")
    phone.get_by_label("Security code").fill("123")
    phone.get_by_test_id("pay").click()
    expect(phone.get_by_test_id("order-number")).to_have_text(re.compile(r"Order #\d+"))
    expect(phone.get_by_text("We deliver to Torstraße 1")).to_be_visible()
