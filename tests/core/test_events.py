"""What the bridge hands a browser (hotconfig.bridge._events): an event packed as bytes while it
waits in an outbox comes back as it went in, and the bridge's counters add up across threads."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest
import redis

from hotconfig.bridge import Bridge, _events
from hotconfig.bridge._events import (
    _FINAL_ENDING,
    Event,
    EventKind,
    Tally,
    _pack,
    _unpack,
)
from hotconfig.bridge._outbox import Ending
from hotconfig.testing import EmbeddedServer
from tests.bridging import run, subscribed


@pytest.mark.parametrize("kind", list(EventKind))
@pytest.mark.parametrize(
    ("channel", "key", "event_id"),
    [
        ("orders:eu", "", ""),
        ("dashboard:refresh:d1", '["dashboard:refresh:d1","w-1"]', ""),
        ("ai:stream:s", "", "0f3a:17"),
        ("canal:é:日本", '["canal:é:日本","ключ"]', "e:1"),
    ],
)
def test_an_event_comes_back_from_its_packed_bytes_as_it_went_in(
    kind: EventKind, channel: str, key: str, event_id: str
) -> None:
    data = '{"token": "Revenue", "index": 0}\nline two\x00with a NUL'
    event = _unpack(_pack(kind, channel, data.encode(), key, event_id))
    assert event == Event(kind, channel, data, key or None, False, event_id or None)


def test_a_payload_full_of_separators_is_kept_whole() -> None:
    data = b"\x00\x00m\x00g\x00"  # NULs in the payload, after the three separators
    event = _unpack(_pack(EventKind.MESSAGE, "c", data, "k", "1:1"))
    assert (event.channel, event.key, event.id, event.data) == ("c", "k", "1:1", data.decode())


def test_a_payload_that_is_not_utf8_arrives_with_replacement_characters() -> None:
    event = _unpack(_pack(EventKind.MESSAGE, "bin", b"ok \xff\xfe end"))
    assert event.data == "ok \ufffd\ufffd end"


def test_an_empty_payload_is_an_empty_message() -> None:
    assert _unpack(_pack(EventKind.MESSAGE, "c", b"")) == Event(EventKind.MESSAGE, "c", "")


def test_the_packed_size_is_what_the_outbox_counts_against_its_bound() -> None:
    # One tag byte, the channel's length and the channel, the key, the id, two NULs and the
    # payload: nothing more.
    packed = _pack(EventKind.GAP, "ai:stream:s", b"12345", "k", "e")
    assert len(packed) == 1 + 4 + len("ai:stream:s") + 1 + 1 + 2 + 5


def test_only_idle_and_recovery_events_end_a_stream_with_a_reason_of_their_own() -> None:
    assert _FINAL_ENDING == {EventKind.IDLE: Ending.IDLE, EventKind.RECOVERY: Ending.SHUTDOWN}


def test_a_channel_name_with_a_nul_byte_survives_packing() -> None:
    event = _unpack(_pack(EventKind.MESSAGE, "orders:a\x00b", b'{"x": 1}'))
    assert (event.channel, event.data, event.key) == ("orders:a\x00b", '{"x": 1}', None)


def test_a_pattern_subscriber_gets_a_nul_channel_s_message_unchanged(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    async def main(bridge: Bridge) -> Event:
        subscription = await subscribed(bridge.subscribe("orders:*", pattern=True))
        redis_client.publish("orders:a\x00b", '{"x": 1}')
        return await anext(subscription)

    with Bridge(server.url) as bridge:
        event = run(lambda: main(bridge))
    assert (event.channel, event.data) == ("orders:a\x00b", '{"x": 1}')


def test_the_tally_starts_at_zero_for_every_counter_the_stats_name() -> None:
    counts = Tally().snapshot()
    assert set(counts) == {
        *("messages", "delivered", "dropped_slow", "gaps", "out_of_order", "done", "idle"),
        *("replayed", "unrecovered", "replay_errors", "stray", "unparsed"),
    }
    assert set(counts.values()) == {0}


def test_a_tally_snapshot_is_a_copy_that_later_counts_do_not_change() -> None:
    tally = Tally()
    tally.add("gaps", 3)
    before = tally.snapshot()
    tally.add("gaps")
    assert (before["gaps"], tally.snapshot()["gaps"]) == (3, 4)


def test_an_unknown_counter_is_refused() -> None:
    with pytest.raises(KeyError):
        Tally().add("mesages")


def test_counts_from_many_threads_at_once_are_all_kept() -> None:
    tally = Tally()
    start = threading.Barrier(8)

    def count() -> None:
        start.wait()
        for _ in range(5_000):
            tally.add("delivered")
            tally.add("messages", 2)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = tally.snapshot()
    assert (counts["delivered"], counts["messages"]) == (40_000, 80_000)


def test_counts_from_an_event_loop_and_a_thread_are_kept_together() -> None:
    tally = Tally()

    def count() -> None:
        for _ in range(1000):
            tally.add("replayed")

    async def main() -> None:
        worker = asyncio.to_thread(count)
        for _ in range(1000):
            tally.add("replayed")
        await worker

    asyncio.run(main())
    assert tally.snapshot()["replayed"] == 2000


def test_a_kind_of_warning_is_logged_once_then_quietly_and_summed_up_later(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(_events, "time", SimpleNamespace(monotonic=lambda: now[0]))
    tally = Tally()
    with caplog.at_level("DEBUG", logger="hotconfig.bridge"):
        for n in range(50):  # a flood: one line at WARNING, the rest at DEBUG
            tally.warn("stray", "dropped %d", n)
        tally.warn("unparsed", "another kind")  # each kind has its own quiet time
        now[0] += 10.0
        tally.warn("stray", "dropped %d", 50)
    loud = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert loud == [
        "dropped 0",
        "another kind",
        "dropped 50 (and 49 more since the last such warning)",
    ]
    assert sum(r.levelname == "DEBUG" for r in caplog.records) == 49
