"""The staff header on a 1024 px tablet: one line, Money and Setup as disclosure menus that float over the page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import TABLET, screenshot, sign_in

OWNER, MANAGER, STAFF = DEMO_ACCOUNTS[0], DEMO_ACCOUNTS[1], DEMO_ACCOUNTS[2]


def menu(page: Page, label: str) -> Locator:
    """A staff header menu (Money, Setup) by its summary's text."""
    return (
        page.get_by_role("navigation", name="Staff")
        .locator("details.menu")
        .filter(has=page.locator("summary", has_text=re.compile(rf"^{label}$")))
    )


def open_menu(page: Page, label: str) -> None:
    """Open a staff header menu so the links inside can be clicked."""
    summary = menu(page, label).locator("summary")
    summary.click()
    expect(menu(page, label)).to_have_attribute("open", "")


def _assert_one_line(page: Page) -> None:
    topbar = page.locator("header.topbar").bounding_box()
    parts = [page.locator(f"header.topbar > {part}").bounding_box() for part in (".brand", "nav.nav", ".who")]
    assert topbar is not None and all(parts)
    nav = parts[1]
    assert nav is not None and nav["height"] < 60, nav
    # One row: every part of the header is centred on the same line, and the bar is no taller than one row.
    centres = [box["y"] + box["height"] / 2 for box in parts if box]
    assert max(centres) - min(centres) < 4, centres
    assert topbar["height"] < 80, topbar


def test_owner_opens_money_and_goes_to_refunds_on_one_line(tablet: Page) -> None:
    sign_in(tablet, OWNER.email)
    _assert_one_line(tablet)
    bar = tablet.locator("header.topbar").bounding_box()
    screenshot(tablet, "staff-nav-closed-tablet")

    open_menu(tablet, "Money")
    money = menu(tablet, "Money")
    for label in ("Payments", "Refunds", "Disputes", "Payouts"):
        expect(money.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(tablet.get_by_role("link", name="Webhooks", exact=True)).to_be_hidden()
    assert tablet.locator("header.topbar").bounding_box() == bar  # the panel floats; the bar keeps its height
    screenshot(tablet, "staff-nav-money-open-tablet")

    money.get_by_role("link", name="Refunds", exact=True).click()
    expect(tablet).to_have_url(re.compile(r"/staff/refunds$"))
    expect(tablet.get_by_role("heading", name="Refund approvals")).to_be_visible()
    expect(menu(tablet, "Money")).to_have_class(re.compile(r"\bcurrent\b"))
    expect(menu(tablet, "Money").locator("summary")).to_have_attribute("aria-current", "true")
    expect(menu(tablet, "Setup")).not_to_have_class(re.compile(r"\bcurrent\b"))
    expect(menu(tablet, "Money").locator('a[aria-current="page"]')).to_have_text("Refunds")
    _assert_one_line(tablet)
    screenshot(tablet, "staff-nav-refunds-tablet")


def test_one_menu_open_at_a_time_and_escape_or_a_click_elsewhere_closes_it(tablet: Page) -> None:
    sign_in(tablet, MANAGER.email)
    open_menu(tablet, "Money")
    expect(menu(tablet, "Money").get_by_role("link", name="Payouts")).to_have_count(0)  # owners only
    open_menu(tablet, "Setup")
    expect(menu(tablet, "Money")).not_to_have_attribute("open", "")
    for label in ("Settings", "API tokens", "Webhooks", "Ingestion"):
        expect(menu(tablet, "Setup").get_by_role("link", name=label, exact=True)).to_be_visible()
    screenshot(tablet, "staff-nav-setup-open-tablet")
    tablet.keyboard.press("Escape")
    expect(menu(tablet, "Setup")).not_to_have_attribute("open", "")
    expect(menu(tablet, "Setup").locator("summary")).to_be_focused()
    open_menu(tablet, "Money")
    tablet.mouse.click(1000, 700)  # on the page, away from the header
    expect(menu(tablet, "Money")).not_to_have_attribute("open", "")


def test_staff_see_no_money_or_setup_menu(tablet: Page) -> None:
    sign_in(tablet, STAFF.email)
    expect(tablet.locator("details.menu")).to_have_count(0)
    nav = tablet.get_by_role("navigation", name="Staff")
    expect(nav.get_by_role("link")).to_have_text(["Home", "Board", "Orders", "POS"])


@pytest.fixture
def tablet_without_js(browser: Browser, live_server: str) -> Iterator[Page]:
    context = browser.new_context(viewport=TABLET, base_url=live_server, java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()


def test_the_menus_work_without_javascript(tablet_without_js: Page) -> None:
    page = tablet_without_js
    sign_in(page, OWNER.email)
    open_menu(page, "Setup")
    open_menu(page, "Money")
    expect(menu(page, "Setup")).not_to_have_attribute("open", "")  # <details name=…> keeps one open
    menu(page, "Money").get_by_role("link", name="Payouts").click()
    expect(page).to_have_url(re.compile(r"/staff/payouts$"))
    expect(menu(page, "Money").locator('a[aria-current="page"]')).to_have_text("Payouts")


def test_phone_menu_panel_stays_on_screen(phone: Page) -> None:
    sign_in(phone, OWNER.email)
    screenshot(phone, "staff-nav-closed-phone")
    for label in ("Money", "Setup"):
        open_menu(phone, label)
        panel = menu(phone, label).locator(".menu-panel").bounding_box()
        assert panel is not None and panel["x"] >= 0 and panel["x"] + panel["width"] <= 390, (label, panel)
        screenshot(phone, f"staff-nav-{label.lower()}-open-phone")
