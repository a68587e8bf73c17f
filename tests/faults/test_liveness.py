"""Connections that die without saying so: a frozen server, a black-holed route, a slow reader.

redis-py's ``health_check_interval`` only *sends* a PING, so these look like "no messages" to a
naive subscriber for minutes. hotconfig's listener waits for its own PONG: with the default
timing (PING every 1 s, PONG due within 2 s) a dead connection is found in seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from hotconfig import Change, ConfigStore, Status
from hotconfig.testing.server import EmbeddedServer
from tests.faults.harness import Fleet, pubsub_clients
from tests.faults.proxy import TcpProxy
from tests.waiting import eventually

pytestmark = pytest.mark.faults

# PING interval + PONG deadline of the defaults, plus the listener's 0.25 s read slice.
DEFAULT_DETECTION = 1.0 + 2.0 + 0.25
# Seconds, not minutes, even on a loaded CI machine.
DETECTION_BOUND = DEFAULT_DETECTION + 2.0
# After the fault ends: a connect attempt that was already waiting out the 2 s socket timeout,
# the 1 s backoff cap, then connect, subscribe and resync.
RECOVERY_BOUND = 2.0 + 1.0 + 5.0


def test_a_frozen_server_is_detected_and_the_client_recovers_after_resume(
    fleet: Fleet, server: EmbeddedServer
) -> None:
    fleet.store.set("limit", 1)
    config = fleet.client()  # the default liveness timing is what is under test
    status = fleet.status_log(config)

    frozen_at = time.monotonic()
    server.pause()  # SIGSTOP: sockets stay open, nothing answers
    try:
        interrupted_at = status.wait_for(Status.INTERRUPTED, frozen_at, DETECTION_BOUND + 5)
        assert interrupted_at - frozen_at < DETECTION_BOUND
        assert config.get("limit") == 1  # the last snapshot is still served
    finally:
        server.resume()
    resumed_at = time.monotonic()

    version = fleet.store.set("limit", 2)
    fleet.store.set("after.resume", True)
    live_at = status.wait_for(Status.LIVE, resumed_at, RECOVERY_BOUND + 5)
    assert live_at - resumed_at < RECOVERY_BOUND
    assert config.wait_for_version(version, timeout=RECOVERY_BOUND)
    assert config.stats.reconnects >= 1
    assert (Status.LIVE, Status.INTERRUPTED) in [(old, new) for old, new, _ in status.moves]
    fleet.assert_converged()


def test_a_black_holed_connection_is_detected_in_seconds_and_healed(
    fleet: Fleet, proxy: TcpProxy
) -> None:
    fleet.store.set("limit", 1)
    # The client talks to the server through the proxy; the store writes to it directly.
    config = fleet.client(proxy.url_for())
    status = fleet.status_log(config)
    assert proxy.connection_count >= 1

    cut_at = time.monotonic()
    proxy.blackhole()  # every byte vanishes, no FIN, no RST: only silence
    interrupted_at = status.wait_for(Status.INTERRUPTED, cut_at, DETECTION_BOUND + 5)
    assert interrupted_at - cut_at < DETECTION_BOUND
    missed = fleet.store.set("limit", 2)  # published while the client cannot hear it
    assert not config.wait_for_version(missed, timeout=0.5)

    healed_at = time.monotonic()
    proxy.heal()
    live_at = status.wait_for(Status.LIVE, healed_at, RECOVERY_BOUND + 5)
    assert live_at - healed_at < RECOVERY_BOUND
    assert config.wait_for_version(missed, timeout=5)
    fleet.store.set("after.heal", True)
    fleet.assert_converged()
    # The black-holed connections were closed, not left behind: one for Pub/Sub, one for
    # the snapshot reads, one for the health reporter.
    assert eventually(lambda: proxy.connection_count == 3, timeout=10), proxy.connection_count


def test_a_slow_consumer_disconnected_by_the_server_converges_afterwards(
    fleet: Fleet, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    server.config_set("client-output-buffer-limit", "pubsub 64kb 32kb 1")
    config = fleet.client()
    # A receiver that stops reading: the server queues what it cannot send until the output
    # buffer limit is hit, then drops the connection without a word.
    reading = threading.Event()
    stalled = threading.Event()

    def slow(change: Change) -> None:
        if not reading.is_set():
            stalled.set()
            reading.wait(timeout=30)

    config.on_change("blob.*")(slow)
    try:
        blob = "x" * 64 * 1024
        fleet.store.set("blob.0", blob)
        assert stalled.wait(timeout=10)
        with ConfigStore(fleet.url, history_size=10) as writer:
            for i in range(2000):
                writer.set(f"blob.{i % 4}", f"{i:06d}{blob}")
                if i % 20 == 19 and not pubsub_clients(redis_client):
                    break
        assert not pubsub_clients(redis_client), "the server never disconnected the slow subscriber"
    finally:
        reading.set()

    fleet.store.set("after.drop", True)
    assert eventually(lambda: config.stats.reconnects >= 1, timeout=10)
    fleet.assert_converged()


def test_a_slow_receiver_on_a_healthy_connection_is_not_a_dead_connection(
    fleet: Fleet, server: EmbeddedServer
) -> None:
    config = fleet.client()  # default timing: PING every 1 s, PONG due within 2 s
    status = fleet.status_log(config)
    first_held = threading.Event()
    release = threading.Event()
    reloaded = threading.Event()

    def reload_model(change: Change) -> None:
        # Longer than the PONG deadline, as loading a model or warming a cache can be.
        if not first_held.is_set():
            first_held.set()
            release.wait(timeout=30)
        else:
            time.sleep(2.5)
            reloaded.set()

    config.on_change("ai.model.*")(reload_model)
    fleet.store.set("ai.model.default", "gpt-4o")
    assert first_held.wait(timeout=10)
    version = fleet.store.set("ai.model.default", "o3")  # waits on the socket meanwhile
    # The fault is a schedule, not a wait for anything: the listener is held past its PING
    # interval, so a PING goes out as soon as it is back, right before it reads the change
    # waiting behind it; and the server is busy for a moment (someone's slow command), so
    # that PONG comes back only after the second, slow receiver has started.
    time.sleep(1.2)
    busy = threading.Thread(target=debug_sleep, args=(server, 0.5))
    busy.start()
    time.sleep(0.1)  # DEBUG SLEEP reaches the server
    release.set()
    busy.join()
    assert reloaded.wait(timeout=10)
    assert config.wait_for_version(version, timeout=5)
    fleet.store.set("after", 1)
    fleet.assert_converged()

    moves: list[Any] = [(old, new) for old, new, _ in status.moves]
    assert config.stats.reconnects == 0, config.stats.last_error
    assert (Status.LIVE, Status.INTERRUPTED) not in moves


def debug_sleep(server: EmbeddedServer, seconds: float) -> None:
    with server.client() as client:
        client.execute_command("DEBUG", "SLEEP", seconds)


# A script that keeps the server busy for this long (by its own clock), then ends by itself.
_BUSY_SCRIPT = """
local started = tonumber(redis.call('TIME')[1])
while tonumber(redis.call('TIME')[1]) < started + tonumber(ARGV[1]) do end
return 1
"""


def test_a_server_busy_with_a_long_script_is_an_outage_not_a_misconfiguration(
    fleet: Fleet, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    fleet.store.set("limit", 1)
    config = fleet.client(timings={"poll_interval": 0.2})
    status = fleet.status_log(config)
    try:
        redis_client.config_set("busy-reply-threshold", 100)
    except redis.ResponseError:  # before Redis 7: the same setting under its old name
        redis_client.config_set("lua-time-limit", 100)
    busy = threading.Thread(
        target=lambda: server.client().eval(_BUSY_SCRIPT, 0, 3), name="busy-script", daemon=True
    )
    started = time.monotonic()
    busy.start()
    status.wait_for(Status.INTERRUPTED, started, DETECTION_BOUND + 5)
    busy.join(10)
    version = fleet.store.set("limit", 2)
    status.wait_for(Status.LIVE, started, RECOVERY_BOUND + 10)
    assert config.wait_for_version(version, timeout=RECOVERY_BOUND)
    assert Status.MISCONFIGURED not in [new for _, new, _ in status.moves]


def test_a_freeze_is_noticed_within_its_bound_while_the_poll_runs_all_the_time(
    fleet: Fleet, server: EmbeddedServer
) -> None:
    # The poll comes due every 20 ms, so one starts right after each freeze; a socket timeout
    # far above the PONG deadline shows whether the poll can hold the listener past it.
    timings = {"ping_interval": 0.2, "liveness_timeout": 0.5, "socket_timeout": 4.0}
    config = fleet.client(timings={**timings, "poll_interval": 0.02})
    status = fleet.status_log(config)
    bound = 0.2 + 0.5 + 0.25  # ping_interval + liveness_timeout + the read slice
    for _ in range(2):
        fleet.store.set("limit", time.monotonic())
        time.sleep(0.3)
        frozen_at = time.monotonic()
        server.pause()
        try:
            interrupted_at = status.wait_for(Status.INTERRUPTED, frozen_at, 10)
        finally:
            server.resume()
        assert interrupted_at - frozen_at < bound + 1.5  # the poll's 4 s would show here
        status.wait_for(Status.LIVE, time.monotonic() - 0.1, RECOVERY_BOUND + 5)
