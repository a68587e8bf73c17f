"""A wrong or missing password: the listener keeps trying, says why, and never dies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from hotconfig import HotConfig, Status
from tests.conftest import ServerFactory
from tests.faults.harness import Fleet
from tests.waiting import eventually

pytestmark = pytest.mark.faults

PASSWORD = "s3cret-Pa55"


def listener_threads(service: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"hotconfig-listener-{service}"]


def test_a_wrong_password_is_retried_visibly_and_the_listener_stays_alive(
    server_factory: ServerFactory, fleet_factory: Callable[[str], Fleet]
) -> None:
    server = server_factory(password=PASSWORD)
    fleet = fleet_factory(server.url)  # the store has the right password
    fleet.store.set("limit", 1)
    base = f"127.0.0.1:{server.port}/0"
    urls = {"no-password": f"redis://{base}", "wrong-password": f"redis://:not-it@{base}"}
    bad: dict[str, HotConfig[Any]] = {}
    for service, url in urls.items():
        bad[service] = fleet.client(url, service=service, start=False, backoff_max=0.2)
        assert bad[service].start(timeout=0.5) is False
    good = fleet.client(service="right-password")

    with server.client() as admin:

        def attempts() -> int:
            return int(admin.info("stats")["total_connections_received"])

        # Still knocking: each client makes several more attempts while we watch.
        before = attempts()
        assert eventually(lambda: attempts() - before >= 3 * 2 * len(bad), timeout=10)
    for service, config in bad.items():
        error = config.stats.last_error
        assert error is not None
        assert "auth" in error.lower() or "password" in error.lower(), error
        assert PASSWORD not in error
        assert "not-it" not in error
        assert config.status is Status.STARTING
        assert len(listener_threads(service)) == 1, threading.enumerate()
        assert listener_threads(service)[0].is_alive()
        assert config.get("limit") is None

    for service, config in bad.items():
        started = time.monotonic()
        config.close()
        assert time.monotonic() - started < 2.0
        assert config.status is Status.CLOSED
        assert listener_threads(service) == []

    fleet.store.set("limit", 2)
    fleet.assert_converged([good])
