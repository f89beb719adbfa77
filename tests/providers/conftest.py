"""Provider tests: real Redis (TEST_REDIS_URL's server, database 11; or an embedded Valkey), flushed around every test,
and one localstripe server for the session (the Stripe provider's contract tests run against it).

These tests need no PostgreSQL, so they live outside ``tests/integration`` (whose autouse fixture
provisions one).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from redis.asyncio import Redis

from app.core.embedded import EmbeddedServers
from app.payments.providers import StripeProvider
from app.payments.sandbox import SandboxProvider
from tests.servers import ROOT

WEBHOOK_SECRET = "whsec_sandbox_test"
BASE_URL = "https://shop.example"
STRIPE_TEST_KEY = "sk_test_till_providers"
STRIPE_WEBHOOK_SECRET = "whsec_stripe_test"
LOCALSTRIPE_START_TIMEOUT_S = 20.0


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield urlunsplit(urlsplit(configured)._replace(path="/11"))
        return
    embedded = EmbeddedServers(ROOT / ".till" / "test-servers")
    yield embedded.start_valkey().rsplit("/", 1)[0] + "/11"
    embedded.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def sandbox(redis: Redis) -> SandboxProvider:
    return SandboxProvider(redis, webhook_secret=WEBHOOK_SECRET, base_url=BASE_URL + "/")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A localstripe server of our own for the session (empty store), stopped at the end.

    Its output goes to a file (a pipe nobody reads would fill up and stall it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "localstripe"), "--port", str(port), "--from-scratch"]
    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + LOCALSTRIPE_START_TIMEOUT_S
        with httpx.Client(auth=(STRIPE_TEST_KEY, ""), timeout=1.0) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"localstripe exited: {log_path.read_text(errors='replace')}")
                try:
                    if client.get(f"{url}/v1/customers").status_code == 200:
                        break
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not answer on {url} within {LOCALSTRIPE_START_TIMEOUT_S} s")
                time.sleep(0.02)  # the poll interval, not a guess at the start-up time
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
async def stripe_local(localstripe_url: str) -> AsyncIterator[StripeProvider]:
    """The Stripe provider pointed at localstripe (no retries: a failure shows at once)."""
    provider = StripeProvider(
        STRIPE_TEST_KEY,
        webhook_secret=STRIPE_WEBHOOK_SECRET,
        api_base=localstripe_url,
        max_network_retries=0,
        localstripe=True,
    )
    yield provider
    await provider.aclose()
