from __future__ import annotations

from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_staff_nav import open_menu

SECRET = "sk_test_51Qe2eSecretValueForTill4242"
WEBHOOK = "whsec_e2eWebhookSigningSecret9876"


def test_owner_saves_stripe_test_keys_and_sees_only_hints(tablet: Page) -> None:
    sign_in(tablet, DEMO_ACCOUNTS[0].email)
    open_menu(tablet, "Setup")
    tablet.get_by_role("link", name="Settings").first.click()
    tablet.get_by_role("link", name="Payments: provider, test and live keys →").click()
    expect(tablet.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
    expect(tablet.get_by_test_id("payments-now")).to_contain_text("the built-in sandbox")
    screenshot(tablet, "payment-settings-empty-tablet")

    test_keys = tablet.get_by_test_id("keys-test")
    test_keys.get_by_label("Secret key").fill("sk_live_51QnotATestKey0000")
    test_keys.get_by_label("Publishable key").fill("pk_test_51QpublishableE2E1111")
    test_keys.get_by_label("Webhook signing secret").fill(WEBHOOK)
    test_keys.get_by_role("button", name="Save test keys").click()
    expect(tablet.get_by_test_id("keys-test")).to_contain_text("That is a live key; the test form takes test keys")
    expect(tablet.get_by_test_id("keys-test").get_by_label("Publishable key")).to_have_value(
        "pk_test_51QpublishableE2E1111"
    )
    expect(tablet.get_by_test_id("keys-test").get_by_label("Secret key")).to_have_value("")
    screenshot(tablet, "payment-settings-error-tablet")

    test_keys = tablet.get_by_test_id("keys-test")
    test_keys.get_by_label("Secret key").fill(SECRET)
    test_keys.get_by_label("Webhook signing secret").fill(WEBHOOK)
    test_keys.get_by_role("button", name="Save test keys").click()
    expect(tablet.get_by_text("Stripe test keys saved.")).to_be_visible()
    expect(tablet.get_by_test_id("hint-test")).to_have_text("sk_test_…4242")
    expect(tablet.get_by_test_id("saved-test")).to_contain_text("by Olivia Owner")
    html = tablet.content()
    assert SECRET not in html and WEBHOOK not in html

    tablet.get_by_role("radio", name="Stripe").check()
    tablet.get_by_role("radio", name="LIVE — real money").check()
    tablet.get_by_role("button", name="Save provider and mode").click()
    expect(tablet.get_by_test_id("form-error")).to_have_text(
        "Add your Stripe live keys below before using Stripe in live mode."
    )
    screenshot(tablet, "payment-settings-tablet")
