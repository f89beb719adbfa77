"""A gift card sold at the till whose answer was lost (issue 15): the network drops after Till recorded the sale and
activated the card, so the tablet never saw the code. The tablet keeps the sale, sends it again when the network is
back, learns it was recorded, and tells the cashier truthfully: the card is active, its code cannot be shown again,
a manager replaces it. The owner does so on the card's staff page: a new code, shown once, carrying the balance;
the old card disabled, its ledger naming the new one. The new card then pays at the till (a ticket voided with it
on first spends nothing), and the shift report lists it among the tenders, out of the drawer."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Route, expect

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_gift_cards import CODE, OWNER, contexts, open_till

__all__ = ["contexts"]
REGISTER = "Lost answer counter"
PRODUCT = "Cardamom Bun"


def test_a_lost_gift_card_answer_is_told_truthfully_and_the_owner_replaces_the_card(
    contexts: dict[str, BrowserContext],
) -> None:
    owner = contexts["owner"].new_page()
    sign_in(owner, OWNER)
    owner.goto("/staff/gift-cards")
    products = owner.get_by_test_id("gift-card-products")
    products.get_by_label(PRODUCT).check()
    products.get_by_role("button", name="Save").click()
    expect(owner.get_by_test_id("gift-products-now")).to_contain_text(PRODUCT)
    till = contexts["till"].new_page()
    open_till(owner, till, REGISTER)

    lost: list[str] = []

    def answer_lost_once(route: Route) -> None:
        """The first sale reaches Till (recorded, card activated) but its answer never comes back."""
        if route.request.method == "POST" and not lost:
            route.fetch()
            lost.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    till.route("**/pos/api/sales", answer_lost_once)
    till.get_by_test_id("products").get_by_role("button", name=PRODUCT).click()
    till.get_by_test_id("pay-cash").click()
    till.get_by_test_id("quick-cash").get_by_role("button", name=re.compile("^Exact")).click()
    expect(till.get_by_test_id("last-sale-text")).to_contain_text("Its answer was lost")
    assert lost, "the sale never reached the route"
    # Back online (the tablet asks /health every 5 s), the queued sale goes again and Till says it has it.
    expect(till.get_by_test_id("queue-depth")).to_have_text("0", timeout=30_000)
    expect(till.get_by_text("its code never reached this tablet").first).to_be_visible(timeout=30_000)
    till.get_by_test_id("net-status").click()
    notes = till.get_by_test_id("queue-notes")
    expect(notes).to_contain_text("its code never reached this tablet and Till cannot show it again")
    expect(notes).to_contain_text("Replace card")
    screenshot(till, "pos-gift-card-answer-lost")
    found = re.search(r"Gift card •••• ([0-9A-Z]{4})", notes.inner_text())
    assert found is not None
    last4 = found.group(1)

    owner.goto(f"/staff/gift-cards?q={last4}")
    owner.get_by_test_id("gift-cards").get_by_role("link", name=f"•••• {last4}").click()
    replace = owner.get_by_test_id("replace-form")
    replace.get_by_role("button", name="Replace card").click()  # no reason: refused in place, nothing written
    expect(owner.get_by_test_id("replace-form")).to_contain_text("A reason is required.")
    owner.get_by_test_id("replace-card").scroll_into_view_if_needed()
    screenshot(owner, "gift-card-replace-form")
    owner.get_by_test_id("replace-form").get_by_label("Reason").fill("Sale's answer lost at the till")
    owner.get_by_test_id("replace-form").get_by_role("button", name="Replace card").click()
    expect(owner.get_by_role("alert")).to_contain_text("shown this once")
    code = owner.get_by_test_id("replacement-code").inner_text()
    assert CODE.match(code) and not code.endswith(last4), code
    expect(owner.get_by_test_id("replacement")).to_contain_text(f"•••• {last4}: disabled")
    screenshot(owner, "gift-card-replaced")

    owner.goto(f"/staff/gift-cards?q={last4}")  # the old card: disabled, empty, its ledger names the new card
    owner.get_by_test_id("gift-cards").get_by_role("link", name=f"•••• {last4}").click()
    expect(owner.get_by_test_id("card-balance")).to_have_text("€0.00")
    expect(owner.get_by_test_id("ledger")).to_contain_text(f"Replaced by gift card •••• {code[-4:]}")
    expect(owner.get_by_test_id("replace-card")).to_contain_text("A disabled card cannot be replaced")
    expect(owner.get_by_test_id("replace-form")).to_have_count(0)
    screenshot(owner, "gift-card-replaced-old-card")

    # --- the new card at the till: a ticket voided with it on spends nothing; then a sale takes it ----------------
    till.get_by_role("dialog", name="Connection and offline sales").get_by_role("button", name="Close").click()
    till.get_by_test_id("products").get_by_role("button", name="Kreuzberg House Espresso").click()
    till.get_by_test_id("variants").get_by_role("button", name="250 g / Whole bean").click()
    till.get_by_test_id("pay-cash").click()
    till.get_by_test_id("gift-code").fill(code)
    till.get_by_test_id("take-gift-card").click()
    expect(till.get_by_test_id("tenders")).to_contain_text(f"Gift card •••• {code[-4:]} €3.40")
    till.get_by_test_id("pay-close").click()
    till.get_by_role("button", name="Void", exact=True).click()
    expect(till.get_by_test_id("void-stored")).to_contain_text(
        f"Not charged, nothing to give back: gift card •••• {code[-4:]} €3.40"
    )
    till.get_by_test_id("void-reason").select_option("Customer changed their mind")
    screenshot(till, "pos-void-with-gift-card")
    till.get_by_role("button", name="Void ticket").click()
    expect(till.get_by_text(f"Nothing was taken from the gift card •••• {code[-4:]} €3.40").first).to_be_visible()
    owner.goto(f"/staff/gift-cards?q={code[-4:]}")
    owner.get_by_test_id("gift-cards").get_by_role("link", name=f"•••• {code[-4:]}").click()
    expect(owner.get_by_test_id("card-balance")).to_have_text("€3.40")  # the void took nothing

    till.get_by_test_id("products").get_by_role("button", name="Kreuzberg House Espresso").click()
    till.get_by_test_id("variants").get_by_role("button", name="250 g / Whole bean").click()
    till.get_by_test_id("pay-cash").click()
    till.get_by_test_id("gift-code").fill(code)
    till.get_by_test_id("take-gift-card").click()
    expect(till.get_by_test_id("pay-due")).to_have_text("€8.50")
    till.get_by_test_id("quick-cash").get_by_role("button", name="Exact €8.50").click()
    expect(till.get_by_test_id("last-sale-text")).to_contain_text("€11.90")

    # --- the shift report: the gift card among the tenders, not in the drawer (100 + 3.40 + 8.50 cash) -----------
    till.get_by_role("button", name="Close shift").click()
    expect(till.get_by_test_id("cash-check")).to_contain_text("€111.90")
    till.get_by_test_id("counted-cash").fill("111.90")
    till.get_by_test_id("confirm-close").click()
    report = till.get_by_test_id("shift-report")
    expect(report).to_contain_text("Cash €11.90, Gift card €3.40")
    expect(report).to_contain_text("Gift cards, store credit and points: €3.40 taken, €0.00 given back")
    screenshot(till, "pos-shift-report-gift-card")
    with till.expect_popup() as popup:
        report.get_by_role("link", name="Printable report").click()
    printable = popup.value
    expect(printable.locator('[data-figure="sales_gift_card"]')).to_have_text("€3.40")
    expect(printable.locator('[data-figure="expected"]')).to_have_text("€111.90")
    expect(printable.locator('[data-figure="stored_value_note"]')).to_contain_text("not the cash in the drawer")
    screenshot(printable, "pos-shift-report-gift-card-printable")

    owner.goto("/staff/gift-cards")  # leave the demo store as it was for the other tests of this server
    products = owner.get_by_test_id("gift-card-products")
    products.get_by_text("Choose the products").click()
    products.get_by_label(PRODUCT).uncheck()
    products.get_by_role("button", name="Save").click()
    expect(owner.get_by_test_id("gift-products-now")).not_to_contain_text(PRODUCT)
