"""The health report format and the instance registry (hotconfig.fleet.registry): the keys,
the report script on a real server (server time, expiry, lag, leaving), the live-instances
script, and parsing what a reporter wrote."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from hotconfig import ConfigStore
from hotconfig._redis.keyspace import Keyspace
from hotconfig.errors import InvalidMessageError, InvalidValueError, RejectReason
from hotconfig.fleet.registry import (
    COUNTS,
    LIVE_SCRIPT,
    SERVER_FIELDS,
    Registry,
    Rejection,
    Report,
    channel_for,
    check_report,
    describe,
)
from hotconfig.security import KeyRing, Verdict
from tests.reports import send_report
from tests.waiting import eventually


def live(client: redis.Redis, namespace: str = "hotconfig") -> tuple[float, int, list[Any]]:
    """What the live-instances script answers: server time, store version, reports."""
    registry, keyspace = Registry(namespace), Keyspace(namespace)
    reply = client.register_script(LIVE_SCRIPT)(
        keys=[registry.instances, keyspace.version], args=[registry.prefix]
    )
    return float(reply[0]), int(reply[1]), [json.loads(raw) for raw in reply[2:]]


def test_every_registry_key_of_a_namespace_is_in_the_store_s_cluster_slot() -> None:
    registry, keyspace = Registry("billing"), Keyspace("billing")
    assert registry.instances == "{billing}:health:instances"
    assert registry.instance("h:1:a") == registry.prefix + "h:1:a"
    slots = {key_slot(k.encode()) for k in (registry.instances, registry.instance("x"))}
    assert slots == {key_slot(keyspace.version.encode())}
    assert Registry().instances == "{hotconfig}:health:instances"
    assert channel_for("billing") == "health:status:billing"


def test_a_report_is_stored_with_its_ttl_registered_and_published(
    redis_client: redis.Redis,
) -> None:
    pubsub = redis_client.pubsub()
    pubsub.subscribe(channel_for("hotconfig"))
    try:
        before = time.time()
        sent = send_report(redis_client, "h:1:a", version=0, ttl=5.0)
        heard: list[bytes] = []

        def published() -> bool:
            message = pubsub.get_message(timeout=0.05)
            if message is not None and message["type"] == "message":
                heard.append(message["data"])
            return bool(heard)

        assert eventually(published)
    finally:
        pubsub.close()
    stored = redis_client.get("{hotconfig}:health:instance:h:1:a")
    assert stored is not None
    assert json.loads(stored) == json.loads(heard[0]) == sent
    assert 0 < redis_client.pttl("{hotconfig}:health:instance:h:1:a") <= 5000
    score = redis_client.zscore("{hotconfig}:health:instances", "h:1:a")
    assert score == pytest.approx(sent["expires"], abs=0.001)
    # The server's clock, not the reporter's: within the test's own window, give or take.
    assert before - 1 <= sent["time"] <= time.time() + 1
    assert sent["expires"] == pytest.approx(sent["time"] + 5.0, abs=0.002)


def test_an_instance_behind_the_store_reports_how_long_its_oldest_missing_version_exists(
    redis_client: redis.Redis, store: ConfigStore
) -> None:
    store.set("a", 1)
    store.set("a", 2)
    time.sleep(0.2)
    store.set("a", 3)
    behind = send_report(redis_client, "h:1:behind", version=1)
    current = send_report(redis_client, "h:1:current", version=3)
    assert (behind["store_version"], current["store_version"]) == (3, 3)
    assert behind["lag"] >= 0.2  # version 2 has existed for at least that long
    assert current["lag"] == 0.0
    assert send_report(redis_client, "h:1:none", version=0)["lag"] >= 0.2


def test_leaving_removes_the_instance_at_once_and_still_tells_the_channel(
    redis_client: redis.Redis,
) -> None:
    send_report(redis_client, "h:1:a")
    send_report(redis_client, "h:1:b")
    left = send_report(redis_client, "h:1:a", event="leave")
    assert left["event"] == "leave"
    assert redis_client.get("{hotconfig}:health:instance:h:1:a") is None
    assert redis_client.zrange("{hotconfig}:health:instances", 0, -1) == [b"h:1:b"]
    assert [r["instance"] for r in live(redis_client)[2]] == ["h:1:b"]


def test_expired_registrations_are_left_out_and_pruned_by_the_next_report(
    redis_client: redis.Redis,
) -> None:
    send_report(redis_client, "h:1:short", ttl=0.1)
    send_report(redis_client, "h:1:long", ttl=10)
    assert eventually(lambda: [r["instance"] for r in live(redis_client)[2]] == ["h:1:long"])
    assert redis_client.zscore("{hotconfig}:health:instances", "h:1:short") is not None
    send_report(redis_client, "h:1:long", ttl=10)  # each report sweeps the expired ones
    assert redis_client.zrange("{hotconfig}:health:instances", 0, -1) == [b"h:1:long"]


def test_the_live_script_answers_the_server_time_and_the_store_version(
    redis_client: redis.Redis, store: ConfigStore
) -> None:
    assert live(redis_client)[1:] == (0, [])
    store.set("k", 1)
    now, version, reports = live(redis_client)
    assert version == 1
    assert reports == []
    assert abs(now - time.time()) < 5


def test_a_registered_id_whose_report_is_gone_is_skipped(redis_client: redis.Redis) -> None:
    send_report(redis_client, "h:1:a")
    send_report(redis_client, "h:1:b")
    redis_client.delete("{hotconfig}:health:instance:h:1:a")
    assert [r["instance"] for r in live(redis_client)[2]] == ["h:1:b"]


def test_namespaces_keep_registries_of_their_own(redis_client: redis.Redis) -> None:
    send_report(redis_client, "h:1:a", namespace="billing")
    send_report(redis_client, "h:1:b", namespace="search")
    assert [r["instance"] for r in live(redis_client, "billing")[2]] == ["h:1:a"]
    assert [r["instance"] for r in live(redis_client, "search")[2]] == ["h:1:b"]


def test_a_report_read_back_and_written_as_json_is_the_same_report(
    redis_client: redis.Redis,
) -> None:
    rejection = {"key": "limit", "version": 2, "reason": "invalid_value: not an int"}
    sent = send_report(redis_client, "h:1:a", version=1, rejections=[rejection])
    report = Report.from_json(json.dumps(sent))
    assert report.rejections == (Rejection("limit", 2, "invalid_value: not an int"),)
    assert report.scopes == ("global",)
    assert Report.from_json(json.dumps(report.to_dict())) == report
    assert report.rejection_of(2) == report.rejections[0]
    assert report.rejection_of(1) is None
    named = send_report(redis_client, "h:1:b", connection=9223372036854775807)
    assert Report.from_json(json.dumps(named)).connection == 2**63 - 1
    assert report.connection is None  # not told: only the expiry tells it died


def test_a_signed_report_verifies_with_the_fields_the_server_added(
    redis_client: redis.Redis,
) -> None:
    ring = KeyRing({"k1": b"0123456789abcdef0123456789abcdef"})
    sent = send_report(redis_client, "h:1:a", version=3, connection=12, ring=ring)
    assert set(sent) >= SERVER_FIELDS  # added after the reporter signed
    channel = channel_for("hotconfig")
    assert check_report(sent, ring, channel) is None
    assert Report.from_json(json.dumps(sent), ring, channel).connection == 12
    for forged in ({**sent, "version": 4}, {**sent, "connection": 13}, {**sent, "new": 1}):
        assert check_report(forged, ring, channel) is Verdict.BAD_SIGNATURE
    unsigned = {k: v for k, v in sent.items() if k != "sig"}
    assert check_report(unsigned, ring, channel) is Verdict.UNSIGNED
    with pytest.raises(InvalidMessageError) as refused:
        Report.from_json(json.dumps(unsigned), ring, channel)
    assert refused.value.reason is RejectReason.UNSIGNED
    # What the server adds is not signed: a copy with another expiry still verifies.
    assert check_report({**sent, "expires": 0.0, "lag": 99.0}, ring, channel) is None


def test_a_report_with_only_an_instance_takes_defaults_for_the_rest() -> None:
    report = Report.from_json('{"instance": "h:1:a"}')
    assert (report.service, report.pid, report.version, report.status, report.lag) == (
        None,
        0,
        0,
        "",
        0.0,
    )
    assert (report.counts, report.rejections, report.scopes) == ({}, (), ())


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"service": "no instance"}',
        '{"instance": 7}',
        '{"instance": "a", "pid": "not a number"}',
        '{"instance": "a", "counts": [1]}',
        '{"instance": "a", "rejections": [5]}',
        '{"instance": "a", "connection": "12"}',  # CLIENT LIST ID takes numbers only
        '{"instance": "a", "connection": 0}',
        '{"instance": "a", "connection": true}',
        '{"instance": "a", "connection": 9223372036854775808}',
    ],
)
def test_anything_that_is_not_a_report_is_a_value_error(raw: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each raw input fails its own way
        Report.from_json(raw)


def test_the_counts_a_report_carries_are_the_client_s_stats() -> None:
    assert COUNTS == ("received", "applied", "rejected", "resyncs", "reconnects")


def test_a_rejection_is_described_without_the_value_it_refused() -> None:
    error = InvalidValueError("limit", "Input should be a valid integer (input 'hunter2')")
    assert describe("invalid_value", error) == "invalid_value: Input should be a valid integer"
    message = InvalidMessageError(RejectReason.OVERSIZE, "the message is 2 MB")
    assert describe("invalid_message", message) == "invalid_message: the message is 2 MB"
    assert describe("bad_signature", RuntimeError("secret inside")) == "bad_signature"


def test_a_long_reason_is_cut_to_a_bounded_length() -> None:
    error = InvalidValueError("limit", "x" * 1000)
    described = describe("invalid_value", error)
    assert len(described) == 200
    assert described.endswith("...")
