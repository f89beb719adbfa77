"""The POS tablet at the counter (docs/pos.md): a manager sets up a register with the sandbox card reader, a
cashier opens it with a float, sells for cash (three taps), splits cash and card at the reader, parks and resumes
a ticket; then the network drops: five sales are queued encrypted on the tablet, which survives a reload while
offline; back online the queue drains by itself and exactly five orders reach the server and the live board —
and replaying the same sync payload by hand makes none more."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import TABLET, screenshot, sign_in

CASHIER = DEMO_ACCOUNTS[3].email
MANAGER = DEMO_ACCOUNTS[1].email
REGISTER = "Front counter"  # its own register: other e2e tests may add theirs to the same demo store
LIVE_MS = 15_000
# Every record of an IndexedDB store of the tablet, as JSON (a CryptoKey shows as {}, bytes by their length).
IDB_ALL = """(store) => new Promise((resolve, reject) => {
  const open = indexedDB.open("till-pos");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const read = open.result.transaction(store).objectStore(store).getAll();
    read.onsuccess = () => resolve(JSON.parse(JSON.stringify(read.result, (k, v) =>
      v instanceof ArrayBuffer || ArrayBuffer.isView(v) ? v.byteLength : v)));
  };
})"""


@pytest.fixture
def contexts(browser: Browser, live_server: str) -> Iterator[dict[str, BrowserContext]]:
    made = {
        name: browser.new_context(viewport=TABLET, base_url=live_server, has_touch=name == "till")
        for name in ("till", "manager", "reader")
    }
    yield made
    for context in made.values():
        context.close()


def _register_with_reader(manager: Page, reader: Page) -> None:
    """The manager adds the register and pairs the sandbox reader (/pos/reader, playing the terminal) with it."""
    sign_in(manager, MANAGER)
    manager.goto("/staff/registers")
    manager.get_by_label("Name", exact=True).fill(REGISTER)
    manager.get_by_role("button", name="Add register").click()
    row = manager.get_by_test_id("registers").locator(f'tr[data-register="{REGISTER}"]')
    expect(row).to_be_visible()
    screenshot(manager, "pos-registers-staff")
    row.get_by_role("link", name="Pair a reader").click()
    reader.goto("/pos/reader")
    code = reader.get_by_test_id("pairing-code").inner_text()
    manager.get_by_label("Pairing code").fill(code)
    manager.get_by_label("Label").fill("Counter reader")
    manager.get_by_role("button", name="Pair reader").click()
    expect(manager.get_by_test_id("paired-reader")).to_contain_text("Counter reader")
    expect(reader.get_by_test_id("reader-ready")).to_be_visible(timeout=LIVE_MS)
    screenshot(manager, "pos-register-reader-paired")


def _tap_product(till: Page, name: str) -> None:
    till.get_by_test_id("products").get_by_role("button", name=name).click()


def _cash_exact(till: Page) -> None:
    till.get_by_test_id("pay-cash").click()
    till.get_by_test_id("quick-cash").get_by_role("button", name=re.compile("^Exact")).click()


def _board_cards(board: Page) -> int:
    board.goto("/staff/board")
    expect(board.get_by_test_id("connection")).to_have_text("Live", timeout=LIVE_MS)
    return board.locator(".board .order-card").count()


def test_a_cashier_sells_online_and_offline_and_every_offline_sale_arrives_once(
    contexts: dict[str, BrowserContext],
) -> None:
    manager = contexts["manager"].new_page()
    reader = contexts["reader"].new_page()
    _register_with_reader(manager, reader)

    # --- open the register with a counted float --------------------------------------------------------------
    till = contexts["till"].new_page()
    sign_in(till, CASHIER)
    till.goto("/pos")
    expect(till.locator("body")).to_have_attribute("data-ready", "true")
    expect(till.locator("body")).to_have_attribute("data-offline-ready", "true")  # the service worker controls it
    expect(till.get_by_test_id("net-status")).to_have_attribute("data-state", "online")
    screenshot(till, "pos-registers")
    till.get_by_test_id("registers").get_by_role("button", name=re.compile(REGISTER)).click()
    till.get_by_test_id("float").fill("100")
    screenshot(till, "pos-open-shift")
    till.get_by_role("button", name="Open shift").click()
    expect(till.get_by_test_id("register-name")).to_contain_text(REGISTER)
    expect(till.get_by_test_id("ticket-empty")).to_be_visible()
    screenshot(till, "pos-sell")

    # --- a one-item cash sale in three taps: product, Cash, the €5 note ----------------------------------------
    _tap_product(till, "Butter Croissant")
    till.get_by_test_id("pay-cash").click()
    expect(till.get_by_test_id("pay-due")).to_have_text("€2.40")
    screenshot(till, "pos-cash-quick-amounts")
    till.locator('[data-testid=quick-cash] [data-cash="500"]').click()
    expect(till.get_by_test_id("change-due")).to_have_text("Change €2.60")
    expect(till.get_by_test_id("last-sale-text")).to_contain_text(re.compile(r"Order #\d+"))
    screenshot(till, "pos-cash-sale-change")

    # --- split: €5 cash, the rest on the card at the reader (approved on the reader's screen) -------------------
    _tap_product(till, "Kreuzberg House Espresso")
    till.get_by_test_id("variants").get_by_role("button", name="250 g / Whole bean").click()
    till.get_by_test_id("pay-split").click()
    expect(till.get_by_test_id("pay-total")).to_have_text("€11.90")
    till.get_by_test_id("pay-amount").fill("5")
    till.get_by_test_id("quick-cash").get_by_role("button", name="Exact €5.00").click()
    expect(till.get_by_test_id("pay-due")).to_have_text("€6.90")
    till.get_by_test_id("pay-amount").fill("3")  # two friends: €3.00 on one card, the rest on the other
    till.get_by_test_id("start-card").click()
    expect(till.get_by_test_id("card-wait")).to_contain_text("Waiting for the card: €3.00")
    screenshot(till, "pos-card-waiting")
    expect(reader.get_by_test_id("reader-amount")).to_have_text("€3.00", timeout=LIVE_MS)
    screenshot(reader, "pos-reader-payment")
    reader.get_by_role("button", name="Approve").click()
    expect(reader.get_by_test_id("reader-outcome")).to_have_text("Approved")
    expect(till.get_by_test_id("pay-due")).to_have_text("€3.90", timeout=LIVE_MS)
    screenshot(till, "pos-split-second-card")
    till.get_by_test_id("pay-amount").fill("3.90")
    till.get_by_test_id("start-card").click()
    expect(reader.get_by_test_id("reader-amount")).to_have_text("€3.90", timeout=LIVE_MS)
    reader.get_by_role("button", name="Approve").click()
    expect(reader.get_by_test_id("reader-outcome")).to_have_text("Approved")
    expect(till.get_by_test_id("change-due")).to_have_text("No change", timeout=LIVE_MS)
    expect(till.get_by_test_id("last-sale-text")).to_contain_text("€11.90")
    screenshot(till, "pos-split-sale-done")

    # --- park a ticket, sell another, resume the parked one -----------------------------------------------------
    _tap_product(till, "Pain au Chocolat")
    till.get_by_test_id("park").click()
    till.keyboard.type("BAK-FRANZ")  # a keyboard-wedge scanner: the code and Enter, into the input that keeps focus
    till.keyboard.press("Enter")
    expect(till.get_by_test_id("ticket-lines")).to_contain_text("Franzbrötchen")
    tickets = till.get_by_test_id("tickets")
    expect(tickets.get_by_role("button", name=re.compile("Ticket"))).to_have_count(2)
    screenshot(till, "pos-parked-ticket")
    _cash_exact(till)
    expect(till.get_by_test_id("last-sale-text")).to_contain_text("€3.20")
    tickets.get_by_role("button", name=re.compile(r"1 item · €2\.80")).click()
    expect(till.get_by_test_id("ticket-lines")).to_contain_text("Pain au Chocolat")
    screenshot(till, "pos-resumed-ticket")
    _cash_exact(till)
    expect(till.get_by_test_id("last-sale-text")).to_contain_text("€2.80")

    # --- void a ticket with a reason: nothing is sold, and the shift report counts it --------------------------
    _tap_product(till, "Cardamom Bun")
    till.locator("[data-action=void-ticket]").click()
    till.get_by_test_id("void-reason").select_option("Entered by mistake")
    with till.expect_response(lambda r: r.url.endswith("/pos/api/voids")) as void_answer:
        till.get_by_role("button", name="Void ticket").click()
    assert void_answer.value.status == 201
    expect(till.get_by_test_id("ticket-lines")).not_to_contain_text("Cardamom Bun")

    # --- offline: five sales queue up, encrypted, and a reload keeps the till working ---------------------------
    board = manager
    cards_before = _board_cards(board)
    syncs: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []

    def sent(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/pos/api/sync"):
            syncs.append({"body": request.post_data, "csrf": request.headers.get("x-csrftoken")})

    def answered(response: Response) -> None:
        if response.request.method == "POST" and response.url.endswith("/pos/api/sync") and response.ok:
            answers.append(response.json())

    till.on("request", sent)
    till.on("response", answered)
    contexts["till"].set_offline(True)
    expect(till.get_by_test_id("net-status")).to_have_attribute("data-state", "offline")
    offline_sales = ["Butter Croissant", "Pain au Chocolat", "Cardamom Bun", "Butter Croissant", "Franzbrötchen"]
    for done, product in enumerate(offline_sales[:3], start=1):
        _tap_product(till, product)
        _cash_exact(till)
        expect(till.get_by_test_id("queue-depth")).to_have_text(str(done))
        expect(till.get_by_test_id("last-sale-text")).to_contain_text("Saved on this tablet")
    screenshot(till, "pos-offline-queued")
    till.reload()  # no network: the service worker serves the shell, the catalog and the code
    expect(till.locator("body")).to_have_attribute("data-ready", "true")
    expect(till.get_by_test_id("net-status")).to_have_attribute("data-state", "offline")
    expect(till.get_by_test_id("queue-depth")).to_have_text("3")
    expect(till.get_by_test_id("catalog-note")).to_contain_text("Offline")
    screenshot(till, "pos-offline-after-reload")
    for done, product in enumerate(offline_sales[3:], start=4):
        _tap_product(till, product)
        _cash_exact(till)
        expect(till.get_by_test_id("queue-depth")).to_have_text(str(done))
    stored = till.evaluate(IDB_ALL, "queue")  # what sits in IndexedDB: ids and a checksum in the clear, no sale
    assert len(stored) == 5
    for entry in stored:
        assert set(entry) == {
            "client_sale_id", "register_id", "shift_id", "sequence", "queued_at", "status", "reason", "checksum", "box"
        }  # fmt: skip
        assert re.fullmatch(r"[0-9a-f]{64}", entry["checksum"]) and entry["box"]["iv"] == 12
    till.get_by_test_id("net-status").click()
    expect(till.get_by_test_id("queue-list").get_by_role("listitem")).to_have_count(5)
    screenshot(till, "pos-offline-queue-list")
    till.get_by_role("dialog").get_by_role("button", name="Close", exact=True).click()
    assert syncs == []  # nothing left the tablet while offline

    # --- back online: the queue drains by itself, oldest first -----------------------------------------------------
    contexts["till"].set_offline(False)
    expect(till.get_by_test_id("queue-depth")).to_have_text("0", timeout=LIVE_MS)
    expect(till.get_by_test_id("net-status")).to_have_attribute("data-state", "online")
    screenshot(till, "pos-back-online-synced")
    results = [r for answer in answers for r in answer["results"]]
    assert [r["status"] for r in results] == ["created"] * 5
    sent_entries = [e for s in syncs for e in json.loads(s["body"])["entries"]]
    assert [e["sequence"] for e in sent_entries] == sorted(e["sequence"] for e in sent_entries)
    numbers = [r["order_number"] for r in results]
    assert len(set(numbers)) == 5

    # exactly five new orders, on the live board
    for number in numbers:
        expect(board.get_by_test_id(f"card-{number}")).to_be_visible(timeout=LIVE_MS)
    assert board.locator(".board .order-card").count() == cards_before + 5
    screenshot(board, "pos-offline-orders-on-board")

    # replaying the same sync payload by hand: every entry is "existing", no new order
    replay = contexts["till"].request.post(
        "/pos/api/sync",
        data=syncs[0]["body"],
        headers={"content-type": "application/json", "x-csrftoken": syncs[0]["csrf"] or ""},
    )
    assert replay.status == 200, replay.text()
    again = replay.json()["results"]
    assert {r["status"] for r in again} == {"existing"}
    assert {r["order_number"] for r in again} <= set(numbers)
    assert _board_cards(board) == cards_before + 5

    # --- close the shift: expected 100 + 13.40 cash online + 14.20 offline; 127.00 counted is 0.60 short ------------
    till.get_by_role("button", name="Close shift").click()
    expect(till.get_by_test_id("cash-check")).to_contain_text("€127.60")
    till.get_by_test_id("counted-cash").fill("127.00")
    expect(till.get_by_test_id("over-short")).to_have_text("Short €0.60")
    screenshot(till, "pos-close-shift")
    till.get_by_test_id("confirm-close").click()
    report = till.get_by_test_id("shift-report")
    expect(report).to_contain_text("Short €0.60")
    expect(report).to_contain_text("9 · €34.50")  # 4 sales online (€20.30), 5 offline (€14.20)
    expect(report).to_contain_text("1 ticket, 0 lines · €3.40")  # the voided Cardamom Bun
    screenshot(till, "pos-shift-report")
    assert till.evaluate(IDB_ALL, "keys") == []  # the shift's key left the tablet with the shift
    with till.expect_popup() as popup:
        report.get_by_role("link", name="Printable report").click()
    expect(popup.value.get_by_text("127.60").first).to_be_visible()
    screenshot(popup.value, "pos-shift-report-printable")
