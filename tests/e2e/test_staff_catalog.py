from __future__ import annotations

from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import screenshot, sign_in


def test_manager_searches_products_and_opens_one(tablet: Page) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    tablet.get_by_role("link", name="Products").first.click()
    expect(tablet.get_by_test_id("product-rows")).to_contain_text("Butter Croissant")
    tablet.get_by_label("Search products").fill("espresso")
    expect(tablet.get_by_test_id("product-rows")).not_to_contain_text("Butter Croissant")
    screenshot(tablet, "staff-products-tablet")
    tablet.get_by_role("link", name="Kreuzberg House Espresso").click()
    expect(tablet.get_by_test_id("variants")).to_be_visible()
    screenshot(tablet, "staff-product-edit-tablet")


def test_storefront_browsing_on_a_phone(phone: Page) -> None:
    phone.goto("/s/demo")
    expect(phone.get_by_test_id("products")).to_contain_text("Butter Croissant")
    screenshot(phone, "storefront-phone")
    phone.get_by_label("Category").select_option("tea")
    expect(phone.get_by_test_id("products")).not_to_contain_text("Butter Croissant")
