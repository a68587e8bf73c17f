"""Replayable channels' histories on a real server: what ReplayPublisher writes and sends, how
an event id is read, and what the bridge's reader of histories gets back.

Resuming a browser through the bridge is test_recovery.py; this is the history underneath.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from hotconfig import ClientClosedError
from hotconfig._redis.connection import Target
from hotconfig.bridge import Position, Replayable, ReplayPublisher
from hotconfig.bridge._history import MAX_OFFSET, History, Page, history_keys, unwrap
from hotconfig.testing import EmbeddedServer
from tests.waiting import eventually


@pytest.fixture
def publisher(server: EmbeddedServer) -> Iterator[ReplayPublisher]:
    with ReplayPublisher(server.url, history=Replayable(maxlen=100, ttl=None)) as publisher:
        yield publisher


@pytest.fixture
def history(server: EmbeddedServer) -> Iterator[History]:
    history = History(Target(server.url))
    yield history
    history.close()


def test_each_channel_has_its_own_epoch_and_offsets(publisher: ReplayPublisher) -> None:
    a = [Position.parse(publisher.publish("chat:a", f"a{n}")) for n in range(3)]
    b = [Position.parse(publisher.publish("chat:b", f"b{n}")) for n in range(2)]
    assert [p.offset for p in a] == [1, 2, 3]
    assert [p.offset for p in b] == [1, 2]
    assert a[0].epoch != b[0].epoch
    assert {p.epoch for p in a} == {a[0].epoch}


def test_a_lost_history_starts_a_new_epoch_from_offset_one_without_the_old_entries(
    publisher: ReplayPublisher, redis_client: redis.Redis, history: History
) -> None:
    old = [Position.parse(publisher.publish("chat:a", f"m{n}")) for n in range(3)]
    meta, stream = history_keys("chat:a")
    redis_client.delete(meta)  # what a restart without persistence, or an expiry, leaves
    new = Position.parse(publisher.publish("chat:a", "after"))
    assert new.offset == 1
    assert new.epoch != old[0].epoch
    assert redis_client.xlen(stream) == 1
    assert history.read("chat:a", 0, 10) == Page(new.epoch, 1, [(1, b"after")])


def test_without_a_ttl_the_history_is_kept_until_trimmed_and_with_one_it_expires(
    server: EmbeddedServer, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    publisher.publish("chat:kept", "m")
    assert [redis_client.pttl(key) for key in history_keys("chat:kept")] == [-1, -1]
    with ReplayPublisher(server.url, history=Replayable(ttl=0.2)) as brief:
        brief.publish("chat:brief", "m")
    assert eventually(lambda: redis_client.exists(*history_keys("chat:brief")) == 0)


def test_the_channel_carries_an_envelope_the_message_byte_for_byte_inside(
    publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    message = b"line one\nline two\x00\xff and \x00replay:x:1\n"
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("chat:raw")
    try:
        event_id = publisher.publish("chat:raw", message)
        received: list[Any] = []

        def arrived() -> bool:
            got = pubsub.get_message(timeout=0.1)
            if got is not None:
                received.append(got["data"])
            return bool(received)

        assert eventually(arrived)
    finally:
        pubsub.close()
    data = received[0]
    assert data.startswith(b"\x00replay:" + event_id.encode() + b"\n")
    assert unwrap(data) == (Position.parse(event_id), message)


@pytest.mark.parametrize(
    "data",
    [
        b"plain message",
        b"\x00replay:abc:1",  # no newline: not a whole envelope
        b"\x00replay:abc:x\nmessage",
        b"\x00replay:a-b:1\nmessage",
        b"\x00replay:\xff:1\nmessage",
        b"\x00REPLAY:abc:1\nmessage",
        # Ids no publisher gives: an offset out of range, 0, none, no epoch, digits of another
        # script, a header longer than any id.
        b"\x00replay:abc:18446744073709551615\nmessage",
        b"\x00replay:abc:9223372036854775808\nmessage",
        b"\x00replay:abc:0\nmessage",
        b"\x00replay::0\nmessage",
        b"\x00replay:abc:\xd9\xa1\nmessage",
        b"\x00replay:" + b"a" * 100 + b":1\nmessage",
    ],
)
def test_anything_else_on_the_channel_is_no_envelope(data: bytes) -> None:
    assert unwrap(data) is None


def test_an_envelope_carries_any_offset_a_history_can_give() -> None:
    data = b"\x00replay:abc:%d\n\x00replay:x:1\nline" % MAX_OFFSET
    assert unwrap(data) == (Position("abc", MAX_OFFSET), b"\x00replay:x:1\nline")


@pytest.mark.parametrize(
    ("event_id", "position"),
    [
        ("abc123:7", Position("abc123", 7)),
        ("  abc:7\n", Position("abc", 7)),  # as a header may carry it
        (":0", Position("", 0)),  # before any history: matches whatever epoch comes
        ("abc:0", Position("abc", 0)),
        (f"{'e' * 64}:{MAX_OFFSET}", Position("e" * 64, MAX_OFFSET)),  # the longest there is
    ],
)
def test_an_event_id_names_an_epoch_and_an_offset(event_id: str, position: Position) -> None:
    assert Position.parse(event_id) == position
    assert Position.parse(position.id) == position


@pytest.mark.parametrize(
    ("event_id", "says"),
    [
        ("42", "expected '<epoch>:<offset>'"),
        ("abc:+1", "expected '<epoch>:<offset>'"),
        ("ab.c:1", "expected '<epoch>:<offset>'"),
        (":3", "without an epoch must have offset 0"),
        ("x" * 500, "longer than any event id"),
        ("abc:18446744073709551615", "out of range"),  # 2**64 - 1: not even a stream ID after it
        (f"abc:{MAX_OFFSET + 1}", "out of range"),
        ("abc:99999999999999999999", "out of range"),
        ("abc:\u0661\u0662", "expected '<epoch>:<offset>'"),  # Arabic-Indic digits
        ("abc:\u00b2", "expected '<epoch>:<offset>'"),  # a superscript two, which int() refuses
        ("\u00e9t\u00e9:1", "expected '<epoch>:<offset>'"),  # letters, not ASCII ones
        ("abc:1\x00", "expected '<epoch>:<offset>'"),
        ("abc\r:1", "expected '<epoch>:<offset>'"),
    ],
)
def test_anything_else_is_refused_with_what_an_event_id_looks_like(
    event_id: str, says: str
) -> None:
    with pytest.raises(ValueError, match=says) as refused:
        Position.parse(event_id)
    assert len(str(refused.value)) < 300  # a long header is not echoed whole


def test_the_reader_pages_through_what_is_stored_after_an_offset(
    publisher: ReplayPublisher, history: History
) -> None:
    ids = [Position.parse(publisher.publish("chat:a", f"m{n}")) for n in range(1, 6)]
    epoch = ids[0].epoch
    assert history.read("chat:a", 1, 2) == Page(epoch, 5, [(2, b"m2"), (3, b"m3")])
    assert history.read("chat:a", 3, 10) == Page(epoch, 5, [(4, b"m4"), (5, b"m5")])
    assert history.read("chat:a", 5, 10) == Page(epoch, 5, [])
    assert history.read("chat:a", 2, 0) == Page(epoch, 5, [])  # only where it is
    assert history.read("chat:never", 0, 10) == Page(None, 0, [])


def test_a_capped_history_keeps_the_newest_and_says_where_it_starts(
    server: EmbeddedServer, history: History
) -> None:
    with ReplayPublisher(server.url, history=Replayable(maxlen=5)) as publisher:
        for n in range(1, 501):
            publisher.publish("chat:capped", f"m{n}")
    page = history.read("chat:capped", 0, 1000)
    offsets = [offset for offset, _ in page.entries]
    assert page.top == 500
    assert 5 <= len(offsets) < 500  # trimmed (MAXLEN ~ keeps whole nodes)
    assert offsets == list(range(501 - len(offsets), 501))
    assert page.entries[-1] == (500, b"m500")


def test_a_closed_reader_refuses_to_read_and_a_reconnected_one_reads_on(
    publisher: ReplayPublisher, history: History
) -> None:
    epoch = Position.parse(publisher.publish("chat:a", "m1")).epoch
    assert history.read("chat:a", 0, 1).epoch == epoch
    history.reconnect()
    assert history.read("chat:a", 0, 1) == Page(epoch, 1, [(1, b"m1")])
    history.close()
    with pytest.raises(ClientClosedError, match="bridge is closed"):
        history.read("chat:a", 0, 1)


def test_history_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="maxlen must be positive"):
        Replayable(maxlen=0)
    for ttl in (0, -1.0):
        with pytest.raises(ValueError, match="ttl must be positive seconds or None"):
            Replayable(ttl=ttl)


def test_the_keys_of_a_history_share_the_channel_s_slot() -> None:
    for channel in ("chat:a", "ai:stream:sess-abc", "x"):
        meta, stream = history_keys(channel)
        assert key_slot(meta.encode()) == key_slot(stream.encode()) == key_slot(channel.encode())


@pytest.mark.parametrize(
    ("meta", "entry"),
    [
        ({"epoch": "bad\r\nepoch", "offset": "1"}, None),  # would end an SSE id: line
        ({"epoch": "abc", "offset": "-1"}, None),
        ({"epoch": "abc", "offset": "not a number"}, None),
        ({"epoch": "abc", "offset": "2"}, ("5-1", {"m": "not 0-<offset>"})),
        ({"epoch": "abc", "offset": "2"}, ("0-1", {"x": "no message field"})),
    ],
)
def test_keys_that_hold_something_else_than_a_history_are_a_value_error(
    redis_client: redis.Redis, history: History, meta: dict[str, str], entry: Any
) -> None:
    meta_key, stream_key = history_keys("chat:forged")
    for field, value in meta.items():
        redis_client.hset(meta_key, field, value)
    if entry is not None:
        redis_client.xadd(stream_key, entry[1], id=entry[0])
    with pytest.raises(ValueError, match="do not hold a history ReplayPublisher writes"):
        history.read("chat:forged", 0, 10)
