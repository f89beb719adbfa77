"""A gift card sold at the till (issue 15): the owner marks a product as a gift card; a cashier sells it online and
the tablet shows the new card's code once; offline, the tablet refuses to sell one (Till activates it, so it needs
the network) and says so."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_gift_cards import CODE, OWNER, contexts, open_till

__all__ = ["contexts"]
REGISTER = "Gift card sales"
PRODUCT = "Cardamom Bun"


def test_a_cashier_sells_a_gift_card_online_and_is_told_offline_it_needs_the_network(
    contexts: dict[str, BrowserContext],
) -> None:
    owner = contexts["owner"].new_page()
    sign_in(owner, OWNER)
    owner.goto("/staff/gift-cards")
    products = owner.get_by_test_id("gift-card-products")
    products.get_by_label(PRODUCT).check()
    products.get_by_role("button", name="Save").click()
    expect(owner.get_by_test_id("gift-products-now")).to_contain_text(PRODUCT)
    owner.goto("/staff/registers")
    offline = owner.get_by_role("group", name="Offline, take")
    expect(offline.get_by_label("Gift card")).not_to_be_checked()  # offered; the default takes cash only
    expect(offline.get_by_label("Store credit")).to_be_visible()
    offline.scroll_into_view_if_needed()
    screenshot(owner, "till-settings-offline-tenders-tablet")
    till = contexts["till"].new_page()
    open_till(owner, till, REGISTER)
    till.get_by_test_id("products").get_by_role("button", name=PRODUCT).click()
    till.get_by_test_id("pay-cash").click()
    till.get_by_test_id("quick-cash").get_by_role("button", name=re.compile("^Exact")).click()
    sold = till.get_by_test_id("sold-gift-cards")
    expect(sold).to_contain_text("shown only once")
    code = till.get_by_test_id("gift-card-code").inner_text()
    assert CODE.match(code), code
    screenshot(till, "pos-gift-card-sold-code")

    owner.goto("/staff/gift-cards")  # the card is active, of the bun's price, and its list shows the last 4 only
    expect(owner.get_by_test_id("gift-cards")).to_contain_text(f"•••• {code[-4:]}")
    expect(owner.get_by_test_id("gift-cards")).not_to_contain_text(code)

    till.get_by_test_id("products").get_by_role("button", name=PRODUCT).click()
    contexts["till"].set_offline(True)
    expect(till.get_by_test_id("net-status")).to_have_attribute("data-state", "offline")
    till.get_by_test_id("pay-cash").click()
    till.get_by_test_id("quick-cash").get_by_role("button", name=re.compile("^Exact")).click()
    expect(till.locator('[data-error="pay"]')).to_contain_text("A gift card is activated by Till when it is sold")
    expect(till.get_by_test_id("queue-depth")).to_have_text("0")
    screenshot(till, "pos-gift-card-offline-refused")
    contexts["till"].set_offline(False)

    owner.goto("/staff/gift-cards")  # leave the demo store as it was for the other tests of this server
    products = owner.get_by_test_id("gift-card-products")
    products.get_by_text("Choose the products").click()
    products.get_by_label(PRODUCT).uncheck()
    products.get_by_role("button", name="Save").click()
    expect(owner.get_by_test_id("gift-products-now")).not_to_contain_text(PRODUCT)
