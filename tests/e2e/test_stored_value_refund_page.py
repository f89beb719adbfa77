"""Refunding stored value from the staff order page (issue 15): a shopper pays part with a gift card and the rest
by card; the owner sees what each paid, is told inline when the amount is more than the gift card paid, then gives
part back to the gift card; the card's balance page agrees."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_gift_cards import OWNER, _add, _issue, contexts

__all__ = ["contexts"]


def test_an_owner_gives_part_of_a_gift_card_payment_back_from_the_order_page(
    contexts: dict[str, BrowserContext],
) -> None:
    owner = contexts["owner"].new_page()
    sign_in(owner, OWNER)
    code = _issue(owner, "10", "Refund test")
    shopper = contexts["shopper"].new_page()
    _add(shopper, "Kreuzberg House Espresso")
    shopper.get_by_test_id("cart-link").click()
    shopper.get_by_role("link", name="Checkout").click()
    shopper.get_by_label("E-mail").fill("refundee@example.com")
    shopper.get_by_role("button", name="Continue to payment").click()
    shopper.get_by_label("Gift card code (optional)").fill(code)
    shopper.get_by_label("Card number").fill("4242 4242 4242 4242")
    shopper.get_by_label("Expiry (MM/YY)").fill("12/34")
    shopper.get_by_label("Security code").fill("123")
    shopper.get_by_test_id("pay").click()
    expect(shopper.get_by_test_id("card-part")).to_have_text("€1.90")

    owner.goto("/staff/orders?q=refundee%40example.com")
    owner.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    panel = owner.get_by_test_id("stored-value-panel")
    expect(panel.get_by_test_id("sv-spends")).to_contain_text(f"Gift card ••••{code[-4:]}")
    expect(panel.get_by_test_id("sv-what-goes-where")).to_contain_text("gives back only what the card paid")
    panel.get_by_test_id("open-sv-refund").click()
    owner.on("dialog", lambda dialog: dialog.accept())
    panel.get_by_label("Amount").fill("11")
    panel.get_by_label("Reason").fill("one bag was stale")
    panel.get_by_test_id("sv-refund").click()
    expect(owner.get_by_test_id("sv-amount-error")).to_contain_text("More than the gift cards")
    screenshot(owner, "order-stored-value-refund-error-tablet")
    owner.get_by_test_id("stored-value-panel").get_by_label("Amount").fill("4")
    owner.get_by_test_id("stored-value-panel").get_by_test_id("sv-refund").click()
    expect(owner.get_by_test_id("sv-notice")).to_have_text("Given back: €4.00 to gift card.")
    expect(owner.get_by_test_id("sv-back")).to_have_text("€4.00")
    # the order's payment badge and timeline follow, without a reload (swapped in out of band)
    expect(owner.get_by_test_id("order-payment-badge")).to_have_text("payment: partially refunded")
    expect(owner.get_by_test_id("payment-status")).to_have_text("partially refunded")
    entry = owner.get_by_test_id("timeline").locator('li[data-kind="payment.stored_value"]')
    expect(entry).to_contain_text(f"refunded 4.00 EUR to gift card ••••{code[-4:]}")
    expect(entry).to_contain_text("one bag was stale")
    screenshot(owner, "order-stored-value-refunded-tablet")
    owner.reload()
    expect(owner.get_by_test_id("order-payment-badge")).to_have_text("payment: partially refunded")

    shopper.goto("/s/demo/gift-card")
    shopper.get_by_label("Gift card code").fill(code)
    shopper.get_by_role("button", name="Check the balance").click()
    expect(shopper.get_by_test_id("balance")).to_have_text("€4.00")
