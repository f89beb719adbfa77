"""A manager answers a dispute: the order page links to it, the evidence pack shows the order, a wrong file
is refused next to the field, a note is added and the evidence submitted (recorded by the sandbox)."""

from __future__ import annotations

import subprocess
import sys

from playwright.sync_api import FilePayload, Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import LIVE_ENV, screenshot, sign_in
from tests.e2e.test_checkout import _add, _checkout
from tests.servers import ROOT


def test_manager_answers_a_dispute_with_a_note_and_submits_it(phone: Page, tablet: Page) -> None:
    _add(phone, "Butter Croissant")
    _checkout(phone, "4242 4242 4242 4242")
    number = phone.get_by_test_id("order-number").inner_text().removeprefix("Order #")
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.e2e.dispute_seed", number],
        env=LIVE_ENV, cwd=ROOT, check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert seeded.returncode == 0 and seeded.stdout.strip(), seeded.stderr[-2000:]

    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    tablet.get_by_role("link", name="Orders").first.click()
    tablet.get_by_role("link", name=f"#{number}").click()
    expect(tablet.get_by_test_id("payment-status")).to_have_text("disputed")
    tablet.get_by_role("link", name="Open the dispute").click()
    expect(tablet.get_by_test_id("dispute-status")).to_have_text("needs response")
    expect(tablet.get_by_test_id("receipt")).to_contain_text("Butter Croissant")
    expect(tablet.get_by_test_id("timeline")).to_contain_text("dispute opened: fraudulent")

    wrong: FilePayload = {"name": "proof.html", "mimeType": "application/pdf", "buffer": b"<html></html>"}
    tablet.get_by_label("Add a file").set_input_files(files=[wrong])
    tablet.get_by_role("button", name="Upload").click()
    expect(tablet.get_by_test_id("file-error")).to_have_text("Upload a PDF, PNG or JPEG.")
    tablet.get_by_label("Add a note").fill("Collected in the shop by the cardholder; receipt signed.")
    tablet.get_by_role("button", name="Add note").click()
    expect(tablet.get_by_test_id("evidence-items")).to_contain_text("Collected in the shop")
    screenshot(tablet, "dispute-tablet")

    tablet.on("dialog", lambda dialog: dialog.accept())
    tablet.get_by_test_id("submit-evidence").click()
    expect(tablet.get_by_test_id("submitted")).to_contain_text("The pack is read-only.")
    expect(tablet.get_by_test_id("dispute-status")).to_have_text("under review")
    screenshot(tablet, "dispute-submitted-tablet")
    tablet.get_by_role("link", name="All disputes").click()
    expect(tablet.get_by_test_id("dispute-rows")).to_contain_text(f"#{number}")
