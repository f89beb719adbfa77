"""e2e: Playwright drives Debian's Chromium against a live `till serve` on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from app.seed import DEMO_PASSWORD
from tests.servers import ROOT, provision_servers

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "tests" / "e2e" / "screenshots"
TABLET: ViewportSize = {"width": 1024, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
# The live server's environment (DATABASE_URL, REDIS_URL, TILL_DATA_DIR, ...), for helper processes that act
# as the provider or a worker would (tests/e2e/dispute_seed.py).
LIVE_ENV: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with provision_servers() as (database_url, redis_url):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            TILL_ENV="test",
            TILL_DATA_DIR=str(tmp_path_factory.mktemp("till")),
            TILL_LOG_LEVEL="WARNING",
        )
        port = _free_port()
        env["PUBLIC_URL"] = f"http://127.0.0.1:{port}"  # links in e-mails (invitations) point at this server
        LIVE_ENV.update(env)
        till = [sys.executable, "-m", "app.cli"]
        subprocess.run([*till, "seed"], env=env, check=True, capture_output=True, timeout=60)
        server = subprocess.Popen([*till, "serve", "--port", str(port)], env=env)
        worker = subprocess.Popen([*till, "worker"], env=env)  # the outbox relay: the board's live events
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("till serve did not become ready")
                time.sleep(0.1)
            yield base
        finally:
            worker.terminate()
            server.terminate()
            server.wait(timeout=15)
            worker.wait(timeout=15)


@pytest.fixture(scope="session")
def browser(live_server: str) -> Iterator[Browser]:
    # Depends on live_server so the server (which uses asyncio.run) is set up before Playwright's loop runs.
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make browser` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def tablet(browser: Browser, live_server: str) -> Iterator[Page]:
    context = browser.new_context(viewport=TABLET, base_url=live_server)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone(browser: Browser, live_server: str) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, base_url=live_server, is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, email: str) -> None:
    """Sign a staff member in (the demo password) and wait for the staff home."""
    page.goto("/signin")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
