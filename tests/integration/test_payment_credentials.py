"""Provider keys per store on /staff/settings/payments: encrypted at rest, shown as hints, never logged;
`till keys rotate` re-encrypts them under the newest key."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from app.cli import rotate_keys
from app.config import Settings
from app.core.encryption import DecryptionFailed, Keyring, keyring_from_settings
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.payments.credentials import ProviderCredential, ProviderCredentialService, load_credentials
from app.stores.commerce import CommerceSettings
from app.stores.models import Store
from tests.integration.conftest import World, csrf_from, sign_in

PAGE = "/staff/settings/payments"
SECRET = "sk_test_51QtillSecretValueAbc4242"
WEBHOOK = "whsec_tillWebhookSigningSecretZz9876"
PUBLISHABLE = "pk_test_51QtillPublishableKey1111"
LIVE_SECRET = "sk_live_51QtillLiveSecretValue7777"
TEST_KEYS = {"secret_key": SECRET, "publishable_key": PUBLISHABLE, "webhook_secret": WEBHOOK}
NEVER_SHOWN = (SECRET, WEBHOOK, LIVE_SECRET, "QtillSecretValue", "tillWebhookSigningSecret")


class CapturedLogs:
    """Every log line while the test runs, at DEBUG: structlog events and stdlib records."""

    def __init__(self, events: list[MutableMapping[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
        self.events, self.caplog = events, caplog

    def text(self) -> str:
        lines = [str(event) for event in self.events] + [record.getMessage() for record in self.caplog.records]
        return "\n".join([*lines, self.caplog.text])


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[CapturedLogs]:
    caplog.set_level(logging.DEBUG)
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as events:
            yield CapturedLogs(events, caplog)
    finally:
        structlog.configure(**saved)


def assert_no_secret(text: str) -> None:
    for secret in NEVER_SHOWN:
        assert secret not in text


async def _owner_page(client: AsyncTestClient[Litestar], world: World) -> tuple[Store, str]:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    page = await client.get(PAGE)
    assert page.status_code == 200, page.text
    return store, csrf_from(page.text)


async def _save(
    world: World, store: Store, keyring: Keyring, mode: str = "test", keys: dict[str, str] = TEST_KEYS
) -> None:
    async with world.sessions() as session, session.begin():
        await ProviderCredentialService(session, store.id, keyring=keyring).save(
            provider="stripe",
            mode=mode,
            secret_key=keys["secret_key"],
            publishable_key=keys["publishable_key"],
            webhook_secret=keys["webhook_secret"],
        )


async def _rows(world: World) -> list[ProviderCredential]:
    async with world.sessions() as session:
        system_scope(session)
        return list(await session.scalars(select(ProviderCredential).order_by(ProviderCredential.mode)))


async def test_owner_saves_test_keys_and_sees_only_hints(
    client: AsyncTestClient[Litestar], world: World, settings: Settings, captured_logs: CapturedLogs
) -> None:
    store, token = await _owner_page(client, world)
    saved = await client.post(f"{PAGE}/keys/test", data={**TEST_KEYS, "_csrf_token": token})
    assert saved.status_code == 303 and saved.headers["location"] == PAGE
    page = await client.get(PAGE)
    assert "Stripe test keys saved." in page.text
    assert "sk_test_…4242" in page.text and "whsec_…9876" in page.text and "pk_test_…1111" in page.text
    assert "Test mode" in page.text and "LIVE — real money" in page.text
    assert "Owner Person" in page.text  # who saved them
    assert_no_secret(page.text)
    assert_no_secret(saved.text)

    [row] = await _rows(world)
    assert (row.store_id, row.provider, row.mode, row.key_version) == (store.id, "stripe", "test", 1)
    assert row.secret_ciphertext.startswith("v1.") and row.webhook_secret_ciphertext.startswith("v1.")
    assert_no_secret(row.secret_ciphertext + row.webhook_secret_ciphertext)
    async with world.sessions() as session:
        creds = await load_credentials(session, store.id, "stripe", "test", keyring=keyring_from_settings(settings))
    assert creds is not None
    assert (creds.secret_key, creds.publishable_key, creds.webhook_secret) == (SECRET, PUBLISHABLE, WEBHOOK)
    assert_no_secret(repr(creds))
    async with world.sessions() as session:
        assert await load_credentials(session, store.id, "stripe", "live") is None

    # Replacing keeps one row per store + provider + mode.
    replaced = await client.post(
        f"{PAGE}/keys/test", data={**TEST_KEYS, "secret_key": "rk_test_51QrestrictedKey5555", "_csrf_token": token}
    )
    assert replaced.status_code == 303
    assert "rk_test_…5555" in (await client.get(PAGE)).text
    assert len(await _rows(world)) == 1
    async with world.sessions() as session:
        system_scope(session)
        events = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    assert [(e.type, e.payload) for e in events] == [
        ("payment_credentials.saved", {"provider": "stripe", "mode": "test"})
    ] * 2
    logs = captured_logs.text()
    assert "POST http://testserver.local/staff/settings/payments/keys/test" in logs  # the capture works
    assert_no_secret(logs)


@pytest.mark.parametrize(
    ("mode", "form", "errors"),
    [
        ("test", {"secret_key": "sk_lve_abcdefghijkl", "publishable_key": "pub_abcdefghijk", "webhook_secret": "wh_1"},
         ["A test-mode secret key starts with sk_test_… or rk_test_…",
          "A test-mode publishable key starts with pk_test_…",
          "A test-mode webhook signing secret starts with whsec_…"]),
        ("test", {**TEST_KEYS, "secret_key": LIVE_SECRET},
         ["That is a live key; the test form takes test keys (sk_test_… or rk_test_…)."]),
        ("live", TEST_KEYS, ["That is a test key; the live form takes live keys (sk_live_… or rk_live_…).",
                             "That is a test key; the live form takes live keys (pk_live_…)."]),
        ("test", {"secret_key": "", "publishable_key": "", "webhook_secret": ""},
         ["Enter the secret key.", "Enter the publishable key.", "Enter the webhook signing secret."]),
        ("test", {**TEST_KEYS, "webhook_secret": ""}, ["Enter the webhook signing secret."]),
        ("test", {**TEST_KEYS, "secret_key": "sk_test_short"},
         ["That does not look like a whole secret key; copy it again from the Stripe dashboard."]),
    ],
)  # fmt: skip
async def test_bad_keys_get_inline_errors_and_nothing_is_stored(
    client: AsyncTestClient[Litestar],
    world: World,
    captured_logs: CapturedLogs,
    mode: str,
    form: dict[str, str],
    errors: list[str],
) -> None:
    _, token = await _owner_page(client, world)
    refused = await client.post(f"{PAGE}/keys/{mode}", data={**form, "_csrf_token": token})
    assert refused.status_code == 422
    assert "Check the highlighted keys. Nothing was saved; enter the secret fields again." in refused.text
    for message in errors:
        assert message in refused.text
    assert_no_secret(refused.text)  # secret fields come back empty
    assert await _rows(world) == []
    assert_no_secret(captured_logs.text())


async def test_a_secret_pasted_into_the_publishable_field_is_not_echoed(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    _, token = await _owner_page(client, world)
    refused = await client.post(
        f"{PAGE}/keys/test", data={**TEST_KEYS, "publishable_key": SECRET, "secret_key": "", "_csrf_token": token}
    )
    assert refused.status_code == 422
    assert_no_secret(refused.text)
    kept = await client.post(f"{PAGE}/keys/test", data={**TEST_KEYS, "secret_key": "", "_csrf_token": token})
    assert f'value="{PUBLISHABLE}"' in kept.text  # a real publishable key is kept for the retry


async def test_managers_get_403(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    settings_page = await client.get("/staff/settings")
    assert settings_page.status_code == 200 and PAGE not in settings_page.text  # no link for managers
    token = csrf_from(settings_page.text)
    assert (await client.get(PAGE)).status_code == 403
    assert (await client.post(f"{PAGE}/keys/test", data={**TEST_KEYS, "_csrf_token": token})).status_code == 403
    assert (
        await client.post(PAGE, data={"provider": "stripe", "mode": "test", "_csrf_token": token})
    ).status_code == 403
    assert (await client.post(f"{PAGE}/keys/test/remove", data={"_csrf_token": token})).status_code == 403
    assert await _rows(world) == []


async def _store_settings(world: World, store: Store) -> CommerceSettings:
    async with world.sessions() as session:
        system_scope(session)
        fresh = await session.get(Store, store.id)
        assert fresh is not None
        return CommerceSettings.of(fresh.settings)


async def test_stripe_needs_keys_for_the_chosen_mode(client: AsyncTestClient[Litestar], world: World) -> None:
    store, token = await _owner_page(client, world)
    refused = await client.post(PAGE, data={"provider": "stripe", "mode": "test", "_csrf_token": token})
    assert refused.status_code == 422
    assert "Add your Stripe test keys below before using Stripe in test mode." in refused.text
    assert "Stripe has no test keys yet." in refused.text
    assert (await _store_settings(world, store)).payment_provider == "sandbox"

    assert (await client.post(f"{PAGE}/keys/test", data={**TEST_KEYS, "_csrf_token": token})).status_code == 303
    chosen = await client.post(PAGE, data={"provider": "stripe", "mode": "test", "_csrf_token": token})
    assert chosen.status_code == 303
    current = await _store_settings(world, store)
    assert (current.payment_provider, current.payment_mode) == ("stripe", "test")
    assert "Payments now use Stripe in test mode." in (await client.get(PAGE)).text

    live = await client.post(PAGE, data={"provider": "stripe", "mode": "live", "_csrf_token": token})
    assert live.status_code == 422 and "Add your Stripe live keys below" in live.text
    assert (await _store_settings(world, store)).payment_mode == "test"
    unknown = await client.post(PAGE, data={"provider": "paypal", "mode": "test", "_csrf_token": token})
    assert unknown.status_code == 422 and "Choose the sandbox or Stripe." in unknown.text

    # Keys in use cannot be removed; after switching to the sandbox they can.
    in_use = await client.post(f"{PAGE}/keys/test/remove", data={"_csrf_token": token})
    assert in_use.status_code == 422 and "Switch to the sandbox or the other mode first" in in_use.text
    assert len(await _rows(world)) == 1
    sandbox_live = await client.post(PAGE, data={"provider": "sandbox", "mode": "live", "_csrf_token": token})
    assert sandbox_live.status_code == 303
    page = await client.get(PAGE)
    assert 'data-testid="mode-live"' in page.text and "Payments now use the sandbox in LIVE mode." in page.text
    removed = await client.post(f"{PAGE}/keys/test/remove", data={"_csrf_token": token})
    assert removed.status_code == 303
    assert await _rows(world) == []
    assert "Stripe test keys removed." in (await client.get(PAGE)).text


async def test_stores_cannot_read_or_borrow_each_others_keys(world: World, settings: Settings) -> None:
    keyring = keyring_from_settings(settings)
    a, b = await world.store(), await world.store()
    for store in (a, b):
        await _save(world, store, keyring)
    async with world.sessions() as session:
        assert (await load_credentials(session, b.id, "stripe", "test", keyring=keyring)) is not None
    # Copy store A's ciphertext into store B's row: the row binding refuses it.
    rows = {row.store_id: row for row in await _rows(world)}
    async with world.sessions() as session, session.begin():
        system_scope(session)
        await session.execute(
            update(ProviderCredential)
            .where(ProviderCredential.id == rows[b.id].id)
            .values(secret_ciphertext=rows[a.id].secret_ciphertext)
        )
    async with world.sessions() as session:
        with pytest.raises(DecryptionFailed):
            await load_credentials(session, b.id, "stripe", "test", keyring=keyring)


def _new_key_settings(settings: Settings) -> tuple[Settings, str]:
    raw = base64.b64encode(os.urandom(32)).decode()
    return replace(settings, encryption_keys=((2, base64.b64decode(raw)),)), raw


async def test_keys_rotate_re_encrypts_to_the_newest_version_and_is_idempotent(
    world: World, settings: Settings, captured_logs: CapturedLogs
) -> None:
    old = keyring_from_settings(settings)
    stores = [await world.store(), await world.store()]
    for store in stores:
        await _save(world, store, old)
    live = {"secret_key": LIVE_SECRET, "publishable_key": "pk_live_51Qtill0000", "webhook_secret": WEBHOOK}
    await _save(world, stores[0], old, "live", live)
    before = {row.id: row.secret_ciphertext for row in await _rows(world)}

    rotated_settings, _ = _new_key_settings(settings)
    first = await rotate_keys(rotated_settings)
    assert (first.newest_version, first.rotated, first.current) == (2, 3, 0)
    rows = await _rows(world)
    assert {row.key_version for row in rows} == {2}
    assert all(row.secret_ciphertext.startswith("v2.") and row.secret_ciphertext != before[row.id] for row in rows)
    new = keyring_from_settings(rotated_settings)
    async with world.sessions() as session:
        creds = await load_credentials(session, stores[0].id, "stripe", "live", keyring=new)
    assert creds is not None and creds.secret_key == LIVE_SECRET and creds.webhook_secret == WEBHOOK
    async with world.sessions() as session:
        creds = await load_credentials(session, stores[1].id, "stripe", "test", keyring=new)
    assert creds is not None and creds.secret_key == SECRET

    again = await rotate_keys(rotated_settings)
    assert (again.rotated, again.current) == (0, 3)
    async with world.sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.max(ProviderCredential.key_version))) == 2
    assert_no_secret(captured_logs.text())


async def _till_keys_rotate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app.cli", "keys", "rotate"]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)


async def test_till_keys_rotate_prints_counts_only(world: World, settings: Settings, tmp_path: Path) -> None:
    await _save(world, await world.store(), keyring_from_settings(settings))
    _, raw = _new_key_settings(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(
        DATABASE_URL=settings.database_url or "",
        REDIS_URL=settings.redis_url or "",
        SECRET_KEY=settings.secret_key,
        ENCRYPTION_KEYS=f"2:{raw}",
        TILL_DATA_DIR=str(tmp_path),
    )
    result = await _till_keys_rotate(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "key version 2: 1 credential(s) re-encrypted, 0 already current"
    for text in (result.stdout, result.stderr):
        assert raw not in text and settings.secret_key not in text
        assert_no_secret(text)

    # A key version that is gone: one clear line, nothing rotated.
    env["ENCRYPTION_KEYS"] = f"3:{base64.b64encode(os.urandom(32)).decode()}"
    env["SECRET_KEY"] = "another-secret-key-" + "y" * 32
    failed = await _till_keys_rotate(env)
    assert failed.returncode == 2
    assert "till: nothing was rotated: provider credential" in failed.stderr
    assert "key version 2, which is not configured" in failed.stderr
    assert {row.key_version for row in await _rows(world)} == {2}
