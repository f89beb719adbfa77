"""A localstripe server (PyPI ``localstripe``, a stateful fake Stripe API) on a free loopback port, for the
provider contract suite and the integration tests that run the app on Stripe."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

STRIPE_TEST_KEY = "sk_test_till_providers"
STRIPE_WEBHOOK_SECRET = "whsec_stripe_test"
LOCALSTRIPE_START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def localstripe_server(log_dir: Path) -> Iterator[str]:
    """A localstripe server of our own for the session (empty store), stopped at the end.

    Its output goes to a file (a pipe nobody reads would fill up and stall it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "localstripe"), "--port", str(port), "--from-scratch"]
    log_path = log_dir / "localstripe.log"
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
