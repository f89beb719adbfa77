from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import structlog

from app.core.idempotency import request_hash
from app.core.logging import _redact, bind_correlation_id, current_correlation_id
from app.core.passwords import hash_password, verify_password
from app.core.rbac import Principal, Role
from app.core.templating import local_time


def _principal(role: Role) -> Principal:
    return Principal(
        kind="staff",
        store_id=uuid.uuid4(),
        store_slug="s",
        store_name="S",
        currency="EUR",
        timezone="UTC",
        role=role,
        display_name="X",
        user_id=uuid.uuid4(),
    )


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.CASHIER, {Role.CASHIER}),
        (Role.STAFF, {Role.CASHIER, Role.STAFF}),
        (Role.MANAGER, {Role.CASHIER, Role.STAFF, Role.MANAGER}),
        (Role.OWNER, set(Role)),
    ],
)
def test_role_ladder(role: Role, allowed: set[Role]) -> None:
    principal = _principal(role)
    assert {r for r in Role if principal.can(r)} == allowed
    assert principal.can(role.value)


def test_request_hash_separates_fields() -> None:
    assert request_hash("POST", "/a", b"", b"bc") != request_hash("POST", "/ab", b"", b"c")
    assert request_hash("POST", "/a", b"x=1", b"") != request_hash("POST", "/a", b"", b"x=1")
    assert request_hash("POST", "/a", b"", b"{}") == request_hash("POST", "/a", b"", b"{}")


def test_log_redaction_and_correlation_id() -> None:
    event = _redact(
        None, "info", {"event": "x", "password": "p", "api_key": "k", "card_number": "4242", "token_id": "t"}
    )
    assert event == {
        "event": "x",
        "password": "[redacted]",
        "api_key": "[redacted]",
        "card_number": "[redacted]",
        "token_id": "t",
    }
    assert bind_correlation_id("abc-123") == "abc-123"
    assert current_correlation_id() == "abc-123"
    generated = bind_correlation_id("has spaces; and junk")
    assert str(uuid.UUID(generated)) == generated
    structlog.contextvars.clear_contextvars()
    assert json.dumps({"ok": True})


def test_passwords_are_argon2_and_verify() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "wrong")
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "anything")


def test_times_show_on_the_store_clock() -> None:
    moment = datetime(2026, 11, 23, 8, 25, tzinfo=UTC)
    assert local_time(moment, "Europe/Berlin") == "23 Nov 09:25"
    assert local_time(moment, "Not/AZone") == "23 Nov 08:25"
