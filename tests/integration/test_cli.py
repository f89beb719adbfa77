"""The `till` command as a person runs it: clear one-line failures, migrations, seed, user create."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from app.config import Settings

TILL = [sys.executable, "-m", "app.cli"]


def _run(
    args: list[str], env: dict[str, str], tmp_path: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    full_env.update({"TILL_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([*TILL, *args], env=full_env, capture_output=True, text=True, timeout=60, input=stdin)


def test_unreachable_database_fails_fast_with_one_line(settings: Settings, tmp_path: Path) -> None:
    result = _run(
        ["serve"],
        {"DATABASE_URL": "postgresql://till:pw@127.0.0.1:1/till", "REDIS_URL": settings.redis_url or ""},
        tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("till: cannot reach the database at postgresql+asyncpg://till:***@127.0.0.1:1/till")
    assert "pw" not in result.stderr


def test_malformed_database_url_fails_with_one_line(tmp_path: Path) -> None:
    result = _run(
        ["serve"],
        {"DATABASE_URL": "mysql://root@localhost/till", "REDIS_URL": "redis://127.0.0.1:6379/0"},
        tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "till: DATABASE_URL must be a PostgreSQL URL (postgresql://...), got 'mysql'"


async def _create_db(url: str, name: str) -> str:
    admin = make_url(url).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def test_unmigrated_database_is_refused_then_upgrade_seed_and_user_create(settings: Settings, tmp_path: Path) -> None:
    assert settings.database_url and settings.redis_url
    fresh = asyncio.run(_create_db(settings.database_url, f"{make_url(settings.database_url).database}_cli"))
    env = {"DATABASE_URL": fresh, "REDIS_URL": settings.redis_url}

    refused = _run(["serve"], env, tmp_path)
    assert refused.returncode == 2
    assert "the database is at migration none but this code needs" in refused.stderr
    assert "run `till db upgrade`" in refused.stderr

    assert _run(["db", "upgrade"], env, tmp_path).returncode == 0
    seeded = _run(["seed"], env, tmp_path)
    assert seeded.returncode == 0 and "demo store created" in seeded.stdout
    assert "exists already" in _run(["seed"], env, tmp_path).stdout

    created = _run(
        [
            "user",
            "create",
            "--email",
            "new@demo.till",
            "--name",
            "New Person",
            "--store",
            "demo",
            "--role",
            "manager",
        ],
        env,
        tmp_path,
        stdin="long-enough-pw\nlong-enough-pw\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created manager new@demo.till in demo" in created.stdout
    duplicate = _run(
        ["user", "create", "--email", "new@demo.till", "--name", "Again", "--store", "demo"],
        env,
        tmp_path,
        stdin="long-enough-pw\nlong-enough-pw\n",
    )
    assert duplicate.returncode == 2
    assert "till: email: Taken." in duplicate.stderr

    store = ["store", "create", "--name", "Bakery Nord", "--slug", "bakery-nord", "--currency", "SEK"]
    store += ["--country", "SE", "--timezone", "Europe/Stockholm"]
    new_owner = _run(
        [*store, "--owner-email", "nora@bakery-nord.se", "--owner-name", "Nora Nord"],
        env,
        tmp_path,
        stdin="long-enough-pw\nlong-enough-pw\n",
    )
    assert new_owner.returncode == 0, new_owner.stderr
    assert "created store bakery-nord (SEK, SE); owner nora@bakery-nord.se; not live" in new_owner.stdout
    taken = _run([*store, "--owner-email", "new@demo.till"], env, tmp_path)  # an existing account: no prompt
    assert taken.returncode == 2 and "till: slug: This address is taken. Choose another." in taken.stderr
    bad = [*store[:4], "--slug", "kiosk", "--currency", "KRONA", "--country", "SE", "--timezone", "Mars/Base"]
    refused = _run([*bad, "--owner-email", "new@demo.till"], env, tmp_path)
    assert refused.returncode == 2
    assert "currency: Choose a currency such as EUR, SEK or USD." in refused.stderr
    assert "timezone: Choose a time zone such as Europe/Berlin." in refused.stderr
    second = _run([*store[:4], "--slug", "kiosk", *store[6:], "--owner-email", "new@demo.till"], env, tmp_path)
    assert second.returncode == 0, second.stderr


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_till_up_tells_its_worker_where_it_listens_and_sigterm_stops_everything_it_started(tmp_path: Path) -> None:
    """The worker posts the sandbox bank's webhooks to the app, so it gets the app's own URL. A service manager
    (or `timeout`) stops Till with SIGTERM: nothing it started may outlive it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "PUBLIC_URL"))}
    env.update({"TILL_DATA_DIR": str(tmp_path), "TILL_LOG_LEVEL": "WARNING"})
    till = subprocess.Popen(
        [*TILL, "up", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not _healthy(port):
            assert till.poll() is None, till.communicate()[0]
            assert time.monotonic() < deadline, "till up did not become healthy"
            time.sleep(0.2)
        started = _children(till.pid)  # the worker and the embedded Valkey
        postmaster = int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0])
        assert len(started) >= 2 and _alive(postmaster)
        (worker,) = [pid for pid in started if b"app.cli\x00worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\x00")
        assert f"PUBLIC_URL=http://127.0.0.1:{port}".encode() in environ
        till.send_signal(signal.SIGTERM)
        output = till.communicate(timeout=60)[0]
    finally:
        if till.poll() is None:
            till.kill()
    assert till.returncode == 128 + signal.SIGTERM, output
    assert "Till stopped." in output
    assert [pid for pid in (*started, postmaster) if _alive(pid)] == []
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
