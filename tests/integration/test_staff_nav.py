"""The staff header by role: daily pages as links, Money and Setup as <details> menus for managers and owners."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.core.rbac import Role
from tests.integration.conftest import World, sign_in

_NAV = re.compile(r'<nav class="nav" aria-label="Staff">(.*?)</nav>', re.S)
_MENU = re.compile(
    r'<details class="menu( current)?" name="staff-menu">\s*'
    r'<summary( aria-current="true")?>(\w+)</summary>(.*?)</details>',
    re.S,
)
_LINK = re.compile(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>')


def _nav(html: str) -> tuple[list[str], dict[str, tuple[bool, list[str]]], list[str]]:
    """The header's top-level link labels, its menus (marked?, link labels), and the labels marked current."""
    nav = _NAV.search(html)
    assert nav, "no staff navigation in the page"
    menus: dict[str, tuple[bool, list[str]]] = {}
    for details_marked, summary_marked, label, body in _MENU.findall(nav.group(1)):
        assert bool(details_marked) == bool(summary_marked), label
        menus[label] = (bool(details_marked), [text for _, _, text in _LINK.findall(body)])
    top = _LINK.findall(_MENU.sub("", nav.group(1)))
    current = [text for _, marked, text in _LINK.findall(nav.group(1)) if marked]
    return [text for _, _, text in top], menus, current


async def test_an_owner_has_money_with_payouts_and_setup(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    await sign_in(client, (await world.staff(store, Role.OWNER)).email)
    page = await client.get("/staff/orders")
    top, menus, current = _nav(page.text)
    assert top == ["Home", "Board", "Orders", "Products"]
    assert menus == {
        "Money": (
            False,
            ["Payments", "Refunds", "Disputes", "Promotions", "Gift cards", "Store credit", "Loyalty", "Payouts"],
        ),
        "Setup": (False, ["Settings", "Team", "Registers", "API tokens", "Webhooks", "Ingestion"]),
    }
    assert current == ["Orders"]
    assert '<a href="/staff/refunds">Refunds</a>' in page.text

    payouts = await client.get("/staff/payouts")
    _, menus, current = _nav(payouts.text)
    assert (menus["Money"][0], menus["Setup"][0], current) == (True, False, ["Payouts"])


async def test_a_manager_has_money_without_payouts_and_the_current_pages_menu_is_marked(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    await sign_in(client, (await world.staff(store, Role.MANAGER)).email)
    for path, marked_menu, marked_link in (
        ("/staff/refunds", "Money", "Refunds"),
        ("/staff/payments", "Money", "Payments"),
        ("/staff/disputes", "Money", "Disputes"),
        ("/staff/promotions", "Money", "Promotions"),
        ("/staff/gift-cards", "Money", "Gift cards"),
        ("/staff/store-credit", "Money", "Store credit"),
        ("/staff/loyalty", "Money", "Loyalty"),
        ("/staff/settings", "Setup", "Settings"),
        ("/staff/registers", "Setup", "Registers"),
        ("/staff/api-tokens", "Setup", "API tokens"),
        ("/staff/webhooks", "Setup", "Webhooks"),
        ("/staff/ingestion", "Setup", "Ingestion"),
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        top, menus, current = _nav(page.text)
        assert top == ["Home", "Board", "Orders", "Products"], path
        assert menus["Money"][1] == [
            "Payments", "Refunds", "Disputes", "Promotions", "Gift cards", "Store credit", "Loyalty"
        ], path  # fmt: skip
        assert 'href="/staff/payouts"' not in page.text
        assert {label for label, (marked, _) in menus.items() if marked} == {marked_menu}, path
        assert current == [marked_link], path

    for path, marked_link in (("/staff", "Home"), ("/staff/board", "Board"), ("/staff/products", "Products")):
        _, menus, current = _nav((await client.get(path)).text)
        assert not any(marked for marked, _ in menus.values()), path
        assert current == [marked_link], path


async def test_staff_and_cashiers_see_no_money_or_setup_menu(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    for role in (Role.STAFF, Role.CASHIER):
        await sign_in(client, (await world.staff(store, role)).email)
        page = await client.get("/staff/orders")
        top, menus, current = _nav(page.text)
        assert (top, menus, current) == (["Home", "Board", "Orders", "POS"], {}, ["Orders"]), role
        assert "staff-menu" not in page.text and 'href="/staff/refunds"' not in page.text


_TILE = re.compile(r'<li class="tile"><a href="([^"]+)"><strong>([^<]+)</strong>')


async def test_the_home_tiles_reach_every_page_the_role_may_open(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    seen: dict[Role, list[str]] = {}
    for role in (Role.OWNER, Role.MANAGER, Role.CASHIER):
        await sign_in(client, (await world.staff(store, role)).email)
        home = await client.get("/staff")
        seen[role] = [title for _, title in _TILE.findall(home.text)]
        for href, _ in _TILE.findall(home.text):
            if href.startswith("/staff"):
                assert (await client.get(href)).status_code == 200, href
    money_and_setup = ["Payments", "Refund approvals", "Disputes", "Promotions", "Webhooks", "Order ingestion"]
    assert all(title in seen[Role.MANAGER] for title in money_and_setup) and "Payouts" not in seen[Role.MANAGER]
    assert seen[Role.OWNER] == [
        *seen[Role.MANAGER][:7],
        "Payouts",
        seen[Role.MANAGER][7],
        "Team",
        *seen[Role.MANAGER][8:],
    ]
    assert seen[Role.CASHIER] == ["Board", "Orders", "Storefront", "Point of sale"]
