"""The owner sets up payouts through the sandbox's onboarding and comes back to an enabled account."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_staff_nav import open_menu


def test_owner_sets_up_payouts_through_sandbox_onboarding(tablet: Page) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[0].email)
    open_menu(tablet, "Money")
    tablet.get_by_role("link", name="Payouts").first.click()
    expect(tablet.get_by_test_id("connect-status")).to_have_text("Not started")
    expect(tablet.get_by_test_id("platform-fee")).to_contain_text("set by the platform")
    screenshot(tablet, "payouts-not-started-tablet")
    tablet.get_by_role("button", name="Set up payouts").click()
    expect(tablet.get_by_role("heading", name="Set up payouts for")).to_be_visible()
    screenshot(tablet, "sandbox-onboarding-tablet")
    tablet.get_by_role("button", name="Complete onboarding").click()
    expect(tablet.get_by_text("Payouts are set up: your account is enabled.")).to_be_visible()
    expect(tablet.get_by_test_id("connect-status")).to_have_text("Enabled")
    expect(tablet.get_by_test_id("payouts-upcoming")).to_contain_text("No payout on its way.")
    expect(tablet.get_by_role("button", name="Set up payouts")).to_have_count(0)
    screenshot(tablet, "payouts-enabled-tablet")

    # The Connect calls are in the provider call audit (the worker moves them into the table every 10 s).
    tablet.goto("/staff/payments/provider-calls")
    deadline = time.monotonic() + 30
    while not tablet.get_by_test_id("call-row").filter(has_text="create account").count():
        assert time.monotonic() < deadline, "the Connect calls never reached the provider call audit"
        tablet.wait_for_timeout(500)
        tablet.reload()
    rows = tablet.get_by_test_id("call-row")
    expect(rows.filter(has_text="connect · create account")).to_have_count(1)
    expect(rows.filter(has_text="connect · onboarding link").first).to_contain_text("ok")
    screenshot(tablet, "provider-calls-connect-tablet")
