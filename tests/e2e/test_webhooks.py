"""A payment's provider webhooks on the manager's webhooks page: searched, payload read, replayed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import LIVE_ENV, screenshot, sign_in
from tests.e2e.test_checkout import _add, _checkout
from tests.e2e.test_staff_nav import open_menu

_LATEST_REF = """
import asyncio, asyncpg, os
async def main():
    conn = await asyncpg.connect(os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://"))
    print(await conn.fetchval("SELECT provider_ref FROM payment_intents ORDER BY created_at DESC LIMIT 1"))
    await conn.close()
asyncio.run(main())
"""


def _deliver(base: str, type_: str, obj: dict[str, object]) -> None:
    from app.payments.signing import sign

    secret_key = (Path(LIVE_ENV["TILL_DATA_DIR"]) / "secret_key").read_text().strip()
    import hashlib
    import hmac

    secret = "whsec_" + hmac.new(secret_key.encode(), b"sandbox-webhooks", hashlib.sha256).hexdigest()
    body = json.dumps(
        {"id": f"evt_{uuid.uuid4().hex[:20]}", "type": type_, "created": int(time.time()), "data": {"object": obj}}
    ).encode()
    answer = httpx.post(
        f"{base}/webhooks/sandbox", content=body, headers={"stripe-signature": sign(body, secret, int(time.time()))}
    )
    assert answer.status_code == 200, answer.text


def test_manager_reads_and_replays_webhook_events(phone: Page, tablet: Page, live_server: str) -> None:
    _add(phone, "Butter Croissant")
    _checkout(phone, "4242 4242 4242 4242")
    ref = subprocess.run(
        [sys.executable, "-c", _LATEST_REF], env=LIVE_ENV, capture_output=True, text=True, check=True
    ).stdout.strip()
    _deliver(live_server, "payment_intent.succeeded", {"id": ref, "client_secret": f"{ref}_secret_x"})
    _deliver(live_server, "charge.refunded", {"id": "ch_e2e", "payment_intent": ref, "amount_refunded": 0})
    sign_in(tablet, DEMO_ACCOUNTS[1].email)
    open_menu(tablet, "Setup")
    tablet.get_by_role("link", name="Webhooks", exact=True).click()
    rows = tablet.get_by_test_id("webhook-rows")
    for _ in range(50):  # processed by the worker within a moment
        if rows.locator('tr[data-status="processed"]').count() >= 2:
            break
        time.sleep(0.2)
        tablet.reload()
    expect(rows.locator('tr[data-status="processed"]')).to_have_count(2)
    expect(rows).to_contain_text("charge.refunded")
    expect(rows).to_contain_text("unchanged")
    tablet.get_by_text("Payload").first.click()
    expect(rows).to_contain_text("[redacted]")
    screenshot(tablet, "staff-webhooks-tablet")
    tablet.get_by_label("Event type").fill("charge.")
    tablet.get_by_role("button", name="Search").click()
    expect(rows.locator("tr[data-event]")).to_have_count(1)
    rows.locator('input[name="ids"]').first.check()
    tablet.get_by_test_id("replay").click()
    expect(tablet.get_by_text("1 event queued again.")).to_be_visible()
    expect(tablet.get_by_label("Event type")).to_have_value("charge.")
