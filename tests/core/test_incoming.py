"""A message as the bridge reads it once for every browser (hotconfig.bridge._incoming): the
class of its channel, the JSON fields the class needs under the wire's limits, its envelope.

No network: :func:`read` is what the bridge's reader thread calls for each message; the
subscriptions that receive the result are test_delivery.py and test_recovery.py.
"""

from __future__ import annotations

import json

import pytest

from hotconfig.bridge import Delivery, Ephemeral, Position, Replayable, Sequenced
from hotconfig.bridge._events import Tally
from hotconfig.bridge._incoming import Incoming, read

SEQUENCED = Sequenced()
EPHEMERAL = Ephemeral("widgetId")
REPLAYABLE = Replayable()
CLASSES: dict[str, Delivery] = {"ai:*": SEQUENCED, "dash:*": EPHEMERAL, "chat:*": REPLAYABLE}


def test_a_channel_without_a_class_is_not_read_at_all() -> None:
    tally = Tally()
    data = b"[" * 100_000  # would be a RecursionError if anything decoded it
    assert read(CLASSES, "orders:eu", data, tally) == Incoming("orders:eu", data)
    assert tally.snapshot()["unparsed"] == 0


def test_a_sequenced_message_gives_its_index_and_whether_it_is_done() -> None:
    tally = Tally()
    token = read(CLASSES, "ai:s", b'{"token": "Rev", "index": 3}', tally)
    done = read(CLASSES, "ai:s", b'{"index": 4, "done": true}', tally)
    assert (token.delivery, token.ordinal, token.done) == (SEQUENCED, 3, False)
    assert (done.ordinal, done.done) == (4, True)
    assert tally.snapshot()["unparsed"] == 0


@pytest.mark.parametrize(
    ("data", "ordinal", "done"),
    [
        (b'{"index": true, "done": 1}', None, False),  # a bool is no index, 1 is not true
        (b'{"index": 1.0}', None, False),
        (b'{"index": "2"}', None, False),
        (b'{"index": 123456789012345678901234567890}', 123456789012345678901234567890, False),
    ],
)
def test_only_an_integer_index_and_a_done_that_is_exactly_true_count(
    data: bytes, ordinal: int | None, done: bool
) -> None:
    message = read(CLASSES, "ai:s", data, Tally())
    assert (message.ordinal, message.done) == (ordinal, done)


def test_an_ephemeral_message_gives_the_key_a_later_one_replaces_it_by() -> None:
    message = read(CLASSES, "dash:d", b'{"widgetId": "w\\u0000", "v": 1}', Tally())
    assert message.key == json.dumps(["dash:d", "w\x00"])
    assert "\x00" not in (message.key or "")  # the outbox's separator never appears raw
    assert read(CLASSES, "dash:d", b'{"widgetId": null}', Tally()).key is None


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000 + b"]" * 100_000,  # too deep for Python's decoder
        b'{"index": 0, "x": ' + b"[" * 65 + b"]" * 65 + b"}",  # too deep for the wire
        b'{"index": 0, "x": 1e999}',  # overflows a float
        b'{"index": 0, "x": NaN}',
        b'{"index": ' + b"9" * 5000 + b"}",  # more digits than Python reads
        b'{"index": 0, "x": "\\ud800"}',  # a lone surrogate
        b'{"index": 0, "x": "\xff"}',  # not UTF-8
        b'{"index": 0, "x": "' + b"x" * (1 << 20) + b'"}',  # over 1 MiB
        b"not json",
        b'["index", 0]',
    ],
)
def test_what_is_not_a_json_object_within_the_wire_s_limits_is_read_as_not_json(
    data: bytes,
) -> None:
    tally = Tally()
    for channel in ("ai:s", "dash:d"):
        message = read(CLASSES, channel, data, tally)
        assert (message.data, message.key, message.ordinal, message.done) == (
            data,
            None,
            None,
            False,
        )
    assert tally.snapshot()["unparsed"] == 2


def test_a_replayable_message_is_taken_out_of_its_envelope() -> None:
    message = read(CLASSES, "chat:r", b'\x00replay:abc:7\n{"text": 1}', Tally())
    assert (message.data, message.at) == (b'{"text": 1}', Position("abc", 7))
    raw = read(CLASSES, "chat:r", b"\x00replay:abc:99999999999999999999\nforged", Tally())
    assert (raw.data, raw.at) == (b"\x00replay:abc:99999999999999999999\nforged", None)
