from __future__ import annotations

from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS, DEMO_PASSWORD
from tests.e2e.conftest import screenshot
from tests.e2e.test_staff_nav import open_menu

OWNER = DEMO_ACCOUNTS[0]


def test_sign_in_see_staff_home_and_sign_out(tablet: Page) -> None:
    tablet.goto("/staff")
    expect(tablet.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(tablet, "signin-tablet")
    tablet.get_by_label("E-mail").fill(OWNER.email)
    tablet.get_by_label("Password").fill(DEMO_PASSWORD)
    tablet.get_by_role("button", name="Sign in").click()

    expect(tablet.get_by_role("heading", name="Hello, Olivia")).to_be_visible()
    expect(tablet.get_by_test_id("signed-in-as")).to_contain_text("Olivia Owner")
    sections = tablet.get_by_test_id("sections")
    for title in ("Store settings", "API tokens", "Storefront"):
        expect(sections).to_contain_text(title)
    screenshot(tablet, "staff-home-tablet")

    tablet.get_by_role("button", name="Sign out").click()
    expect(tablet.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(tablet.get_by_text("You are signed out.")).to_be_visible()
    tablet.goto("/staff")
    expect(tablet.get_by_role("heading", name="Sign in")).to_be_visible()


def test_wrong_password_shows_an_inline_error(phone: Page) -> None:
    phone.goto("/signin")
    phone.get_by_label("E-mail").fill(DEMO_ACCOUNTS[1].email)
    phone.get_by_label("Password").fill("not-the-password")
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.get_by_test_id("form-error")).to_have_text("That e-mail and password do not match.")
    expect(phone.get_by_text("Wrong e-mail or password.")).to_be_visible()
    expect(phone.get_by_label("E-mail")).to_have_value(DEMO_ACCOUNTS[1].email)
    screenshot(phone, "signin-error-phone")


def test_owner_creates_an_api_token_and_sees_it_once(tablet: Page) -> None:
    tablet.goto("/signin")
    tablet.get_by_label("E-mail").fill(OWNER.email)
    tablet.get_by_label("Password").fill(DEMO_PASSWORD)
    tablet.get_by_role("button", name="Sign in").click()
    open_menu(tablet, "Setup")
    tablet.get_by_role("link", name="API tokens").first.click()
    tablet.get_by_label("Name").fill("Delivery app")
    tablet.get_by_role("button", name="Create token").click()
    expect(tablet.get_by_test_id("issued-token")).to_contain_text("till_")
    expect(tablet.get_by_role("cell", name="Delivery app")).to_be_visible()
    screenshot(tablet, "api-tokens-tablet")
    tablet.reload()
    expect(tablet.get_by_test_id("issued-token")).to_have_count(0)


def test_storefront_home_on_a_phone(phone: Page) -> None:
    phone.goto("/")
    expect(phone.get_by_role("heading", name="Welcome to Corner Café")).to_be_visible()
    screenshot(phone, "storefront-phone")
