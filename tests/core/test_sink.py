"""The sink on its own: what one apply tells, in which order, and to whom.

A :class:`Sink` over a :class:`ConfigState` needs no network: the listener's part (reading the
channel, parsing) is tested with the client; here messages and store snapshots are handed in
as the listener hands them.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from hotconfig import Change, InvalidValueError, RejectReason, Status, signals
from hotconfig._config import sink as sink_module
from hotconfig._config.lastgood import LastKnownGood
from hotconfig._config.schema import Schema
from hotconfig._config.sink import Sink
from hotconfig._config.snapshot import Snapshot
from hotconfig._config.state import ConfigState, Staged
from hotconfig._config.wire import Entry, Message
from hotconfig._redis.keyspace import StoreSnapshot


class Settings(BaseModel):
    limit: int = 10


class Slot:
    """The client's read slot: what readers see, swapped in by the sink."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.swaps = 0

    def __call__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.swaps += 1


def make_sink(
    slot: Slot,
    lastgood: LastKnownGood | None = None,
    sender: object | None = None,
    serving: bool = True,
) -> Sink:
    """A sink past its client's start() (``serving``): every change is told."""
    sink = Sink(ConfigState(Schema(Settings), ["global"]), slot, sender or object(), lastgood)
    if serving:
        sink.begin_serving()
    return sink


def versioned(version: int, key: str, value: object) -> Message:
    return Message((Entry(key, value),), version, "e1", f"d{version - 1}", f"d{version}")


def at(version: int, **values: Any) -> StoreSnapshot:
    return StoreSnapshot("e1", version, {"global": values}, f"d{version}")


def test_the_first_snapshot_is_in_the_read_slot_before_anything_is_applied() -> None:
    slot = Slot()
    make_sink(slot)
    assert slot.snapshot is not None
    assert (slot.snapshot.version, slot.snapshot["limit"]) == (0, 10)


def test_a_receiver_reads_the_new_snapshot_and_waiters_wake_after_every_receiver() -> None:
    slot = Slot()
    sink = make_sink(slot)
    sink.resync(at(1))
    seen: list[tuple[int, bool]] = []
    release = threading.Event()

    def receiver(change: Change) -> None:
        assert slot.snapshot is not None
        seen.append((slot.snapshot["limit"], sink.wait_for_version(2, timeout=0)))
        release.wait(timeout=10)

    sink.receivers.add("limit", receiver, None)
    assert sink.stage(versioned(2, "limit", 20)) is Staged.QUEUED
    applying = threading.Thread(target=sink.flush)
    applying.start()
    try:
        assert sink.wait_for_version(2, timeout=0.2) is False  # the receiver is still running
    finally:
        release.set()
        applying.join(timeout=10)
    assert sink.wait_for_version(2, timeout=10)
    assert seen == [(20, False)]
    assert sink.handled() == 2


def test_a_flush_with_nothing_staged_swaps_nothing_and_tells_nobody() -> None:
    slot = Slot()
    sink = make_sink(slot)
    heard: list[Change] = []
    sink.receivers.add("*", heard.append, None)
    sink.flush()
    sink.flush()
    assert (slot.swaps, heard, sink.counters.applied) == (1, [], 0)


def test_a_duplicate_is_counted_as_skipped_and_applies_nothing() -> None:
    slot = Slot()
    sink = make_sink(slot)
    sink.resync(at(3, limit=3))
    swaps = slot.swaps
    assert sink.stage(versioned(3, "limit", 99)) is Staged.DUPLICATE
    sink.flush()
    assert sink.counters.skipped == 1
    assert slot.swaps == swaps
    assert slot.snapshot is not None
    assert slot.snapshot["limit"] == 3


def test_a_resync_counts_records_the_store_version_and_then_applies_raw_messages() -> None:
    slot = Slot()
    sink = make_sink(slot)
    sink.stage(Message((Entry("limit", 7),)))  # read before the store was loaded
    sink.resync(at(4, limit=4))
    assert (sink.counters.resyncs, sink.store_version) == (1, 4)
    assert slot.snapshot is not None
    assert slot.snapshot["limit"] == 7
    assert sink.counters.applied == 1


def test_a_refused_value_is_counted_signalled_and_the_old_value_stays() -> None:
    slot = Slot()
    sink = make_sink(slot)
    sink.resync(at(1, limit=1))
    heard: list[dict[str, Any]] = []

    def on_rejected(sender: object, **kwargs: Any) -> None:
        heard.append(kwargs)

    signals.config_rejected.connect(on_rejected, weak=False)
    try:
        sink.stage(versioned(2, "limit", "many"))
        sink.flush()
    finally:
        signals.config_rejected.disconnect(on_rejected)
    assert sink.counters.rejected == 1
    assert (sink.counters.last_rejection or "").startswith("invalid_value: invalid value for")
    assert [(h["reason"], h["key"], h["version"]) for h in heard] == [
        (RejectReason.INVALID_VALUE, "limit", 2)
    ]
    assert isinstance(heard[0]["error"], InvalidValueError)
    assert slot.snapshot is not None
    assert (slot.snapshot.version, slot.snapshot["limit"]) == (2, 1)
    assert sink.handled() == 2  # consumed: nobody waits for it forever


def test_a_status_move_is_signalled_once_and_closed_is_final() -> None:
    client = object()
    sink = make_sink(Slot(), sender=client)
    moves: list[tuple[Status, Status]] = []

    def on_status(sender: object, *, old: Status, new: Status) -> None:
        moves.append((old, new))

    signals.status_changed.connect(on_status, sender=client, weak=False)
    try:
        sink.set_status(Status.LIVE)
        sink.set_status(Status.LIVE)
        sink.set_status(Status.CLOSED)
        sink.set_status(Status.LIVE)
    finally:
        signals.status_changed.disconnect(on_status)
    assert moves == [(Status.STARTING, Status.LIVE), (Status.LIVE, Status.CLOSED)]
    assert sink.status is Status.CLOSED


def test_pins_apply_and_signal_but_never_reach_the_cache_file(tmp_path: Path) -> None:
    cache = LastKnownGood(tmp_path / "config.json")
    slot = Slot()
    sink = make_sink(slot, cache)
    heard: list[Change] = []
    sink.receivers.add("limit", heard.append, None)
    sink.pin({"limit": 42})
    assert slot.snapshot is not None
    assert slot.snapshot["limit"] == 42
    assert [(c.new, c.scope) for c in heard] == [(42, "<pinned>")]
    assert sink.pinned() == {"limit": 42}
    assert not cache.path.exists()
    with pytest.raises(InvalidValueError):
        sink.pin({"limit": "not a number"})
    assert slot.snapshot["limit"] == 42
    sink.pin({}, unset=["limit"])
    assert slot.snapshot["limit"] == 10


def test_an_applied_change_is_saved_and_the_next_sink_starts_from_it(tmp_path: Path) -> None:
    cache = LastKnownGood(tmp_path / "config.json")
    sink = make_sink(Slot(), cache)
    sink.resync(at(1, limit=1))
    sink.stage(versioned(2, "limit", 2))
    sink.flush()
    slot = Slot()
    make_sink(slot, cache)
    assert slot.snapshot is not None
    assert (slot.snapshot.version, slot.snapshot["limit"]) == (2, 2)


def test_a_cache_file_the_state_cannot_adopt_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = LastKnownGood(tmp_path / "config.json")
    cache.save(StoreSnapshot("e1", 5, {"global": ["not", "a", "mapping"]}, "d5"))  # type: ignore[dict-item]
    slot = Slot()
    with caplog.at_level(logging.WARNING, logger="hotconfig.sink"):
        make_sink(slot, cache)
    assert slot.snapshot is not None
    assert (slot.snapshot.version, slot.snapshot["limit"]) == (0, 10)
    assert "ignoring the cache file" in caplog.text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_flood_of_one_reason_is_one_warning_then_a_summary(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    monkeypatch.setattr(sink_module, "time", clock)
    sink = make_sink(Slot())
    with caplog.at_level(logging.DEBUG, logger="hotconfig.sink"):
        for _ in range(4):
            sink.reject(RejectReason.INVALID_JSON, ValueError("junk"))
        sink.reject(RejectReason.OVERSIZE, ValueError("big"))  # another reason: its own warning
        clock.now += 11
        sink.reject(RejectReason.INVALID_JSON, ValueError("junk"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "rejected a change (invalid_json): junk",
        "rejected a change (oversize): big",
        "rejected a change (invalid_json): junk (3 more invalid_json rejections since the last"
        " report)",
    ]
    assert sink.counters.rejected == 6  # every one is counted, logged loudly or not


def test_what_loads_before_the_client_serves_is_the_baseline_told_to_no_receiver() -> None:
    slot = Slot()
    sink = make_sink(slot, serving=False)
    heard: list[Change] = []
    sink.receivers.add("*", heard.append, None)
    sink.resync(StoreSnapshot("e1", 1, {"global": {"limit": 5}}, "d1"))
    assert slot.snapshot is not None
    assert (slot.snapshot.get("limit"), heard) == (5, [])  # swapped in, told to nobody
    sink.begin_serving()
    sink.resync(StoreSnapshot("e1", 2, {"global": {"limit": 6}}, "d2"))
    assert [(c.key, c.old, c.new) for c in heard] == [("limit", 5, 6)]
