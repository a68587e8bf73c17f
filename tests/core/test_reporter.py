"""Health reports, the instance registry and the convergence barrier, on real servers.

What an operator relies on: every instance is listed while it runs and drops out when it dies;
``Fleet.wait`` says within milliseconds whether a version landed everywhere, and names who
rejected it and why; a report never carries a value; a reporter never hurts its client.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from pydantic import BaseModel

from hotconfig import ClientClosedError, ConfigStore, Fleet, HotConfig, Limits, Status
from hotconfig.fleet import ChangeNotice, Gone
from hotconfig.fleet.registry import Report, channel_for
from hotconfig.fleet.reporter import Reporter
from hotconfig.security import KeyRing
from hotconfig.testing.server import EmbeddedServer
from tests.instances import spawned_instance
from tests.waiting import eventually

SECRET = "hunter2-do-not-leak"
REJECTED = "not-a-number-xyz"


class Typed(BaseModel):
    limit: int = 10


Start = Callable[..., tuple[HotConfig[Any], Reporter]]


@pytest.fixture
def fleet(server: EmbeddedServer) -> Iterator[Fleet]:
    with Fleet(server.url) as fleet:
        yield fleet


@pytest.fixture
def start(server: EmbeddedServer) -> Iterator[Start]:
    """Start a client and attach its reporter; both close with the client at teardown."""
    made: list[tuple[HotConfig[Any], Reporter]] = []

    def make(
        service: str = "app",
        model: type[BaseModel] | None = None,
        live: bool = True,
        client: dict[str, Any] | None = None,
        **kw: Any,
    ) -> tuple[HotConfig[Any], Reporter]:
        """``client``: more of the client's arguments; ``kw``: the reporter's."""
        config: HotConfig[Any] = HotConfig(
            server.url, service=service, model=model, health=False, **(client or {})
        )
        if live:
            assert config.start(timeout=5)
        reporter = Reporter(config, **kw)
        config.attach(reporter)
        if not live:
            reporter.start()
        made.append((config, reporter))
        assert eventually(lambda: reporter.reports > 0), "no first report"
        return config, reporter

    yield make
    for config, _ in reversed(made):
        config.close()


def test_each_instance_is_listed_with_what_it_applied(
    start: Start, fleet: Fleet, store: ConfigStore
) -> None:
    store.set("a", 1)
    first, _ = start("billing", framework="flask")
    start("search")
    reports = fleet.instances()
    assert [r.service for r in reports] == ["billing", "search"]
    billing = reports[0]
    assert billing.host
    assert billing.pid == os.getpid()
    assert billing.framework == "flask"
    assert billing.instance.startswith(f"{billing.host}:{os.getpid()}:")
    assert (billing.version, billing.status, billing.lag) == (1, "LIVE", 0.0)
    assert billing.epoch == first.snapshot().epoch
    assert set(billing.counts) == {"received", "applied", "rejected", "resyncs", "reconnects"}
    assert [r.service for r in fleet.instances("search")] == ["search"]


def test_instances_at_one_version_report_the_store_s_digest(
    start: Start, fleet: Fleet, store: ConfigStore
) -> None:
    # Live messages (the first client) and a resync (the second, started after) agree.
    first, _ = start("billing")
    store.set("a", 1)
    store.set("b", 2)
    assert first.wait_for_version(2, timeout=5)
    start("search")
    digest = store.snapshot(["global"]).digest
    assert digest
    assert first.snapshot().digest == digest
    assert eventually(lambda: {r.digest for r in fleet.instances()} == {digest})


def test_wait_names_the_instance_that_rejected_with_its_reason(
    start: Start, fleet: Fleet, store: ConfigStore
) -> None:
    _, a = start("web")
    _, b = start("web")
    _, typed = start("worker", model=Typed)
    result = fleet.wait(store.set("limit", REJECTED), timeout=2)
    assert not result.ok
    assert result.applied == tuple(sorted([a.instance, b.instance]))
    [(instance, reason)] = result.rejected
    assert instance == typed.instance
    assert reason.startswith("limit: invalid_value: Input should be a valid integer")
    assert result.elapsed < 1.0
    assert REJECTED not in reason  # the value never travels, only why it was refused


def test_a_write_refused_before_it_is_read_is_rejected_under_its_own_version(
    start: Start, fleet: Fleet, store: ConfigStore, server: EmbeddedServer
) -> None:
    # Refused by the parser (too deep for this client's limits, not UTF-8): the client never
    # applies the message, yet the barrier must hear "rejected, why", not "behind".
    _, shallow = start("shallow", client={"limits": Limits(max_depth=2)})
    result = fleet.wait(store.set("deep", {"a": {"b": {"c": 1}}}), timeout=3)
    assert result.rejected == (
        (shallow.instance, "too_deep: a value is nested deeper than 2 levels"),
    )
    assert result.behind == ()
    version = store.version + 1
    forged = b'{"version":%d,"ns":"hotconfig","epoch":"e","key":"k","value":"\xff"}' % version
    with server.client() as raw:
        raw.publish("config:changes", forged)
    [(_, reason)] = fleet.wait(version, timeout=3).rejected
    assert reason.startswith("not_utf8: ")


def test_a_write_whose_signature_fails_is_rejected_under_its_own_version(
    start: Start, fleet: Fleet, server: EmbeddedServer
) -> None:
    ring, wrong = (KeyRing({"k1": secrets.token_bytes(32)}) for _ in range(2))
    _, signing = start("signing", client={"signing_keys": ring})
    with ConfigStore(server.url, signing_keys=wrong) as store:
        version = store.set("k", 1)
    result = fleet.wait(version, timeout=3)
    [(instance, reason)] = result.rejected
    assert (instance, reason.split(": ")[:2]) == (signing.instance, ["k", "bad_signature"])


def test_a_registration_names_the_listener_s_connection_again_after_a_reconnect(
    start: Start, fleet: Fleet, server: EmbeddedServer
) -> None:
    config, reporter = start("web")
    first = config.stats.connection_id
    assert first is not None
    [report] = fleet.instances()
    assert report.connection == first
    with server.client() as admin:
        [listed] = admin.execute_command("CLIENT LIST", "ID", first)
        assert listed["sub"] == "1"  # the subscription itself: it lives as long as the process
        admin.client_kill_filter(_type="pubsub")
    assert eventually(lambda: config.stats.connection_id not in (None, first), timeout=5)
    # Left out while its old connection is named, re-registered at once (not at the next
    # tick, 5 s away) with the new one.
    now = config.stats.connection_id
    assert eventually(lambda: [r.connection for r in fleet.instances()] == [now], timeout=2)
    assert [r.instance for r in fleet.instances()] == [reporter.instance]


def test_wait_confirms_every_instance_within_milliseconds(
    start: Start, fleet: Fleet, store: ConfigStore
) -> None:
    reporters = [start(f"svc-{i % 2}", interval=30)[1] for i in range(4)]
    # A write in a scope nobody follows still moves every client's version: it must be
    # reported at once, not at the next tick 30 s away.
    result = fleet.wait(store.set("x", 1, scope="service:other"), timeout=2)
    assert result.ok, result
    assert set(result.applied) == {r.instance for r in reporters}
    assert result.elapsed < 0.5
    only = fleet.wait(store.set("x", 2), timeout=2, service="svc-1")
    assert only.ok
    assert len(only.applied) == 2


def test_an_instance_behind_shows_its_lag_and_holds_the_barrier(
    start: Start, fleet: Fleet, store: ConfigStore
) -> None:
    store.set("a", 1)
    time.sleep(0.2)
    version = store.set("a", 2)
    _, stuck = start("stuck", live=False, interval=0.05)  # never started: stays at version 0
    [report] = fleet.instances()
    assert (report.version, report.store_version, report.status) == (0, 2, "STARTING")
    assert report.lag >= 0.2
    result = fleet.wait(version, timeout=0.3)
    assert not result.ok
    assert result.behind == (stuck.instance,)
    assert result.reports[stuck.instance].version == 0


def test_an_expired_registration_is_gone(start: Start, fleet: Fleet, store: ConfigStore) -> None:
    # A ttl shorter than the interval makes a live instance look dead between two reports.
    _, silent = start("quiet", interval=30, ttl=0.3)
    config, talker = start("talker")
    config.close()  # its reporter leaves the registry at once
    assert eventually(lambda: talker.instance not in {r.instance for r in fleet.instances()})
    version = store.set("k", 1)  # silent applies it and reports: registered for 0.3 s more
    assert fleet.wait(version, timeout=1).applied == (silent.instance,)
    time.sleep(0.35)
    assert fleet.instances() == []
    result = fleet.wait(version + 1, timeout=1)
    assert result.empty  # nobody left to wait for: nothing is confirmed
    assert not result.ok
    assert result.reports == {}


def test_a_frozen_instance_is_gone_once_its_registration_expires(
    server: EmbeddedServer, fleet: Fleet, store: ConfigStore
) -> None:
    # SIGSTOP: the process lives on, its connections stay open; only the expiry can tell.
    with spawned_instance(server.url, service="victim", ttl=0.6) as child:
        assert [r.instance for r in fleet.instances()] == [child.instance]
        child.freeze()
        started = time.monotonic()
        result = fleet.wait(store.set("k", 1), timeout=3)
        assert result.gone == (child.instance,), result
        assert not result.ok
        assert time.monotonic() - started < 1.5  # decided at the expiry, not at the timeout
        assert fleet.instances() == []


def test_a_killed_process_leaves_the_fleet_and_the_barrier_at_once(
    start: Start, server: EmbeddedServer, fleet: Fleet, store: ConfigStore
) -> None:
    # The default timings: its registration outlives it by up to 15 s, and a barrier used to
    # wait on it all that time. The server drops its connection the moment it dies.
    _, alive = start("web")
    with spawned_instance(server.url, service="victim", interval=5.0, ttl=15.0) as child:
        assert {r.instance for r in fleet.instances()} == {alive.instance, child.instance}
        child.kill()
        started = time.monotonic()
        result = fleet.wait(store.set("k", 1), timeout=20)
        elapsed = time.monotonic() - started
        assert (result.ok, result.applied) == (True, (alive.instance,)), result
        assert child.instance not in result.reports
        assert elapsed < 2.5
        assert [r.instance for r in fleet.instances()] == [alive.instance]


def test_a_killed_process_leaves_the_fleet_though_a_child_it_forked_lives_on(
    server: EmbeddedServer, fleet: Fleet
) -> None:
    # The child holds copies of the parent's sockets: it must close them, or the server would
    # keep the dead parent's connection open, and the parent would stay listed for 15 s.
    with spawned_instance(
        server.url, service="parent", interval=5.0, ttl=15.0, forks=True
    ) as parent:
        assert eventually(lambda: any(r.pid == parent.forked for r in fleet.instances()))
        parent.kill()
        assert eventually(
            lambda: parent.instance not in {r.instance for r in fleet.instances()}, timeout=2
        )
        assert [r.pid for r in fleet.instances()] == [parent.forked]  # the child is listed


def test_an_instance_killed_during_a_wait_is_gone_within_a_second(
    server: EmbeddedServer, fleet: Fleet
) -> None:
    with spawned_instance(server.url, service="victim", interval=5.0, ttl=15.0) as child:
        waiting = threading.Timer(0.3, child.kill)
        waiting.start()
        started = time.monotonic()
        result = fleet.wait(1, timeout=20, service="victim")
        elapsed = time.monotonic() - started
        waiting.join()
    assert (result.ok, result.gone) == (False, (child.instance,)), result
    assert elapsed < 2.5  # killed after 0.3 s, seen at the next look (every 0.5 s)


def test_a_report_never_carries_a_value(
    start: Start, server: EmbeddedServer, store: ConfigStore
) -> None:
    seen: list[bytes] = []
    with server.client() as raw:
        pubsub = raw.pubsub()
        pubsub.subscribe(channel_for("hotconfig"))
        reader = threading.Thread(target=_collect, args=(pubsub, seen), daemon=True)
        reader.start()
        _, typed = start("typed", model=Typed)
        store.set("db.password", SECRET)
        store.set("limit", REJECTED)
        assert eventually(lambda: any(b'"event":"rejected"' in m for m in seen))
        stored = raw.get(f"{{hotconfig}}:health:instance:{typed.instance}")
        pubsub.close()
    assert stored is not None
    for payload in [*seen, stored]:
        assert SECRET.encode() not in payload
        assert REJECTED.encode() not in payload
    rejection = Report.from_json(stored).rejections[-1]
    assert (rejection.key, rejection.version) == ("limit", 2)


def _collect(pubsub: redis.client.PubSub, seen: list[bytes]) -> None:
    try:
        for message in pubsub.listen():  # type: ignore[no-untyped-call]
            if message["type"] == "message":
                seen.append(message["data"])
    except (redis.ConnectionError, ValueError, AttributeError):
        return  # closed by the test


def test_watch_streams_changes_reports_and_departures(
    start: Start, fleet: Fleet, store: ConfigStore
) -> None:
    _, quiet = start("quiet", interval=30, ttl=0.5)
    with fleet.watch(timeout=3, changes=True) as feed:
        store.set("feature", True)
        events: list[Report | Gone | ChangeNotice] = []
        for event in feed:
            events.append(event)
            if isinstance(event, Gone):
                break
    notice = next(e for e in events if isinstance(e, ChangeNotice))
    assert [(e.key, e.value) for e in notice.entries] == [("feature", True)]
    assert any(isinstance(e, Report) and e.event == "version" and e.version == 1 for e in events)
    assert isinstance(events[-1], Gone)
    assert events[-1].instance == quiet.instance


def test_watch_can_be_closed_from_another_thread(fleet: Fleet) -> None:
    feed = fleet.watch()
    threading.Timer(0.1, feed.close).start()
    started = time.monotonic()
    assert list(feed) == []
    assert time.monotonic() - started < 1.0


def test_a_redis_error_is_counted_and_the_report_retried(
    start: Start, server: EmbeddedServer, fleet: Fleet
) -> None:
    config, reporter = start("flaky", interval=0.1)
    server.kill()
    assert eventually(lambda: reporter.errors > 0)
    server.restart()
    assert eventually(lambda: [r.instance for r in fleet.instances()] == [reporter.instance])
    assert eventually(lambda: config.status is Status.LIVE, timeout=10)


def test_close_is_bounded_when_the_server_is_frozen(start: Start, server: EmbeddedServer) -> None:
    _, reporter = start("frozen")
    server.pause()
    try:
        started = time.monotonic()
        reporter.close()
        assert time.monotonic() - started < 2.0
        assert not reporter.running
    finally:
        server.resume()


# Python 3.12+ warns on fork() in a process with threads; forking such a process is the point.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_reports_as_another_instance(start: Start, fleet: Fleet) -> None:
    _, reporter = start("forking")
    pid = os.fork()
    if pid == 0:  # the child: its reporter restarts by itself under a new id
        time.sleep(30)
        os._exit(0)
    try:
        assert eventually(lambda: any(r.pid == pid for r in fleet.instances()), timeout=10)
        child = next(r for r in fleet.instances() if r.pid == pid)
        assert child.instance != reporter.instance
        assert child.status in ("STARTING", "LIVE")
        assert reporter.instance in {r.instance for r in fleet.instances()}
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_reporter_attached_from_outside_reports_with_the_clients_password(
    server: EmbeddedServer, fleet: Fleet
) -> None:
    admin = redis.Redis(server.host, server.port)
    admin.acl_setuser(
        "app", enabled=True, passwords=["+s3cret"], keys=["*"], channels=["*"], commands=["+@all"]
    )
    url = f"redis://app:s3cret@{server.host}:{server.port}/0"
    with HotConfig(url, service="guarded", health=False) as config:
        reporter = Reporter(config, framework="plain")
        config.attach(reporter)  # the client is running: the reporter starts at once
        assert eventually(lambda: fleet.instances(service="guarded"), timeout=5)
        assert "s3cret" not in repr(reporter)
    # Closing the client closed its companion: the instance left the registry.
    assert not reporter.running
    assert eventually(lambda: not fleet.instances(service="guarded"), timeout=5)
    admin.close()


def test_nothing_attaches_to_a_closed_client(server: EmbeddedServer) -> None:
    config: HotConfig[Any] = HotConfig(server.url, health=False)
    config.close()
    reporter = Reporter(config)
    with pytest.raises(ClientClosedError, match="closed"):
        config.attach(reporter)
    reporter.close()  # a reporter never started closes at once


def test_watch_announces_a_change_too_large_for_one_message(
    server: EmbeddedServer, fleet: Fleet
) -> None:
    with (
        ConfigStore(server.url, max_message_bytes=2048) as store,
        fleet.watch(timeout=2, changes=True) as feed,
    ):
        version = store.set_many({f"k{i}": "x" * 50 for i in range(100)})
        notice = next(e for e in feed if isinstance(e, ChangeNotice))
    assert notice == ChangeNotice(version, (), reload=True)


def test_every_client_reports_itself_by_default(
    server: EmbeddedServer, fleet: Fleet, store: ConfigStore
) -> None:
    version = store.set("a", 1)
    with HotConfig(server.url, service="default-on") as config:
        assert config.wait_for_version(version, timeout=5)
        # Its first report lands a moment after the version: until then the barrier sees no
        # instance at all, and a barrier over nobody proves nothing about this client.
        assert eventually(lambda: fleet.instances(service="default-on"), timeout=5)
        result = fleet.wait(version, timeout=5, service="default-on")
        assert result.ok, result
        (report,) = fleet.instances(service="default-on")
        assert (report.framework, report.version) == (None, version)
    assert eventually(lambda: not fleet.instances(service="default-on"), timeout=5)
    with HotConfig(server.url, service="silent", health=False) as quiet:
        assert quiet.status is Status.LIVE
        assert fleet.instances(service="silent") == []
