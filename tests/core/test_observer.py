"""The fleet's reading side (hotconfig.fleet._observer) against reports written by the registry's
own script (tests/reports.py), so that instances can be in any state on cue: what
``Fleet.instances`` lists, how ``Fleet.wait`` settles each instance, and what ``Fleet.watch``
yields. Real clients and reporters together are tests/core/test_reporter.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from hotconfig import ConfigStore, Fleet
from hotconfig.fleet import ChangeNotice, Convergence, Gone, Report
from hotconfig.testing.server import EmbeddedServer
from tests.conftest import ServerFactory
from tests.reports import send_report
from tests.waiting import eventually


@pytest.fixture
def fleet(server: EmbeddedServer) -> Iterator[Fleet]:
    with Fleet(server.url) as fleet:
        yield fleet


def wait_in_thread(
    fleet: Fleet, version: int, **kwargs: object
) -> tuple[threading.Thread, list[Convergence]]:
    """``fleet.wait(version, ...)`` on a thread; its result lands in the list."""
    results: list[Convergence] = []
    thread = threading.Thread(
        target=lambda: results.append(fleet.wait(version, **kwargs)),  # type: ignore[arg-type]
        daemon=True,
    )
    thread.start()
    return thread, results


def health_subscribers(client: redis.Redis) -> int:
    return int(client.pubsub_numsub("health:status:hotconfig")[0][1])


def test_instances_are_sorted_by_service_then_instance_and_filtered_by_service(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:2:b", service="search")
    send_report(redis_client, "h:1:z", service="billing")
    send_report(redis_client, "h:1:a", service="billing")
    send_report(redis_client, "h:3:n", service=None)  # no service: listed first
    assert [(r.service, r.instance) for r in fleet.instances()] == [
        (None, "h:3:n"),
        ("billing", "h:1:a"),
        ("billing", "h:1:z"),
        ("search", "h:2:b"),
    ]
    assert [r.instance for r in fleet.instances("billing")] == ["h:1:a", "h:1:z"]
    assert fleet.instances("nobody") == []


def test_a_registered_entry_that_is_not_a_report_is_left_out(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:a")
    redis_client.zadd("{hotconfig}:health:instances", {"junk": time.time() + 60})
    redis_client.set("{hotconfig}:health:instance:junk", b"\xff not json")
    assert [r.instance for r in fleet.instances()] == ["h:1:a"]


def test_a_fleet_reads_only_its_own_namespace(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:a", namespace="billing")
    send_report(redis_client, "h:1:b")
    with Fleet(server.url, "billing") as billing:
        assert [r.instance for r in billing.instances()] == ["h:1:a"]
        assert billing.health_channel == "health:status:billing"


def test_wait_over_no_instance_returns_at_once_and_is_not_ok(fleet: Fleet) -> None:
    # A fleet being restarted has confirmed nothing: the barrier must not say it landed.
    result = fleet.wait(7, timeout=5)
    assert result == Convergence(False, 7, (), (), (), (), result.elapsed, {})
    assert result.empty
    assert result.elapsed < 1.0


def test_wait_settles_instances_that_already_applied_without_waiting(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:ahead", version=9)
    send_report(redis_client, "h:1:at", version=7)
    result = fleet.wait(7, timeout=5)
    assert (result.ok, result.applied) == (True, ("h:1:ahead", "h:1:at"))
    assert result.elapsed < 1.0
    assert set(result.reports) == {"h:1:ahead", "h:1:at"}


def test_wait_names_instances_that_left_or_closed_as_gone(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:closed", status="CLOSED")
    send_report(redis_client, "h:1:live", version=1)
    result = fleet.wait(1, timeout=5)
    assert (result.ok, result.gone, result.applied) == (False, ("h:1:closed",), ("h:1:live",))


def test_wait_hears_reports_that_arrive_while_it_waits_including_new_instances(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:a", version=0)
    thread, results = wait_in_thread(fleet, 1, timeout=5)
    assert eventually(lambda: health_subscribers(redis_client) == 1)
    send_report(redis_client, "h:1:late", version=0)  # registers during the wait: counted
    send_report(redis_client, "h:1:a", version=1)
    time.sleep(0.1)
    assert thread.is_alive()  # still waiting for the newcomer
    send_report(redis_client, "h:1:late", version=1)
    thread.join(5)
    [result] = results
    assert (result.ok, result.applied) == (True, ("h:1:a", "h:1:late"))


def test_wait_for_a_service_ignores_the_others(fleet: Fleet, redis_client: redis.Redis) -> None:
    send_report(redis_client, "h:1:billing", service="billing", version=0)
    send_report(redis_client, "h:1:search", service="search", version=0)
    thread, results = wait_in_thread(fleet, 1, timeout=5, service="billing")
    assert eventually(lambda: health_subscribers(redis_client) == 1)
    send_report(redis_client, "h:1:other", service="search", version=0)
    send_report(redis_client, "h:1:billing", service="billing", version=1)
    thread.join(5)
    [result] = results
    assert (result.ok, result.applied, result.behind) == (True, ("h:1:billing",), ())
    assert set(result.reports) == {"h:1:billing"}


def test_a_rejection_reported_during_the_wait_names_its_key_or_says_rejected(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:keyed", version=0)
    send_report(redis_client, "h:1:whole", version=0)
    thread, results = wait_in_thread(fleet, 1, timeout=5)
    assert eventually(lambda: health_subscribers(redis_client) == 1)
    keyed = {"key": "limit", "version": 1, "reason": "invalid_value: not an int"}
    whole = {"key": None, "version": 1, "reason": "bad_signature"}
    send_report(redis_client, "h:1:keyed", event="rejected", rejections=[keyed])
    send_report(redis_client, "h:1:whole", event="rejected", rejections=[whole])
    thread.join(5)
    [result] = results
    assert not result.ok
    assert result.rejected == (
        ("h:1:keyed", "limit: invalid_value: not an int"),
        ("h:1:whole", "bad_signature"),
    )


def test_an_instance_that_applies_after_rejecting_an_older_version_is_applied(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    old = {"key": "limit", "version": 1, "reason": "invalid_value"}
    send_report(redis_client, "h:1:a", version=2, rejections=[old])
    assert fleet.wait(2, timeout=5).applied == ("h:1:a",)
    assert fleet.wait(1, timeout=5).rejected == (("h:1:a", "limit: invalid_value"),)


def test_wait_ends_at_its_timeout_naming_who_is_behind(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:slow", version=0, ttl=30)
    started = time.monotonic()
    result = fleet.wait(1, timeout=0.3)
    assert (result.ok, result.behind) == (False, ("h:1:slow",))
    assert 0.3 <= time.monotonic() - started < 3
    assert health_subscribers(redis_client) == 0  # its subscription is let go


def test_watch_yields_reports_as_they_come_and_forgets_an_instance_that_left(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:a", ttl=0.5)
    with fleet.watch(timeout=2) as feed:
        send_report(redis_client, "h:1:a", event="leave")
        redis_client.publish("health:status:hotconfig", "not a report")  # skipped
        send_report(redis_client, "h:1:b", version=3, ttl=30)
        events = list(feed)
    assert all(isinstance(e, Report) for e in events)  # and no Gone: the leaver said goodbye
    assert [(e.instance, e.event) for e in events if isinstance(e, Report)] == [
        ("h:1:a", "leave"),
        ("h:1:b", "version"),
    ]


def test_watch_ends_at_its_timeout(fleet: Fleet) -> None:
    started = time.monotonic()
    with fleet.watch(timeout=0.3) as feed:
        assert list(feed) == []
    assert 0.3 <= time.monotonic() - started < 3


def test_watch_tells_an_instance_gone_when_its_registration_expires(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    send_report(redis_client, "h:1:dying", ttl=0.3)
    with fleet.watch(timeout=5) as feed:
        event = next(feed)
    assert isinstance(event, Gone)
    assert (event.instance, event.last.instance) == ("h:1:dying", "h:1:dying")


def test_watch_with_changes_skips_what_is_not_a_change_message(
    fleet: Fleet, redis_client: redis.Redis, store: ConfigStore
) -> None:
    with fleet.watch(timeout=5, changes=True) as feed:
        redis_client.publish("config:changes", "garbage that is not a change")
        version = store.set("feature", True)
        notice = next(feed)
    assert isinstance(notice, ChangeNotice)
    assert (notice.version, notice.reload) == (version, False)
    assert [(e.key, e.value) for e in notice.entries] == [("feature", True)]


def test_watch_without_changes_does_not_follow_the_changes_channel(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    with fleet.watch(timeout=5) as feed:
        assert redis_client.pubsub_numsub("config:changes") == [(b"config:changes", 0)]
        feed.close()
        assert list(feed) == []
    assert eventually(lambda: health_subscribers(redis_client) == 0)


def test_a_fleet_never_shows_the_password_of_its_url(server_factory: ServerFactory) -> None:
    server = server_factory(password="s3cr3t-pw")
    with Fleet(server.url) as fleet:
        assert "s3cr3t-pw" not in fleet.url + repr(fleet)
        where = f"{server.host}:{server.port}"
        assert repr(fleet) == f"<Fleet redis://:***@{where}/0 namespace='hotconfig'>"
        assert fleet.instances() == []


HOSTILE_REPORTS = [
    b'{"instance": "x", "version": 1e999}',  # a number no int or float holds
    b'{"instance": "x", "counts": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # deeper than Python
    b'{"instance": "x", "rejections": [{"key": ' + b"[" * 50 + b"]" * 50 + b"}]}",
    b'{"instance": "x\xff"}',  # not UTF-8
    b'{"instance": "x", "pad": "' + b"a" * 200_000 + b'"}',
]


@pytest.mark.parametrize("raw", HOSTILE_REPORTS)
def test_a_hostile_report_is_a_value_error_like_any_malformed_one(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"report|JSON|float|deep|UTF|utf|bytes"):
        Report.from_json(raw)


def test_hostile_reports_on_the_health_channel_do_not_stop_wait_or_watch(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    # Every service host may publish on the health channel (the subscriber role).
    send_report(redis_client, "h:1:real", version=3)

    def flood() -> None:
        for raw in HOSTILE_REPORTS:
            redis_client.publish(fleet.health_channel, raw)
        send_report(redis_client, "h:1:real", version=7)

    timer = threading.Timer(0.2, flood)
    timer.start()
    try:
        result = fleet.wait(7, timeout=5)
    finally:
        timer.join()
    assert (result.ok, result.applied) == (True, ("h:1:real",))
    with fleet.watch(timeout=2) as watch:
        threading.Timer(0.2, flood).start()
        seen = [event for event in watch if isinstance(event, Report)]
    assert [report.instance for report in seen] == ["h:1:real"]
