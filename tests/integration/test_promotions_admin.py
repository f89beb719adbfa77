"""Running promotions: the managers' pages (list with usage, create and edit with inline validation, the code
checked as you type, pause, resume, soft delete, the usage report and its CSV, the refund setting) and the
/api/v1/admin/promotions API (CRUD, usage, problem+json, OpenAPI)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core.rbac import Role
from app.payments.provider import CardDetails
from app.payments.registry import provider_for
from app.promotions.services import ListFilter, PromotionService
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.promotions import Sessions, make_promotion, promotion_state, quote
from tests.integration.shop import Shop, make_shop

BASE = "/staff/promotions"
API = "/api/v1/admin/promotions"
FORM = {
    "name": "Ten off over 20",
    "mode": "code",
    "code": "ten",
    "kind": "percentage",
    "percent": "10",
    "applies_to": "all",
    "min_subtotal": "20.00",
    "priority": "0",
}


async def _manager(client: AsyncTestClient[Litestar], world: World, shop: Shop) -> str:
    await sign_in(client, (await world.staff(shop.store, Role.MANAGER)).email)
    return csrf_from((await client.get(f"{BASE}/new")).text)


async def _paid_with_code(sessions: Sessions, shop: Shop, redis: Redis, settings: Settings, email: str) -> None:
    snapshot = await quote(sessions, shop, {"BEAN-1": 2}, codes=("TEN",), email=email)
    saga = CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))
    card = CardDetails("4242424242424242", 12, 2034, "123")
    outcome = await saga.complete(snapshot.id, uuid.uuid4().hex, PaymentInput(card=card), fingerprint="f")
    assert outcome.state == "completed"


async def test_a_manager_creates_a_promotion_and_sees_it_listed_with_its_usage(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    csrf = await _manager(client, world, shop)
    created = await client.post(f"{BASE}/new", data={**FORM, "_csrf_token": csrf})
    assert created.status_code == 303, created.text
    detail = await client.get(created.headers["location"])
    assert 'data-testid="promotion-code">TEN</code>' in detail.text  # kept upper-case
    assert 'data-testid="promotion-summary">10 % off over €20.00</dd>' in detail.text
    assert 'data-testid="promotion-state">active</span>' in detail.text
    await _paid_with_code(sessions, shop, redis, settings, "ann@example.com")
    listing = await client.get(BASE)
    assert "Ten off over 20" in listing.text and "<code>TEN</code>" in listing.text
    assert '<td class="num">1</td>' in listing.text and "€2.38" in listing.text  # 10 % of 23.80
    detail = await client.get(created.headers["location"])
    assert (
        'data-testid="usage-orders">1</dd>' in detail.text and 'data-testid="usage-discount">€2.38</dd>' in detail.text
    )
    assert 'data-testid="usage-revenue">€21.42</dd>' in detail.text
    assert 'data-status="used"' in detail.text and "ann@example.com" in detail.text
    # Search and filters (the search answers the rows alone to HTMX).
    rows = await client.get(f"{BASE}?q=te", headers={"hx-request": "true", "hx-target": "promotion-rows"})
    assert rows.text.startswith('<tbody id="promotion-rows"') and "Ten off over 20" in rows.text
    assert "No promotions match." in (await client.get(f"{BASE}?q=zzz")).text
    assert "No promotions match." in (await client.get(f"{BASE}?status=paused")).text
    assert "Ten off over 20" in (await client.get(f"{BASE}?kind=percentage&status=active")).text


async def test_the_form_says_every_problem_next_to_its_field_and_writes_nothing(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store, code="TEN")
    csrf = await _manager(client, world, shop)
    bad = {**FORM, "code": "Ten", "percent": "110", "min_subtotal": "abc", "ends_on": "2026-12-01",
           "starts_on": "2026-12-05", "_csrf_token": csrf}  # fmt: skip
    refused = await client.post(f"{BASE}/new", data=bad)
    assert refused.status_code == 422
    assert "An amount in EUR, such as 5.00." in refused.text  # the text that is not an amount, first
    bad["min_subtotal"] = "20"
    refused = await client.post(f"{BASE}/new", data=bad)
    assert refused.status_code == 422
    assert "TEN is already the code of another promotion." in refused.text  # whatever its case
    assert "A percentage above 0 and at most 100." in refused.text
    assert "The last day comes before the first." in refused.text
    assert 'value="Ten off over 20"' in refused.text  # values kept
    async with sessions() as session:
        assert len(await PromotionService(session, shop.store.id).rows(ListFilter())) == 1


async def test_the_code_is_checked_as_the_manager_types(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    taken = await make_promotion(sessions, shop.store, code="SUMMER")
    await _manager(client, world, shop)
    assert 'data-state="free"' in (await client.get(f"{BASE}/code-check?code=winter")).text
    answer = (await client.get(f"{BASE}/code-check?code=summer")).text
    assert 'data-state="taken"' in answer and "SUMMER is already the code of another promotion." in answer
    assert 'data-state="free"' in (await client.get(f"{BASE}/code-check?code=summer&id={taken.id}")).text  # its own
    assert "3 to 40 letters" in (await client.get(f"{BASE}/code-check?code=a!")).text
    assert "automatic" in (await client.get(f"{BASE}/code-check?code=")).text


async def test_edit_pause_resume_and_delete(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, code="TEN", usage_limit=5)
    csrf = await _manager(client, world, shop)
    form = await client.get(f"{BASE}/{promotion.id}/edit")
    assert 'name="code" value="TEN"' in form.text and 'name="usage_limit" type="text" value="5"' in form.text
    saved = await client.post(
        f"{BASE}/{promotion.id}/edit",
        data={**FORM, "code": "TEN", "percent": "15", "usage_limit": "5", "ends_on": "2030-01-31", "_csrf_token": csrf},
    )
    assert saved.status_code == 303
    detail = (await client.get(f"{BASE}/{promotion.id}")).text
    assert "15 % off over €20.00" in detail and "until 31 Jan 2030" in detail and "5 uses in all" in detail
    assert (await client.post(f"{BASE}/{promotion.id}/pause", data={"_csrf_token": csrf})).status_code == 303
    assert 'data-testid="promotion-state">paused' in (await client.get(f"{BASE}/{promotion.id}")).text
    assert (await client.post(f"{BASE}/{promotion.id}/resume", data={"_csrf_token": csrf})).status_code == 303
    assert 'data-testid="promotion-state">active' in (await client.get(f"{BASE}/{promotion.id}")).text
    deleted = await client.post(f"{BASE}/{promotion.id}/delete", data={"_csrf_token": csrf})
    assert deleted.status_code == 303 and deleted.headers["location"] == BASE
    listing = await client.get(BASE)
    assert "deleted: it no longer applies and its code is free." in listing.text
    assert f'data-promotion="{promotion.id}"' not in listing.text
    assert f'data-promotion="{promotion.id}" data-state="deleted"' in (await client.get(f"{BASE}?status=deleted")).text
    assert 'data-state="free"' in (await client.get(f"{BASE}/code-check?code=TEN")).text  # the code is free again


async def test_the_usage_report_exports_each_use_as_csv(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, code="TEN")
    for email in ("ann@example.com", "=cmd@example.com"):
        await _paid_with_code(sessions, shop, redis, settings, email)
    await _manager(client, world, shop)
    answer = await client.get(f"{BASE}/{promotion.id}/usage.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["used_at", "order", "customer", "code", "status", "discount", "order_total", "currency"]
    assert sorted(r[2] for r in rows[1:]) == ["'=cmd@example.com", "ann@example.com"]  # no spreadsheet formulas
    assert {(r[3], r[4], r[5], r[6]) for r in rows[1:]} == {("TEN", "used", "2.38", "21.42")}


async def test_the_refund_setting_is_saved_from_the_list(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    csrf = await _manager(client, world, shop)
    assert (
        await client.post(f"{BASE}/settings", data={"return_use_on_refund": "on", "_csrf_token": csrf})
    ).status_code == 303
    async with sessions() as session:
        assert (await PromotionService(session, shop.store.id).settings()).return_use_on_refund
    assert 'name="return_use_on_refund" checked' in (await client.get(BASE)).text


async def test_promotions_are_for_managers_and_their_own_store(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    other = await make_shop(world)
    theirs = await make_promotion(sessions, other.store)
    await sign_in(client, (await world.staff(shop.store, Role.STAFF)).email)
    assert (await client.get(BASE)).status_code == 403
    await sign_in(client, (await world.staff(shop.store, Role.MANAGER)).email)
    assert (await client.get(f"{BASE}/{theirs.id}")).status_code == 404
    token = bearer(await issue_token(world, shop.store, Role.MANAGER))
    assert (await client.get(f"{API}/{theirs.id}", headers=token)).status_code == 404
    assert (await client.get(API, headers=bearer(await issue_token(world, shop.store, Role.STAFF)))).status_code == 403


# ---- the API -----------------------------------------------------------------------------------------------------


async def test_the_api_creates_changes_pauses_reports_and_deletes(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    body: dict[str, Any] = {"name": "Ten off", "kind": "percentage", "code": "ten", "percent_bps": 1000,
                            "usage_limit": 10, "ends_on": "2030-12-31"}  # fmt: skip
    created = await client.post(API, json=body, headers={**auth, "Idempotency-Key": "create-1"})
    assert created.status_code == 201, created.text
    promotion = created.json()
    assert promotion["code"] == "TEN" and promotion["state"] == "active" and promotion["summary"] == "10 % off"
    assert promotion["ends_on"] == "2030-12-31" and promotion["ends_at"] == "2030-12-31T23:00:00Z"
    again = await client.post(API, json=body, headers={**auth, "Idempotency-Key": "create-1"})
    assert again.json()["id"] == promotion["id"]  # a retry makes no second promotion
    duplicate = await client.post(API, json=body, headers=auth)
    assert duplicate.status_code == 422
    assert duplicate.headers["content-type"].startswith("application/problem+json")
    assert duplicate.json()["fields"] == {"code": "TEN is already the code of another promotion."}
    wrong = await client.post(API, json={"name": "", "kind": "bogus"}, headers=auth)
    assert set(wrong.json()["fields"]) == {"name", "kind"}

    url = f"{API}/{promotion['id']}"
    changed = await client.patch(url, json={"percent_bps": 1500, "status": "paused"}, headers=auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["percent_bps"] == 1500 and changed.json()["state"] == "paused"
    resumed = await client.patch(url, json={"status": "active"}, headers=auth)
    assert resumed.json()["state"] == "active"
    await _paid_with_code(sessions, shop, redis, settings, "ann@example.com")
    usage = (await client.get(f"{url}/usage", headers=auth)).json()
    assert usage["totals"] == {"orders": 1, "discount_minor": 357, "revenue_minor": 2023, "held": 0}
    assert [(u["status"], u["customer"], u["discount_minor"]) for u in usage["uses"]] == [
        ("used", "ann@example.com", 357)
    ]
    assert usage["days"][0]["orders"] == 1
    listed = (await client.get(f"{API}?q=TEN", headers=auth)).json()
    assert [p["id"] for p in listed] == [promotion["id"]] and listed[0]["usage"]["orders"] == 1
    deleted = await client.delete(url, headers=auth)
    assert deleted.status_code == 200 and deleted.json()["state"] == "deleted"
    assert (await client.get(API, headers=auth)).json() == []
    assert (await client.patch(url, json={"name": "x"}, headers=auth)).status_code == 422
    assert (await promotion_state(sessions, shop.store.id, uuid.UUID(promotion["id"])))["uses_claimed"] == 1


async def test_the_api_is_in_openapi_with_the_quotes_code(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/admin/promotions"])
    assert {"get", "patch", "delete"} <= set(schema["paths"]["/api/v1/admin/promotions/{promotion_id}"])
    assert "get" in schema["paths"]["/api/v1/admin/promotions/{promotion_id}/usage"]
    quote_in = schema["components"]["schemas"]["QuoteIn"]["properties"]
    assert "code" in quote_in and "promotion_unavailable" in quote_in["code"]["description"]
