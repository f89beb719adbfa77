"""One checkout in a process of its own that stops right after the provider took the money, so a test can kill
it (SIGKILL) at the worst moment: the card is charged, the stock reserved, and nothing else recorded.

    python -m tests.integration.crashing_checkout STORE_ID SNAPSHOT_ID    (settings from the environment)

Prints ``authorised <provider ref>`` once the sandbox has charged the card, then waits to be killed. Tests call
:func:`charge_then_kill`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

from redis.asyncio import Redis

from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings, load_settings
from app.core.db import create_engine, session_maker
from app.payments.provider import AuthorizeRequest, CardDetails, ProviderResult
from app.payments.registry import sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.stores.models import Store

ROOT = Path(__file__).resolve().parents[2]


async def charge_then_kill(settings: Settings, store_id: uuid.UUID, snapshot_id: uuid.UUID) -> str:
    """Run the checkout in its own process, kill it (SIGKILL) once the card is charged; the payment's reference."""
    assert settings.database_url and settings.redis_url
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SECRET_KEY": settings.secret_key,
        "TILL_ENV": "test",
        "TILL_DATA_DIR": str(settings.data_dir),
        "TILL_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, str(store_id), str(snapshot_id),
        stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        said = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    finally:
        process.kill()
        await process.wait()
    assert said.startswith(b"authorised "), said
    assert process.returncode == -signal.SIGKILL
    return said.split()[1].decode()


class StopsAfterAuthorising(SandboxProvider):
    async def authorize(self, request: AuthorizeRequest) -> ProviderResult:
        result = await super().authorize(request)
        print(f"authorised {result.provider_ref}", flush=True)
        await asyncio.Event().wait()  # the test kills the process here
        return result


async def main(store_id: uuid.UUID, snapshot_id: uuid.UUID) -> None:
    settings = load_settings()
    assert settings.database_url and settings.redis_url
    sessions = session_maker(create_engine(settings.database_url))
    async with sessions() as session:
        store = await session.get(Store, store_id)
    assert store is not None
    provider = StopsAfterAuthorising(
        Redis.from_url(settings.redis_url), webhook_secret=sandbox_webhook_secret(settings)
    )
    card = CardDetails("4242424242424242", 12, 2034, "123")
    await CheckoutSaga(sessions, store, provider).complete(
        snapshot_id, "killed", PaymentInput(card=card), fingerprint="f"
    )


if __name__ == "__main__":
    asyncio.run(main(uuid.UUID(sys.argv[1]), uuid.UUID(sys.argv[2])))
