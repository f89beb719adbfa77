"""The POS's staff pages: registers (managers create, rename, deactivate; each shows its open shift), a manager's
own PIN, and a shift's printable report and CSV."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.passwords import verify_password
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.stores.models import Membership, Store
from tests.integration.conftest import World, csrf_from
from tests.integration.pos import API, Client, Sessions, open_till, sale_body, signed_in


async def test_managers_run_the_registers(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)  # Counter 1, its shift open
    cashier_page = await client.get("/staff/registers")
    assert cashier_page.status_code == 403
    await signed_in(client, till.manager)
    page = await client.get("/staff/registers")
    assert page.status_code == 200
    assert 'data-register="Counter 1"' in page.text and 'badge ok">open<' in page.text
    token = csrf_from(page.text)

    made = await client.post("/staff/registers", data={"name": "  Window   seat ", "_csrf_token": token})
    assert made.status_code == 303
    for name, error in (("", "Required, e.g. Counter 1."), ("counter 1", "There is a register called"),
                        ("x" * 61, "At most 60 characters.")):  # fmt: skip
        refused = await client.post("/staff/registers", data={"name": name, "_csrf_token": token})
        assert refused.status_code == 422 and error in refused.text, name
    page = await client.get("/staff/registers")
    assert 'data-register="Window seat"' in page.text
    registers = {r["name"]: r["id"] for r in (await client.get(f"{API}/registers", headers={})).json()}
    window = registers["Window seat"]

    renamed = await client.post(f"/staff/registers/{window}/rename", data={"name": "Terrace", "_csrf_token": token})
    assert renamed.status_code == 303
    taken = await client.post(f"/staff/registers/{window}/rename", data={"name": "Counter 1", "_csrf_token": token})
    assert taken.status_code == 422 and "There is a register called Counter 1 already." in taken.text
    assert 'data-register="Terrace"' in taken.text  # the page still shows the name it has

    busy = await client.post(f"/staff/registers/{till.register_id}/active", data={"active": "false",
                                                                                  "_csrf_token": token})  # fmt: skip
    assert busy.status_code == 409 and "has an open shift" in busy.text
    off = await client.post(f"/staff/registers/{window}/active", data={"active": "false", "_csrf_token": token})
    assert off.status_code == 303
    listed = [r["name"] for r in (await client.get(f"{API}/registers")).json()]
    assert listed == ["Counter 1"]
    refused = await client.post(
        f"{API}/shifts", json={"register_id": window, "opening_float_minor": 0}, headers={"x-csrftoken": token}
    )
    assert refused.status_code == 422 and "register_id" in refused.json()["fields"]
    back = await client.post(f"/staff/registers/{window}/active", data={"active": "true", "_csrf_token": token})
    assert back.status_code == 303
    async with sessions() as session:
        bind_store(session, till.store.id)
        actions = [e.action for e in await session.scalars(select(AuditEntry).order_by(AuditEntry.created_at))]
    assert [a for a in actions if a.startswith("pos.register")] == [
        "pos.register_created", "pos.register_renamed", "pos.register_deactivated", "pos.register_reactivated",
    ]  # fmt: skip

    other = await open_till(client, world, sessions, role=Role.MANAGER)
    theirs = await client.post(
        f"/staff/registers/{window}/rename", data={"name": "Mine", "_csrf_token": other.headers["x-csrftoken"]}
    )
    assert theirs.status_code == 404


async def test_a_manager_sets_their_own_pin(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    assert (await client.get("/staff/pos/pin")).status_code == 403  # a cashier
    await signed_in(client, till.manager)
    page = await client.get("/staff/pos/pin")
    assert page.status_code == 200 and "no PIN" in page.text
    token = csrf_from(page.text)
    digits = "4 to 8 digits."
    cases = [("12a4", "12a4", digits), ("123", "123", digits), ("123456789", "123456789", digits)]
    for pin, confirm, error in [*cases, ("2580", "2581", "The two PINs differ.")]:
        refused = await client.post("/staff/pos/pin", data={"pin": pin, "confirm": confirm, "_csrf_token": token})
        assert refused.status_code == 422 and error in refused.text, pin
    done = await client.post("/staff/pos/pin", data={"pin": "2580", "confirm": "2580", "_csrf_token": token})
    assert done.status_code == 303
    assert "PIN set" in (await client.get("/staff/pos/pin")).text
    async with sessions() as session:
        bind_store(session, till.store.id)
        membership = await session.scalar(select(Membership).where(Membership.user_id == till.manager.user.id))
    assert membership is not None and membership.pos_pin_hash and "2580" not in membership.pos_pin_hash
    assert verify_password(membership.pos_pin_hash, "2580")
    cleared = await client.post("/staff/pos/pin", data={"action": "clear", "_csrf_token": token})
    assert cleared.status_code == 303 and "no PIN" in (await client.get("/staff/pos/pin")).text


async def test_the_shift_report_prints_and_downloads(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions, float_minor=5000)
    for sale in (sale_body(till, {"CRO-1": 2}), sale_body(till, {"MUG-1": 1}, discounts={"MUG-1": 100})):
        assert (await client.post(f"{API}/sales", json=sale, headers=till.headers)).status_code == 201
    await client.post(f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 6800, "note": "=SUM(A1)"},
                      headers=till.headers)  # fmt: skip
    page = await client.get(f"/pos/shifts/{till.shift_id}/report")
    assert page.status_code == 200
    for figure, text in (("sales_count", "2"), ("sales_total", "€17.80"), ("expected", "€67.80"),
                         ("counted", "€68.00"), ("over_short", "€0.20"), ("discounts", "−€1.00")):  # fmt: skip
        assert f'data-figure="{figure}">{text}<' in page.text, figure
    assert "Over" in page.text and "=SUM(A1)" in page.text
    download = await client.get(f"/pos/shifts/{till.shift_id}/report.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"].startswith('attachment; filename="shift-Counter-1-')
    rows = dict(csv.reader(io.StringIO(download.text)))
    assert (rows["sales_minor"], rows["sales_cash_minor"], rows["expected_cash_minor"]) == ("1780", "1780", "6780")
    assert (rows["over_short_minor"], rows["discounts_minor"], rows["close_note"]) == ("20", "100", "'=SUM(A1)")


async def test_managers_set_the_till_settings_on_the_registers_page(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    refused = await client.post("/staff/registers/settings", data={"_csrf_token": till.headers["x-csrftoken"]})
    assert refused.status_code == 403
    await signed_in(client, till.manager)
    page = await client.get("/staff/registers")
    assert 'name="discount_limit_percent" type="text" value="10"' in page.text
    assert 'name="max_offline_sale" type="text" value="200.00"' in page.text
    token = csrf_from(page.text)
    bad = await client.post(
        "/staff/registers/settings",
        data={"discount_limit_percent": "101", "max_offline_sale": "-5", "max_offline_total": "lots",
              "max_offline_hours": "0", "offline_tenders": ["cash", "voucher"], "_csrf_token": token},
    )  # fmt: skip
    assert bad.status_code == 422
    wanted = ("A share from 0 to 100", "An amount like 200.00", "Whole hours like 24", "store credit, or none.")
    for message in wanted:
        assert message in bad.text
    saved = await client.post(
        "/staff/registers/settings",
        data={"discount_limit_percent": "12,5", "max_offline_sale": "150", "max_offline_total": "",
              "max_offline_hours": "8", "offline_tenders": ["card", "cash"], "_csrf_token": token},
    )  # fmt: skip
    assert saved.status_code == 303
    async with sessions() as session:
        store = await session.get(Store, till.store.id)
        bind_store(session, till.store.id)
        audited = await session.scalar(select(AuditEntry).where(AuditEntry.action == "settings.pos"))
    assert store is not None and store.settings["pos"] == {
        "cashier_discount_limit_bps": 1250, "offline_tenders": ["cash", "card"], "max_offline_sale_minor": 15_000,
        "max_offline_total_minor": None, "max_offline_hours": 8,
    }  # fmt: skip
    assert audited is not None and audited.details["pos"]["cashier_discount_limit_bps"] == 1250
    page = await client.get("/staff/registers")
    assert 'value="12.5"' in page.text and 'name="max_offline_total" type="text" value=""' in page.text
    cashier = await signed_in(client, till.cashier)
    catalog = (await client.get(f"{API}/catalog", headers=cashier)).json()
    assert catalog["discount_limit_bps"] == 1250
    assert catalog["limits"] == {"offline_tenders": ["cash", "card"], "max_offline_sale_minor": 15_000,
                                 "max_offline_total_minor": None, "max_offline_hours": 8}  # fmt: skip
