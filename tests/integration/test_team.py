"""The team page, invitation and reset links, and /api/v1/admin/staff: through HTTP, on real PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import email
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.audit import AuditEntry
from app.core.errors import Conflict
from app.core.passwords import verify_password
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.notifications.models import OutboundMessage
from app.notifications.services import EmailDelivery
from app.notifications.transports import outbox_folder
from app.stores.models import ApiToken, Membership, PasswordReset, StaffInvitation, Store, User
from app.stores.services import ApiTokenService
from app.stores.team import TeamService
from tests.integration.conftest import PASSWORD, World, bearer, csrf_from, issue_token, sign_in
from tests.integration.http_server import serving

Sessions = async_sessionmaker[AsyncSession]
Client = AsyncTestClient[Litestar]
NEW_PASSWORD = "a brand new passphrase"


class Browsers:
    """Separate browsers (cookie jars) against a real server: their requests really run at the same time."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opened: list[httpx.AsyncClient] = []

    async def new(self, email: str | None = None, password: str = PASSWORD) -> httpx.AsyncClient:
        browser = httpx.AsyncClient(base_url=self.base_url, follow_redirects=False)
        self.opened.append(browser)
        if email:
            signed_in = await browser.post(
                "/signin", data={"email": email, "password": password, "_csrf_token": await _csrf(browser, "/signin")}
            )
            assert signed_in.status_code == 303, signed_in.text
        return browser


@pytest.fixture
async def browsers(settings: Settings) -> AsyncIterator[Browsers]:
    async with serving(settings) as base_url:
        opened = Browsers(base_url)
        try:
            yield opened
        finally:
            for browser in opened.opened:
                await browser.aclose()


@pytest.fixture
async def other_client(browsers: Browsers) -> httpx.AsyncClient:
    return await browsers.new()


async def _csrf(client: httpx.AsyncClient, path: str = "/staff/team") -> str:
    return csrf_from((await client.get(path)).text)


async def _post(
    client: httpx.AsyncClient, path: str, data: dict[str, str] | None = None, page: str = "/staff/team"
) -> Any:
    return await client.post(path, data={**(data or {}), "_csrf_token": await _csrf(client, page)})


async def _rows(sessions: Sessions, store: Store, model: Any, *where: Any) -> list[Any]:
    async with sessions() as session:
        bind_store(session, store.id)
        return list(await session.scalars(select(model).where(*where)))


async def _count(sessions: Sessions, store: Store, model: Any) -> int:
    async with sessions() as session:
        bind_store(session, store.id)
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _link(sessions: Sessions, store: Store, purpose: str, to: str) -> str:
    """The path of the link in the newest e-mail of ``purpose`` to ``to`` (as the recipient would open it)."""
    messages = await _rows(sessions, store, OutboundMessage, OutboundMessage.purpose == purpose)
    mine = sorted((m for m in messages if m.to_address == to), key=lambda m: m.created_at)
    assert mine, f"no {purpose} e-mail to {to}"
    match = re.search(r"http://127\.0\.0\.1:8000(/(?:invite|reset)/[A-Za-z0-9_-]+)", mine[-1].text_body)
    assert match, mine[-1].text_body
    return match.group(1)


async def _invite(client: Client, email_address: str, role: str = "manager") -> Any:
    return await _post(client, "/staff/team/invitations", {"email": email_address, "role": role})


async def _invitation(sessions: Sessions, store: Store, email_address: str) -> StaffInvitation:
    rows: list[StaffInvitation] = await _rows(sessions, store, StaffInvitation, StaffInvitation.email == email_address)
    return sorted(rows, key=lambda r: r.created_at)[-1]


async def _membership(sessions: Sessions, store: Store, user_id: uuid.UUID) -> Membership | None:
    rows = await _rows(sessions, store, Membership, Membership.user_id == user_id)
    return rows[0] if rows else None


async def _audit(sessions: Sessions, store: Store) -> list[str]:
    rows = await _rows(sessions, store, AuditEntry)
    return [r.action for r in sorted(rows, key=lambda r: r.created_at)]


async def test_invitation_end_to_end_mail_link_accept_signed_in_with_the_role(
    client: Client, other_client: httpx.AsyncClient, world: World, sessions: Sessions, settings: Settings
) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    invited = await _invite(client, "  New.Person@Example.com ", "manager")
    assert invited.status_code == 303 and invited.headers["location"] == "/staff/team"

    page = await client.get("/staff/team")
    assert "new.person@example.com" in page.text and "e-mail queued" in page.text
    invitation = await _invitation(sessions, store, "new.person@example.com")
    assert invitation.role == Role.MANAGER and invitation.invited_by_id == owner.user.id
    assert timedelta(days=6, hours=23) < invitation.expires_at - datetime.now(UTC) <= timedelta(days=7)
    [message] = await _rows(sessions, store, OutboundMessage, OutboundMessage.reference == str(invitation.id))
    assert message.status == "pending" and message.purpose == "staff_invitation"

    assert await EmailDelivery(sessions, settings).deliver(message.id) == "sent"
    eml = email.message_from_bytes((outbox_folder(settings) / f"{message.id}.eml").read_bytes(), policy=default_policy)
    assert isinstance(eml, EmailMessage)
    assert eml["To"] == "new.person@example.com" and store.name in str(eml["Subject"])
    body = eml.get_body(("plain",))
    assert body is not None
    match = re.search(r"http://127\.0\.0\.1:8000(/invite/[A-Za-z0-9_-]{43})\b", body.get_content())
    assert match, body.get_content()
    link = match.group(1)
    assert "e-mail sent" in (await client.get("/staff/team")).text

    form = await other_client.get(link)
    assert form.status_code == 200
    assert "Join " + store.name in form.text and "manager" in form.text
    accepted = await other_client.post(
        link,
        data={
            "name": "Nia New",
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
            "_csrf_token": csrf_from(form.text),
        },
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/staff"
    home = await other_client.get("/staff")
    assert home.status_code == 200
    assert "Nia New" in home.text and '<small class="role">manager</small>' in home.text

    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user is not None and verify_password(user.password_hash, NEW_PASSWORD)
    membership = await _membership(sessions, store, user.id)
    assert membership is not None and membership.role == Role.MANAGER
    invitation = await _invitation(sessions, store, "new.person@example.com")
    assert invitation.accepted_at is not None and invitation.accepted_by_id == user.id
    team = (await client.get("/staff/team")).text
    assert "Nia New" in team and "No invitations waiting." in team
    assert await _audit(sessions, store) == ["staff.invited", "staff.invitation_accepted"]
    assert "joined as" in team

    again = await other_client.get(link)  # single use
    assert again.status_code == 410 and "used already" in again.text


async def test_someone_with_an_account_joins_with_their_password(
    client: Client, other_client: httpx.AsyncClient, world: World, sessions: Sessions
) -> None:
    store, elsewhere = await world.store(), await world.store()
    owner = await world.staff(store, Role.OWNER)
    veteran = await world.staff(elsewhere, Role.OWNER, email="veteran@example.com")
    await sign_in(client, owner.email)
    await _invite(client, veteran.email, "cashier")
    link = await _link(sessions, store, "staff_invitation", veteran.email)

    form = await other_client.get(link)
    assert "Enter its password to join" in form.text and 'name="name"' not in form.text
    wrong = await other_client.post(link, data={"password": "not my password", "_csrf_token": csrf_from(form.text)})
    assert wrong.status_code == 422 and "Wrong password." in wrong.text
    assert await _membership(sessions, store, veteran.user.id) is None
    joined = await other_client.post(link, data={"password": PASSWORD, "_csrf_token": csrf_from(form.text)})
    assert joined.status_code == 303
    membership = await _membership(sessions, store, veteran.user.id)
    assert membership is not None and membership.role == Role.CASHIER
    assert store.name in (await other_client.get("/staff")).text


@pytest.mark.parametrize("problem", ["expired", "withdrawn", "tampered", "reused"])
async def test_bad_invitation_links_are_refused_clearly(
    client: Client, other_client: httpx.AsyncClient, world: World, sessions: Sessions, problem: str
) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    await _invite(client, "someone@example.com")
    link = await _link(sessions, store, "staff_invitation", "someone@example.com")
    invitation = await _invitation(sessions, store, "someone@example.com")
    fill = {"name": "Some One", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    expected = {"expired": (410, "has expired"), "withdrawn": (410, "was withdrawn"), "tampered": (404, "not valid")}
    if problem == "expired":
        async with sessions() as session, session.begin():
            bind_store(session, store.id)
            past = datetime.now(UTC) - timedelta(minutes=1)
            await session.execute(update(StaffInvitation).values(expires_at=past))
        assert "expired" in (await client.get("/staff/team")).text
    elif problem == "withdrawn":
        withdrawn = await _post(client, f"/staff/team/invitations/{invitation.id}/withdraw")
        assert withdrawn.status_code == 303
        assert "No invitations waiting." in (await client.get("/staff/team")).text
    elif problem == "tampered":
        link = link[:-1] + ("A" if link[-1] != "A" else "B")
    else:
        first = await other_client.post(link, data={**fill, "_csrf_token": await _csrf(other_client, link)})
        assert first.status_code == 303
        expected["reused"] = (410, "used already")
    status, words = expected[problem]
    page = await other_client.get(link)
    assert page.status_code == status and words in page.text
    csrf = await _csrf(other_client, "/signin")
    second = await other_client.post(link, data={**fill, "name": "Intruder", "_csrf_token": csrf})
    assert second.status_code == status and words in second.text
    async with sessions() as session:
        assert await session.scalar(select(User).where(User.name == "Intruder")) is None
    members = await _rows(sessions, store, Membership)
    assert len(members) == (2 if problem == "reused" else 1)


async def test_two_concurrent_accepts_make_one_membership(
    client: Client, browsers: Browsers, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    await _invite(client, "twice@example.com", "staff")
    link = await _link(sessions, store, "staff_invitation", "twice@example.com")
    racers = [await browsers.new(), await browsers.new()]
    forms = [await racer.get(link) for racer in racers]
    answers = await asyncio.gather(
        *(
            racer.post(
                link,
                data={
                    "name": f"Racer {i}",
                    "password": NEW_PASSWORD,
                    "password_confirm": NEW_PASSWORD,
                    "_csrf_token": csrf_from(form.text),
                },
            )
            for i, (racer, form) in enumerate(zip(racers, forms, strict=True))
        )
    )
    assert sorted(a.status_code for a in answers) == [303, 410]
    async with sessions() as session:
        users = list(await session.scalars(select(User).where(User.email == "twice@example.com")))
    assert len(users) == 1
    assert len(await _rows(sessions, store, Membership, Membership.user_id == users[0].id)) == 1
    assert (await _audit(sessions, store)).count("staff.invitation_accepted") == 1


async def test_reinviting_replaces_the_pending_invitation(client: Client, world: World, sessions: Sessions) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    await _invite(client, "again@example.com", "cashier")
    first_link = await _link(sessions, store, "staff_invitation", "again@example.com")
    await _invite(client, "again@example.com", "manager")
    second_link = await _link(sessions, store, "staff_invitation", "again@example.com")
    assert first_link != second_link
    assert (await client.get(first_link)).status_code == 410
    page = await client.get(second_link)
    assert page.status_code == 200 and "manager" in page.text
    pending = [i for i in await _rows(sessions, store, StaffInvitation) if i.revoked_at is None]
    assert [i.role for i in pending] == [Role.MANAGER]


async def test_deactivation_ends_sessions_and_tokens_at_once_and_reactivation_restores_sign_in(
    browsers: Browsers, client: Client, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    manager = await world.staff(store, Role.MANAGER)
    async with sessions() as session, session.begin():
        _, manager_token = await ApiTokenService.for_store(session, store.id).issue(
            name="manager's", role=Role.MANAGER, created_by=manager.user.id
        )
    owner_token = await issue_token(world, store, Role.MANAGER)
    manager_client = await browsers.new(manager.email)
    assert (await manager_client.get("/staff")).status_code == 200
    assert (await client.get("/api/v1/store", headers=bearer(manager_token))).status_code == 200

    await sign_in(client, owner.email)
    off = await _post(client, f"/staff/team/members/{manager.user.id}/deactivate")
    assert off.status_code == 303

    refused = await manager_client.get("/staff")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/signin")
    assert (await client.get("/api/v1/store", headers=bearer(manager_token))).status_code == 401
    assert (await client.get("/api/v1/store", headers=bearer(owner_token))).status_code == 200
    again = await manager_client.post(
        "/signin",
        data={"email": manager.email, "password": PASSWORD, "_csrf_token": await _csrf(manager_client, "/signin")},
    )
    assert again.status_code == 422 and "turned off" in again.text
    page = (await client.get("/staff/team")).text
    assert "deactivated" in page and "1 API token revoked" in page

    on = await _post(client, f"/staff/team/members/{manager.user.id}/reactivate")
    assert on.status_code == 303
    assert (await manager_client.get("/staff")).status_code == 200
    assert (await client.get("/api/v1/store", headers=bearer(manager_token))).status_code == 401  # stays revoked
    tokens = await _rows(sessions, store, ApiToken, ApiToken.created_by_id == manager.user.id)
    assert [t.revoked_at is not None for t in tokens] == [True]
    assert (await _audit(sessions, store))[-2:] == ["staff.deactivated", "staff.reactivated"]


async def test_role_change_takes_effect_on_the_next_request(
    browsers: Browsers, client: Client, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    staff = await world.staff(store, Role.STAFF)
    staff_client = await browsers.new(staff.email)
    assert (await staff_client.get("/staff/settings")).status_code == 403
    await sign_in(client, owner.email)
    changed = await _post(client, f"/staff/team/members/{staff.user.id}/role", {"role": "manager"})
    assert changed.status_code == 303
    assert (await staff_client.get("/staff/settings")).status_code == 200
    [entry] = [e for e in await _rows(sessions, store, AuditEntry) if e.action == "staff.role_changed"]
    assert entry.details["from"] == "staff" and entry.details["to"] == "manager"
    assert entry.actor_user_id == owner.user.id


async def test_the_last_owner_can_be_neither_demoted_nor_deactivated(
    client: Client, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    demote = await _post(client, f"/staff/team/members/{owner.user.id}/role", {"role": "manager"})
    assert demote.status_code == 409 and "last active owner" in demote.text
    off = await _post(client, f"/staff/team/members/{owner.user.id}/deactivate")
    assert off.status_code == 409 and "last active owner" in off.text
    membership = await _membership(sessions, store, owner.user.id)
    assert membership is not None and membership.role == Role.OWNER and membership.deactivated_at is None
    assert await _audit(sessions, store) == []

    second = await world.staff(store, Role.OWNER)  # with another owner, the first may step down
    assert (await _post(client, f"/staff/team/members/{owner.user.id}/role", {"role": "manager"})).status_code == 303
    async with sessions():
        assert (await _membership(sessions, store, owner.user.id)).role == Role.MANAGER  # type: ignore[union-attr]
    assert (await client.get("/staff/team")).status_code == 403  # no longer an owner, at once
    assert second.role == Role.OWNER


async def test_two_owners_deactivating_each_other_at_once_leave_one(world: World, sessions: Sessions) -> None:
    """Two transactions at once (separate sessions): the second waits for the first's lock on the owners' rows,
    then finds itself the last owner and is refused."""
    store = await world.store()
    a, b = await world.staff(store, Role.OWNER), await world.staff(store, Role.OWNER)
    async with sessions() as first, sessions() as second:
        await first.begin()
        await TeamService(first, store.id).deactivate(None, b.user.id)
        await first.flush()
        await second.begin()
        racing = asyncio.create_task(TeamService(second, store.id).deactivate(None, a.user.id))
        done, _ = await asyncio.wait([racing], timeout=0.5)
        assert not done, "the second deactivation did not wait for the first"
        await first.commit()
        with pytest.raises(Conflict, match="last active owner"):
            await racing
        await second.rollback()
    active = [m for m in await _rows(sessions, store, Membership) if m.deactivated_at is None]
    assert [m.user_id for m in active] == [a.user.id]


async def test_password_reset_link_works_once_ends_old_sessions_and_expires(
    browsers: Browsers, client: Client, other_client: httpx.AsyncClient, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    cashier = await world.staff(store, Role.CASHIER)
    cashier_client = await browsers.new(cashier.email)
    await sign_in(client, owner.email)
    sent = await _post(client, f"/staff/team/members/{cashier.user.id}/password-reset")
    assert sent.status_code == 303
    link = await _link(sessions, store, "password_reset", cashier.email)
    [reset] = await _rows(sessions, store, PasswordReset)
    assert timedelta(minutes=59) < reset.expires_at - datetime.now(UTC) <= timedelta(hours=1)

    form = await other_client.get(link)
    assert form.status_code == 200 and cashier.email in form.text
    short = await other_client.post(
        link, data={"password": "short", "password_confirm": "short", "_csrf_token": csrf_from(form.text)}
    )
    assert short.status_code == 422 and "at least 10 characters" in short.text
    differ = await other_client.post(
        link,
        data={
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD + "!",
            "_csrf_token": csrf_from(form.text),
        },
    )
    assert differ.status_code == 422 and "differ" in differ.text
    assert (await cashier_client.get("/staff")).status_code == 200  # nothing changed yet

    done = await other_client.post(
        link, data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "_csrf_token": csrf_from(form.text)}
    )
    assert done.status_code == 303 and done.headers["location"] == "/signin"
    assert (await cashier_client.get("/staff")).status_code == 303  # the session opened with the old password
    again = await other_client.get(link)
    assert again.status_code == 410 and "used already" in again.text

    csrf = await _csrf(other_client, "/signin")
    old = await other_client.post("/signin", data={"email": cashier.email, "password": PASSWORD, "_csrf_token": csrf})
    assert old.status_code == 422
    assert (await (await browsers.new(cashier.email, NEW_PASSWORD)).get("/staff")).status_code == 200
    assert (await _audit(sessions, store))[-2:] == ["staff.password_reset_sent", "staff.password_reset"]

    await _post(client, f"/staff/team/members/{cashier.user.id}/password-reset")
    expired_link = await _link(sessions, store, "password_reset", cashier.email)
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        await session.execute(
            update(PasswordReset)
            .where(PasswordReset.used_at.is_(None))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = await other_client.get(expired_link)
    assert expired.status_code == 410 and "has expired" in expired.text
    assert (await other_client.get("/reset/not-a-real-secret")).status_code == 404


async def test_bad_input_is_an_inline_error_and_writes_nothing(
    client: Client, other_client: httpx.AsyncClient, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    member = await world.staff(store, Role.STAFF)
    await sign_in(client, owner.email)

    bad = await _invite(client, "not-an-email", "emperor")
    assert bad.status_code == 422
    assert "Enter a valid e-mail address." in bad.text and "Choose one of" in bad.text
    assert 'value="not-an-email"' in bad.text
    taken = await _invite(client, member.email, "staff")
    assert taken.status_code == 409 and "Already a member of this store." in taken.text
    assert f'value="{member.email}"' in taken.text
    role = await _post(client, f"/staff/team/members/{member.user.id}/role", {"role": "king"})
    assert role.status_code == 422 and "Choose a role" in role.text
    assert await _count(sessions, store, StaffInvitation) == 0
    assert await _count(sessions, store, OutboundMessage) == 0
    assert await _audit(sessions, store) == []
    assert (await _membership(sessions, store, member.user.id)).role == Role.STAFF  # type: ignore[union-attr]

    await _invite(client, "fresh@example.com")
    link = await _link(sessions, store, "staff_invitation", "fresh@example.com")
    csrf = await _csrf(other_client, link)
    for data, words in [
        ({"name": "", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}, "Enter your name."),
        ({"name": "Fresh", "password": "short", "password_confirm": "short"}, "at least 10 characters"),
        ({"name": "Fresh", "password": NEW_PASSWORD, "password_confirm": "something else"}, "differ"),
    ]:
        refused = await other_client.post(link, data={**data, "_csrf_token": csrf})
        assert refused.status_code == 422 and words in refused.text
        assert f'value="{data["name"]}"' in refused.text
    async with sessions() as session:
        assert await session.scalar(select(User).where(User.email == "fresh@example.com")) is None
    assert (await _invitation(sessions, store, "fresh@example.com")).accepted_at is None


@pytest.mark.parametrize("role", [Role.CASHIER, Role.MANAGER])
async def test_below_owner_cannot_reach_the_team_page_or_api(
    client: Client, world: World, sessions: Sessions, role: Role
) -> None:
    store = await world.store()
    person = await world.staff(store, role)
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, person.email)
    assert (await client.get("/staff/team")).status_code == 403
    csrf = await _csrf(client, "/staff")
    for path in ("/staff/team/invitations", f"/staff/team/members/{owner.user.id}/deactivate"):
        answer = await client.post(path, data={"email": "x@example.com", "role": "owner", "_csrf_token": csrf})
        assert answer.status_code == 403
    secret = await issue_token(world, store, role)
    assert (await client.get("/api/v1/admin/staff", headers=bearer(secret))).status_code == 403
    answer = await client.post(
        "/api/v1/admin/staff/invitations", json={"email": "x@example.com", "role": "owner"}, headers=bearer(secret)
    )
    assert answer.status_code == 403 and answer.headers["content-type"].startswith("application/problem+json")
    assert await _count(sessions, store, StaffInvitation) == 0
    assert (await _membership(sessions, store, owner.user.id)).deactivated_at is None  # type: ignore[union-attr]


async def test_an_owner_of_store_a_cannot_touch_store_b_staff(client: Client, world: World, sessions: Sessions) -> None:
    store_a, store_b = await world.store("store-a"), await world.store("store-b")
    owner_a = await world.staff(store_a, Role.OWNER)
    owner_b = await world.staff(store_b, Role.OWNER)
    member_b = await world.staff(store_b, Role.STAFF, email="member-b@example.com")
    secret_b = await issue_token(world, store_b, Role.OWNER)
    invited_b = await client.post(
        "/api/v1/admin/staff/invitations", json={"email": "pending-b@example.com"}, headers=bearer(secret_b)
    )
    invitation_b = uuid.UUID(invited_b.json()["id"])

    await sign_in(client, owner_a.email)
    page = (await client.get("/staff/team")).text
    assert member_b.email not in page and "pending-b@example.com" not in page
    for path, data in [
        (f"/staff/team/members/{member_b.user.id}/role", {"role": "owner"}),
        (f"/staff/team/members/{member_b.user.id}/deactivate", {}),
        (f"/staff/team/members/{member_b.user.id}/reactivate", {}),
        (f"/staff/team/members/{member_b.user.id}/password-reset", {}),
        (f"/staff/team/invitations/{invitation_b}/withdraw", {}),
    ]:
        assert (await _post(client, path, data)).status_code == 404, path

    secret_a = await issue_token(world, store_a, Role.OWNER)
    listed = (await client.get("/api/v1/admin/staff", headers=bearer(secret_a))).json()
    assert [m["email"] for m in listed["members"]] == [owner_a.email] and listed["invitations"] == []
    api = "/api/v1/admin/staff"
    for answer in [
        await client.patch(f"{api}/{member_b.user.id}", json={"active": False}, headers=bearer(secret_a)),
        await client.patch(f"{api}/{owner_b.user.id}", json={"role": "cashier"}, headers=bearer(secret_a)),
        await client.post(f"{api}/{member_b.user.id}/password-reset", headers=bearer(secret_a)),
        await client.delete(f"{api}/invitations/{invitation_b}", headers=bearer(secret_a)),
    ]:
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("application/problem+json")
    membership = await _membership(sessions, store_b, member_b.user.id)
    assert membership is not None and membership.role == Role.STAFF and membership.deactivated_at is None
    assert (await _invitation(sessions, store_b, "pending-b@example.com")).revoked_at is None
    assert await _count(sessions, store_b, PasswordReset) == 0
    assert await _audit(sessions, store_a) == []


async def test_admin_api_lists_invites_changes_and_resets(client: Client, world: World, sessions: Sessions) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    staff = await world.staff(store, Role.STAFF)
    headers = bearer(await issue_token(world, store, Role.OWNER))
    api = "/api/v1/admin/staff"

    invited = await client.post(
        f"{api}/invitations", json={"email": "API@example.com", "role": "cashier"}, headers=headers
    )
    assert invited.status_code == 201
    body = invited.json()
    assert set(body) == {
        "id", "email", "role", "created_at", "expires_at", "expired", "delivery_status", "delivery_error"
    }  # fmt: skip
    assert (body["email"], body["role"], body["delivery_status"], body["expired"]) == (
        "api@example.com",
        "cashier",
        "pending",
        False,
    )
    invitation = await _invitation(sessions, store, "api@example.com")
    assert invitation.invited_by_id is None and invitation.token_hash not in invited.text

    listed = (await client.get(api, headers=headers)).json()
    assert {m["email"]: m["role"] for m in listed["members"]} == {owner.email: "owner", staff.email: "staff"}
    assert [i["email"] for i in listed["invitations"]] == ["api@example.com"]

    bad = await client.post(f"{api}/invitations", json={"email": "nope", "role": "czar"}, headers=headers)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert set(bad.json()["fields"]) == {"email", "role"}
    dup = await client.post(f"{api}/invitations", json={"email": staff.email}, headers=headers)
    assert dup.status_code == 409 and dup.json()["fields"] == {"email": "Already a member of this store."}

    promoted = await client.patch(f"{api}/{staff.user.id}", json={"role": "manager"}, headers=headers)
    assert promoted.status_code == 200 and promoted.json()["role"] == "manager"
    off = await client.patch(f"{api}/{staff.user.id}", json={"active": False}, headers=headers)
    assert off.status_code == 200 and off.json()["active"] is False
    on = await client.patch(f"{api}/{staff.user.id}", json={"active": True, "role": "cashier"}, headers=headers)
    assert on.status_code == 200 and (on.json()["active"], on.json()["role"]) == (True, "cashier")
    empty = await client.patch(f"{api}/{staff.user.id}", json={}, headers=headers)
    assert empty.status_code == 422
    last = await client.patch(f"{api}/{owner.user.id}", json={"role": "manager", "active": False}, headers=headers)
    assert last.status_code == 409 and "last active owner" in last.json()["detail"]
    assert (await _membership(sessions, store, owner.user.id)).role == Role.OWNER  # type: ignore[union-attr]

    reset = await client.post(f"{api}/{staff.user.id}/password-reset", headers=headers)
    assert reset.status_code == 202 and reset.json()["user_id"] == str(staff.user.id)
    assert await _link(sessions, store, "password_reset", staff.email)

    withdrawn = await client.delete(f"{api}/invitations/{invitation.id}", headers=headers)
    assert withdrawn.status_code == 204
    assert (await client.get(api, headers=headers)).json()["invitations"] == []
    assert (await client.delete(f"{api}/invitations/{uuid.uuid4()}", headers=headers)).status_code == 404
    actions = await _audit(sessions, store)
    assert actions == [
        "staff.invited",
        "staff.role_changed",
        "staff.deactivated",
        "staff.role_changed",
        "staff.reactivated",
        "staff.password_reset_sent",
        "staff.invitation_withdrawn",
    ]
    async with sessions() as session:
        system_scope(session)
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.store_id == store.id)))
    assert all(e.actor == "API token test" for e in entries)


async def test_openapi_documents_the_staff_api(client: Client) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert paths["/api/v1/admin/staff"]["get"]["summary"].startswith("List the team")
    assert paths["/api/v1/admin/staff/invitations"]["post"]["responses"].keys() >= {"201"}
    assert "patch" in paths["/api/v1/admin/staff/{user_id}"]
    assert "202" in paths["/api/v1/admin/staff/{user_id}/password-reset"]["post"]["responses"]
