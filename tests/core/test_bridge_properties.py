"""Hostile input to the channel bridge, property-based: what a browser and a publisher send.

The bridge's input surfaces are the ``Last-Event-ID`` a browser sends (a header or a query
parameter), the channel name in its URL, and whatever anyone who can PUBLISH puts on a
channel: replay envelopes copied or forged, and JSON beyond the wire's limits. Each is either
refused with a :class:`ValueError` (an adapter's 400) or read as something the bridge can
hold; never another exception, a loop or an id that breaks the event stream. The last
property publishes hostile envelopes on a real server while a browser follows the channel:
the genuine messages still arrive, each once and in order, without a storm of history reads.

Every property runs under the profile tests/hostile.py selects: bounded in ``make test``, long
in ``make fuzz``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any, Final

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from hotconfig.bridge import (
    Bridge,
    Delivery,
    Ephemeral,
    Event,
    EventKind,
    Position,
    Replayable,
    ReplayPublisher,
    Sequenced,
)
from hotconfig.bridge._classes import MAX_CHANNEL_BYTES, check_channel
from hotconfig.bridge._events import Tally
from hotconfig.bridge._history import MAX_OFFSET, unwrap
from hotconfig.bridge._incoming import read
from hotconfig.bridge.serving import check_request, frame
from hotconfig.testing import EmbeddedServer
from tests.hostile import PROFILE, PROFILE_NAME, hostile_payloads

CLASSES: Final[dict[str, Delivery]] = {"chat:*": Replayable()}
# Characters that end or corrupt a line of the event stream, digits int() reads that are not
# ASCII, letters that are not ASCII, and text direction marks.
_ODD: Final = ["\x00", "\r", "\n", "\x1b", "\x7f", "\u0661", "\u00b2", "\u00e9", "\u202e", " "]
_chars: Final = st.one_of(st.characters(codec=None), st.sampled_from(_ODD))
_offsets: Final = st.one_of(
    st.integers(0, 20),
    st.sampled_from([MAX_OFFSET - 1, MAX_OFFSET, MAX_OFFSET + 1, 2**64 - 1, 2**64, 10**30]),
    st.integers(min_value=0),
)
_epochs: Final = st.one_of(
    st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    st.text("abcXYZ019", max_size=70),  # every length up to past the limit
    st.text(_chars, max_size=8),
)


@st.composite
def event_ids(draw: st.DrawFn) -> str:
    """What a browser may send as its position: mostly id-shaped, often wrong."""
    kind = draw(st.sampled_from([0] * 6 + [1, 2]))
    if kind == 1:
        return draw(st.text(_chars, max_size=120))
    if kind == 2:
        return draw(st.sampled_from(["", ":", ":0", "0", "a" * 300 + ":1", ":" * 90]))
    text = f"{draw(_epochs)}:{draw(_offsets)}"
    if draw(st.booleans()):  # a stray character somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(_chars) + text[at:]
    return text


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """What anyone who can PUBLISH may put on a replayable channel."""
    message = draw(st.binary(max_size=40))
    kind = draw(st.sampled_from([0] * 6 + [1, 2, 3]))
    if kind == 1:
        return draw(st.binary(max_size=120))
    if kind == 2:
        return b"\x00replay:" + draw(st.binary(max_size=120))
    header = draw(event_ids()).encode("utf-8", "surrogatepass")
    if kind == 3:
        return b"\x00replay:" + header  # no newline: not a whole envelope
    return b"\x00replay:" + header + b"\n" + message


channel_names: Final = st.one_of(
    st.text(_chars, max_size=60),
    st.text("ai:stream-é日", min_size=MAX_CHANNEL_BYTES // 3 - 1, max_size=MAX_CHANNEL_BYTES + 2),
    st.sampled_from([MAX_CHANNEL_BYTES - 1, MAX_CHANNEL_BYTES, MAX_CHANNEL_BYTES + 1]).map(
        lambda n: "c" * n
    ),
)


def _a_position_the_stream_can_carry(position: Position) -> None:
    assert 0 <= position.offset <= MAX_OFFSET
    assert position.epoch.isascii()
    assert position.epoch == "" or position.epoch.isalnum()
    assert position.epoch or position.offset == 0
    assert Position.parse(position.id) == position
    assert frame("x", id=position.id).startswith(f"id: {position.id}\n".encode())


@PROFILE
@given(event_ids())
def test_an_event_id_is_a_position_the_stream_can_carry_or_a_value_error(event_id: str) -> None:
    try:
        position = Position.parse(event_id)
    except ValueError as refused:
        said = str(refused)
    else:
        _a_position_the_stream_can_carry(position)
        return
    assert len(said) < 300  # a long header is never echoed whole


@PROFILE
@given(envelopes())
def test_an_envelope_gives_a_position_a_publisher_gives_or_is_no_envelope(data: bytes) -> None:
    wrapped = unwrap(data)
    if wrapped is None:
        return
    position, message = wrapped
    _a_position_the_stream_can_carry(position)
    assert position.epoch
    assert position.offset >= 1
    assert data.endswith(b"\n" + message)


@PROFILE
@given(channel_names)
def test_a_channel_name_is_kept_as_it_is_or_refused_with_a_value_error(name: str) -> None:
    try:
        kept = check_channel(name)
    except ValueError as refused:
        said = str(refused)
    else:
        assert kept == name
        assert 1 <= len(name.encode()) <= MAX_CHANNEL_BYTES
        assert not any(ord(c) < 0x20 or c == "\x7f" for c in name)
        return
    assert len(said) < 300  # a long name is never echoed whole


@pytest.fixture(scope="module")
def unconnected() -> Iterator[Bridge]:
    """A bridge that never connects: checking a request needs none."""
    with Bridge("redis://127.0.0.1:9/0", classes=CLASSES) as bridge:
        yield bridge


@PROFILE
@given(
    st.one_of(channel_names, st.just("chat:room")),
    st.dictionaries(st.sampled_from(["Last-Event-ID", "last-event-id"]), event_ids(), max_size=1),
    st.dictionaries(st.just("last_event_id"), event_ids(), max_size=1),
)
def test_a_browser_s_request_is_answered_or_refused_with_a_value_error(
    unconnected: Bridge, channel: str, headers: dict[str, str], query: dict[str, str]
) -> None:
    try:
        resume = check_request(unconnected, channel, headers, query)
    except ValueError:
        return
    assert check_channel(channel) == channel
    if resume is not None and channel.startswith("chat:"):
        _a_position_the_stream_can_carry(Position.parse(resume))


@PROFILE
@given(st.one_of(hostile_payloads(), envelopes()), st.sampled_from(["ai:s", "dash:d", "chat:r"]))
def test_a_published_payload_is_read_once_into_what_every_browser_gets(
    payload: bytes | str, channel: str
) -> None:
    classes: dict[str, Delivery] = {"ai:*": Sequenced(), "dash:*": Ephemeral(), **CLASSES}
    data = payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogatepass")
    message = read(classes, channel, data, Tally())
    assert message.ordinal is None or type(message.ordinal) is int
    assert message.key is None or "\x00" not in message.key
    if message.at is None:
        assert message.data == data  # as it came
    else:
        _a_position_the_stream_can_carry(message.at)


# -- on a real server: hostile envelopes while a browser follows the channel --------------------

CHANNEL: Final = "chat:fuzz"
BATCHES: Final = 25 if PROFILE_NAME == "ci" else 2_000


class Browser:
    """A subscription on an event loop of its own thread, read from the test's thread."""

    def __init__(self, bridge: Bridge) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.subscription = self._call(self._subscribe(bridge))

    async def _subscribe(self, bridge: Bridge) -> Any:
        subscription = bridge.subscribe(CHANNEL)
        await asyncio.wait_for(subscription.subscribed.wait(), 5)
        return subscription

    def _call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def next(self) -> Event:
        result: Event = self._call(anext(self.subscription))
        return result

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.subscription.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def browser(server: EmbeddedServer) -> Iterator[Browser]:
    with Bridge(server.url, classes=CLASSES) as bridge:
        reader = Browser(bridge)
        yield reader
        reader.close()


def _history_reads(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "evalsha"))


def test_hostile_envelopes_never_displace_the_genuine_messages_nor_loop(
    server: EmbeddedServer, browser: Browser, redis_client: redis.Redis
) -> None:
    publisher = ReplayPublisher(server.url)
    epoch = Position.parse(publisher.publish(CHANNEL, "genuine 0")).epoch
    assert browser.next().data == "genuine 0"
    expected = [2]

    # Forged in the channel's own epoch too, but never at the offset the publisher gives next
    # (that one a copied envelope may take first: anyone who can PUBLISH can forge a message).
    forged = st.builds(
        lambda offset, message: b"\x00replay:%s:%d\n%s" % (epoch.encode(), offset, message),
        st.integers(1000, MAX_OFFSET),
        st.binary(max_size=20),
    )

    @settings(PROFILE, max_examples=BATCHES)
    @given(st.lists(st.one_of(envelopes(), forged), min_size=1, max_size=4))
    def publish(batch: list[bytes]) -> None:
        before, started = _history_reads(redis_client), time.monotonic()
        with redis_client.pipeline(transaction=False) as pipe:
            for data in batch:
                pipe.publish(CHANNEL, data)
            pipe.execute()
        sent = publisher.publish(CHANNEL, f"genuine {expected[0] - 1}")
        while True:
            event = browser.next()
            if event.id is not None and event.kind is EventKind.MESSAGE:
                break
            # Before it: what came without an envelope, as it came, or a recovery event.
            assert event.kind in (EventKind.MESSAGE, EventKind.RECOVERY), event
            if event.kind is EventKind.RECOVERY:
                assert json.loads(event.data)["reason"] == "unknown"
        assert (event.data, event.id) == (f"genuine {expected[0] - 1}", sent)
        expected[0] += 1
        # One read for a gap, then at most two a second; the publisher's own EVAL besides.
        elapsed = time.monotonic() - started
        assert _history_reads(redis_client) - before <= 3 + 3 * elapsed

    try:
        publish()
    finally:
        publisher.close()
