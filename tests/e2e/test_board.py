"""Two tablets on the live board while a shopper checks out on a phone; one goes offline and catches up, and
the shopper's order page follows along."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import TABLET, screenshot, sign_in
from tests.e2e.test_checkout import _add, _checkout

LIVE_WITHIN_MS = 10_000


def _board(browser: Browser, live_server: str, email: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=TABLET, base_url=live_server)
    page = context.new_page()
    sign_in(page, email)
    page.goto("/staff/board")
    expect(page.get_by_test_id("connection")).to_have_text("Live", timeout=LIVE_WITHIN_MS)
    return context, page


def test_two_boards_follow_an_order_and_an_offline_board_catches_up(
    browser: Browser, live_server: str, phone: Page
) -> None:
    context_a, board_a = _board(browser, live_server, DEMO_ACCOUNTS[1].email)
    context_b, board_b = _board(browser, live_server, DEMO_ACCOUNTS[0].email)
    try:
        _add(phone, "Butter Croissant")
        _checkout(phone, "4242 4242 4242 4242")
        number = phone.get_by_test_id("order-number").inner_text().removeprefix("Order #")
        card = f"card-{number}"
        for board in (board_a, board_b):  # the new order appears on both boards
            expect(board.get_by_test_id("column-placed").get_by_test_id(card)).to_be_visible(timeout=LIVE_WITHIN_MS)
        expect(board_a.get_by_test_id(card).get_by_text("delayed")).to_be_hidden()  # fresh, not late
        screenshot(board_a, "board-tablet")
        expect(board_a.get_by_test_id(card)).to_have_class("order-card fresh arrived")  # highlighted as new
        sound = board_a.get_by_test_id("sound")
        sound.click()
        expect(sound).to_have_attribute("aria-pressed", "true")
        board_a.reload()  # the tablet remembers the choice
        expect(board_a.get_by_test_id("sound")).to_have_text("Sound on")
        expect(board_a.get_by_test_id(card)).to_contain_text("1× Butter Croissant")  # as the page renders it
        expect(board_a.get_by_test_id("connection")).to_have_text("Live", timeout=LIVE_WITHIN_MS)
        board_a.get_by_test_id(card).get_by_role("button", name="Accepted").click()
        expect(board_b.get_by_test_id("column-accepted").get_by_test_id(card)).to_be_visible(timeout=LIVE_WITHIN_MS)
        expect(phone.get_by_test_id("order-status")).to_have_text("accepted", timeout=LIVE_WITHIN_MS)  # no reload
        context_b.set_offline(True)
        expect(board_b.get_by_test_id("connection")).to_have_text("Reconnecting…", timeout=LIVE_WITHIN_MS)
        board_a.get_by_test_id(card).get_by_role("button", name="In progress").click()
        expect(board_a.get_by_test_id("column-in_progress").get_by_test_id(card)).to_be_visible()
        board_a.get_by_test_id(card).get_by_role("button", name="Ready").click()
        expect(board_a.get_by_test_id("column-ready").get_by_test_id(card)).to_be_visible()
        context_b.set_offline(False)  # back: no reload, the missed moves arrive
        expect(board_b.get_by_test_id("connection")).to_have_text("Live", timeout=LIVE_WITHIN_MS)
        expect(board_b.get_by_test_id("column-ready").get_by_test_id(card)).to_be_visible(timeout=LIVE_WITHIN_MS)
        expect(board_b.get_by_test_id(card)).to_have_count(1)
        screenshot(board_b, "board-after-reconnect-tablet")
        expect(phone.get_by_test_id("order-status")).to_have_text("ready", timeout=LIVE_WITHIN_MS)
        screenshot(phone, "order-status-live-phone")
    finally:
        context_a.close()
        context_b.close()
