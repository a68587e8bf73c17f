"""Misconfiguration is loud and distinguishable from an outage, and mends itself once fixed.

A wrong password, a missing ACL permission or a port that is not Redis at all will not get better
by retrying fast: the client says so at once (status MISCONFIGURED, an ERROR with what to fix),
keeps retrying slowly, and goes LIVE by itself when the fix is in. An outage (no server) is a
WARNING once, then quiet.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hotconfig import HotConfig, Status
from hotconfig.testing import free_port
from tests.conftest import ServerFactory
from tests.faults.harness import Fleet
from tests.waiting import eventually

pytestmark = pytest.mark.faults

PASSWORD = "s3cret-Pa55"


def listener_threads(service: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"hotconfig-listener-{service}"]


def test_a_wrong_password_is_reported_at_once_and_retried_slowly(
    server_factory: ServerFactory,
    fleet_factory: Callable[[str], Fleet],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = server_factory(password=PASSWORD)
    fleet = fleet_factory(server.url)  # the store has the right password
    fleet.store.set("limit", 1)
    base = f"127.0.0.1:{server.port}/0"
    urls = {"no-password": f"redis://{base}", "wrong-password": f"redis://:not-it@{base}"}
    bad: dict[str, HotConfig[Any]] = {}
    caplog.set_level(logging.DEBUG, logger="hotconfig")
    for service, url in urls.items():
        bad[service] = fleet.client(url, service=service, start=False)
        started = time.monotonic()
        assert bad[service].start(timeout=5) is False
        assert time.monotonic() - started < 1.0, "start() waited although the server refused"
    good = fleet.client(service="right-password")

    for service, config in bad.items():
        assert config.status is Status.MISCONFIGURED
        error = config.stats.last_error
        assert error is not None
        assert "auth" in error.lower() or "password" in error.lower(), error
        assert PASSWORD not in error
        assert "not-it" not in error
        assert len(listener_threads(service)) == 1, threading.enumerate()
        assert config.get("limit") is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == len(bad), [r.getMessage() for r in errors]
    assert all("password" in r.getMessage() for r in errors)
    assert not any("not-it" in r.getMessage() or PASSWORD in r.getMessage() for r in caplog.records)

    with server.client() as admin:

        def attempts() -> int:
            return int(admin.info("stats")["total_connections_received"])

        # Still knocking, slowly: a fixed password must take effect without a restart.
        before = attempts()
        assert eventually(lambda: attempts() - before >= 2 * len(bad), timeout=10)

    for service, config in bad.items():
        started = time.monotonic()
        config.close()
        assert time.monotonic() - started < 2.0
        assert config.status is Status.CLOSED
        assert listener_threads(service) == []

    fleet.store.set("limit", 2)
    fleet.assert_converged([good])


def test_a_fixed_password_brings_the_client_live_by_itself(
    server_factory: ServerFactory, fleet_factory: Callable[[str], Fleet]
) -> None:
    server = server_factory(password=PASSWORD)
    fleet = fleet_factory(server.url)
    fleet.store.set("limit", 1)
    config = fleet.client(f"redis://:not-it@127.0.0.1:{server.port}/0", start=False)
    assert config.start(timeout=5) is False
    assert config.status is Status.MISCONFIGURED

    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "default", ">not-it")  # a second password
    assert eventually(lambda: config.status is Status.LIVE, timeout=10), config.stats
    assert config.get("limit") == 1
    fleet.store.set("limit", 2)
    fleet.assert_converged()


def test_a_missing_acl_permission_is_a_misconfiguration(
    server_factory: ServerFactory, fleet_factory: Callable[[str], Fleet]
) -> None:
    server = server_factory()
    fleet = fleet_factory(server.url)
    fleet.store.set("limit", 1)
    with server.client() as admin:
        # May subscribe and ping, but may not run the store's scripts.
        admin.execute_command(
            "ACL", "SETUSER", "reader", "on", ">pw", "resetchannels", "&config:changes",
            "+subscribe", "+ping", "+hello", "+client",
        )  # fmt: skip
    config = fleet.client(f"redis://reader:pw@127.0.0.1:{server.port}/0", start=False)
    assert config.start(timeout=5) is False
    assert config.status is Status.MISCONFIGURED
    assert "NOPERM" in (config.stats.last_error or "") or "permission" in str(config.stats)

    with server.client() as admin:
        admin.execute_command(
            "ACL", "SETUSER", "reader", "+eval", "+evalsha", "+get", "+hgetall", "+hlen",
            "~{hotconfig}:*",
        )  # fmt: skip
    assert eventually(lambda: config.status is Status.LIVE, timeout=10), config.stats
    fleet.assert_converged()


@pytest.fixture
def not_redis() -> Iterator[int]:
    """A loopback port that answers like a web server, not like Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                peer, _ = listener.accept()
            except TimeoutError:
                continue
            with peer:
                peer.sendall(b"<html>not redis</html>\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def test_a_port_that_is_not_redis_is_a_misconfiguration(not_redis: int) -> None:
    with HotConfig(f"redis://127.0.0.1:{not_redis}/0") as config:
        assert config.status is Status.MISCONFIGURED
        assert "protocol" in (config.stats.last_error or "").lower()


@pytest.mark.slow
def test_an_outage_logs_a_few_lines_not_one_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hotconfig")
    config = HotConfig(f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert config.start(timeout=8) is False
        assert config.status is Status.STARTING  # down, not misconfigured
        attempts = [r for r in caplog.records if "fail" in r.getMessage()]
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        config.close()
    assert len(attempts) >= 10, "the client stopped retrying"  # about one each 0.4 s
    assert 1 <= len(loud) <= 3, [r.getMessage() for r in loud]
    assert all(r.name.startswith("hotconfig.") for r in caplog.records)
    assert not any(r.getMessage().startswith("hotconfig:") for r in caplog.records)
