"""The reconciliation report as a manager uses it (run, totals, drill-down, resolve, re-sync, CSV) and
/api/v1/admin/payments/reconciliation; bad input gets an inline error or a problem+json."""

from __future__ import annotations

import re
from typing import cast

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.money import Money
from app.core.rbac import Role
from app.payments.provider import RefundRequest
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.reconciliation.sources import SandboxLedger
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.shop import make_shop, place_order

Client = AsyncTestClient[Litestar]
BASE = "/staff/payments/reconciliation"


async def test_a_manager_runs_the_report_drills_into_a_drift_and_fixes_it(
    client: Client, world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    orders = [await place_order(sessions, shop, redis, settings) for _ in range(3)]
    assert len(orders) == 3
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)

    empty = await client.get(BASE)
    assert empty.status_code == 200 and 'data-testid="no-runs"' in empty.text
    ran = await client.post(f"{BASE}/run", data={"_csrf_token": csrf_from(empty.text)})
    assert ran.status_code == 303
    clean = await client.get(ran.headers["location"])
    assert 'data-testid="total-matched">3<' in clean.text and "No drift: every payment matches" in clean.text

    # Two drifts: a refund made at the provider, a fee the provider charged differently.
    provider = cast(SandboxProvider, provider_for(shop.store, redis, settings))
    ledger = SandboxLedger(redis, shop.store.id)
    refs = [p.ref async for p in ledger.payments(0, 2**40)]
    await provider.refund(RefundRequest(refs[0], Money(300, "EUR"), "dashboard"))
    await ledger.tamper(refs[1], fee=80)
    ran = await client.post(f"{BASE}/run", data={"_csrf_token": csrf_from(clean.text)})
    report = await client.get(ran.headers["location"])
    assert report.text.count('data-testid="drift-row"') == 2
    drift_links = re.findall(
        r'href="(/staff/payments/reconciliation/drifts/[0-9a-f-]+)" data-testid="drill"', report.text
    )
    pages = {link: (await client.get(link)).text for link in drift_links}
    refund_link = next(link for link, html in pages.items() if "Refund Till never recorded" in html)
    fee_link = next(link for link, html in pages.items() if "Fee differs" in html)
    assert refs[0] in pages[refund_link] and 'data-testid="resync"' in pages[refund_link]

    # Resolve without a reason: an inline error, the drift stays open.
    refused = await client.post(f"{fee_link}/resolve", data={"reason": " ", "_csrf_token": csrf_from(pages[fee_link])})
    assert refused.status_code == 422 and "Required: what was done about it." in refused.text
    resolved = await client.post(
        f"{fee_link}/resolve", data={"reason": "Provider fee changed", "_csrf_token": csrf_from(pages[fee_link])}
    )
    assert resolved.status_code == 303 and resolved.headers["location"].endswith("notice=resolved")
    again = await client.post(f"{fee_link}/resolve", data={"reason": "x", "_csrf_token": csrf_from(pages[fee_link])})
    assert again.status_code == 409 and "resolved already" in again.text

    synced = await client.post(f"{refund_link}/resync", data={"_csrf_token": csrf_from(pages[refund_link])})
    assert synced.status_code == 303 and synced.headers["location"].endswith("notice=cleared")
    cleared = await client.get(synced.headers["location"])
    assert 'data-testid="drift-status">cleared<' in cleared.text

    run_id = re.search(r"run=([0-9a-f-]+)", ran.headers["location"]).group(1)  # type: ignore[union-attr]
    csv = await client.get(f"{BASE}/runs/{run_id}/csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("kind,status,provider_ref") and len(lines) == 3
    assert any(line.startswith("fee_mismatch,resolved,") for line in lines)
    assert any(line.startswith("refund_missing_locally,cleared,") for line in lines)

    # The API: the latest run with its drifts; filters checked; resolve needs a reason.
    token = await issue_token(world, shop.store, Role.MANAGER)
    api = await client.get("/api/v1/admin/payments/reconciliation", headers=bearer(token))
    body = api.json()
    assert body["run"]["id"] == run_id and body["run"]["totals"]["matched"] == 1
    assert sorted((d["kind"], d["status"]) for d in body["drifts"]) == [
        ("fee_mismatch", "resolved"),
        ("refund_missing_locally", "cleared"),
    ]
    bad = await client.get("/api/v1/admin/payments/reconciliation?kind=everything", headers=bearer(token))
    assert bad.status_code == 422 and "kind" in bad.json()["fields"]
    window = await client.post(
        "/api/v1/admin/payments/reconciliation/runs",
        json={"since": "2026-12-05T00:00:00Z", "until": "2026-12-04T00:00:00Z"},
        headers={**bearer(token), "idempotency-key": "w1"},
    )
    assert window.status_code == 422 and window.headers["content-type"].startswith("application/problem+json")
    fresh = await client.post(
        "/api/v1/admin/payments/reconciliation/runs", json={}, headers={**bearer(token), "idempotency-key": "w2"}
    )
    assert fresh.status_code == 201 and fresh.json()["status"] == "succeeded"
    assert {k: v for k, v in fresh.json()["totals"].items() if v} == {"matched": 2, "fee_mismatch": 1}
    [fee] = (await client.get("/api/v1/admin/payments/reconciliation", headers=bearer(token))).json()["drifts"]
    no_reason = await client.post(
        f"/api/v1/admin/payments/reconciliation/drifts/{fee['id']}/resolve",
        json={"reason": ""},
        headers={**bearer(token), "idempotency-key": "r1"},
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["fields"]

    metrics = (await client.get("/metrics")).text
    assert 'till_reconciliation_open_drifts{kind="fee_mismatch"} 1.0' in metrics
    assert f'till_reconciliation_last_run_failed{{provider="sandbox",store="{shop.store.slug}"}} 0.0' in metrics
    ages = re.findall(
        rf'till_reconciliation_last_success_age_seconds{{provider="sandbox",store="{shop.store.slug}"}} ([0-9.e+-]+)',
        metrics,
    )
    assert len(ages) == 1 and 0 <= float(ages[0]) < 60
    assert "till_provider_calls_buffered" in metrics

    cashier = await world.staff(shop.store, Role.CASHIER)
    client.cookies.clear()
    await sign_in(client, cashier.email)
    assert (await client.get(BASE)).status_code == 403
    staff_token = await issue_token(world, shop.store, Role.STAFF)
    assert (await client.get("/api/v1/admin/payments/reconciliation", headers=bearer(staff_token))).status_code == 403
