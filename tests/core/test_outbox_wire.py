"""The SSE wire format and the bounded outbox each connection reads from (bridge/_outbox.py)."""

from __future__ import annotations

import asyncio

import pytest

from hotconfig.bridge.serving import Ending, Outbox, OutboxEnded, comment, frame


def test_a_frame_carries_id_event_retry_and_every_line_of_data() -> None:
    assert frame('{"a": 1}', event="change", id="7", retry=500) == (
        b'id: 7\nevent: change\nretry: 500\ndata: {"a": 1}\n\n'
    )
    # Any line break in the data becomes a data line of its own: no field can be smuggled in.
    assert frame("one\r\ntwo\rthree\nid: 99") == (
        b"data: one\ndata: two\ndata: three\ndata: id: 99\n\n"
    )
    assert comment("keep-alive") == b": keep-alive\n\n"


@pytest.mark.parametrize("field", ["id", "event"])
def test_an_id_or_event_name_with_a_line_break_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="one line"):
        frame("x", **{field: "a\nb"})  # type: ignore[arg-type]


def test_the_latest_frame_of_a_key_replaces_the_one_waiting() -> None:
    async def scenario() -> bytes:
        outbox = Outbox(max_bytes=1000)
        outbox.put(b"a1;", key="a")
        outbox.put(b"b1;", key="b")
        outbox.put(b"a2;", key="a")  # a1 never leaves; a2 goes after b1, keeping id order
        outbox.put(b"note;")
        return await outbox.take(timeout=0)

    assert asyncio.run(scenario()) == b"b1;a2;note;"


def test_a_reset_supersedes_everything_waiting() -> None:
    async def scenario() -> bytes:
        outbox = Outbox(max_bytes=1000)
        outbox.put(b"a1;", key="a")
        outbox.put(b"reset;", supersede=True)
        return await outbox.take(timeout=0)

    assert asyncio.run(scenario()) == b"reset;"


def test_an_outbox_over_its_bound_ends_and_drops_what_waits() -> None:
    async def scenario() -> tuple[bool, bool, Ending | None, int]:
        outbox = Outbox(max_bytes=10)
        fits = outbox.put(b"x" * 10, key="a")
        over = outbox.put(b"y", key="b")
        with pytest.raises(OutboxEnded) as ended:
            await outbox.take(timeout=0)
        assert ended.value.ending is Ending.OVERFLOW
        return fits, over, outbox.ended, outbox.pending_bytes

    assert asyncio.run(scenario()) == (True, False, Ending.OVERFLOW, 0)


def test_an_ended_outbox_takes_nothing_more_and_keeps_the_first_reason() -> None:
    async def scenario() -> tuple[bool, Ending]:
        outbox = Outbox()
        outbox.end(Ending.SHUTDOWN)
        outbox.end(Ending.CLIENT_GONE)
        return outbox.put(b"late"), await outbox.wait_ended()

    assert asyncio.run(scenario()) == (False, Ending.SHUTDOWN)


def test_an_idle_take_returns_nothing_so_the_writer_sends_a_keep_alive() -> None:
    async def scenario() -> bytes:
        return await Outbox().take(timeout=0)

    assert asyncio.run(scenario()) == b""


def test_a_keepalive_wait_answers_empty_then_the_next_frame_arrives_as_usual() -> None:
    async def scenario() -> list[bytes]:
        outbox = Outbox(max_bytes=1000)
        waiting = asyncio.ensure_future(outbox.take(timeout=3600))
        await asyncio.sleep(0)
        outbox.put(b"a;")
        taken = [await waiting]
        # The timer still pending for the hour-long wait must not hold back a shorter one.
        async with asyncio.timeout(30):
            taken.append(await outbox.take(timeout=0.05))
        later = asyncio.ensure_future(outbox.take(timeout=3600))
        await asyncio.sleep(0.1)  # longer than the last keep-alive: a stale wake-up is no frame
        outbox.put(b"b;")
        taken.append(await later)
        return taken

    assert asyncio.run(scenario()) == [b"a;", b"", b"b;"]


def test_ending_an_outbox_wakes_a_taker_waiting_for_a_keepalive() -> None:
    async def scenario() -> Ending:
        outbox = Outbox(max_bytes=1000)
        waiting = asyncio.ensure_future(outbox.take(timeout=3600))
        await asyncio.sleep(0)
        outbox.end(Ending.SHUTDOWN)
        with pytest.raises(OutboxEnded) as ended:
            await waiting
        return ended.value.ending

    assert asyncio.run(scenario()) is Ending.SHUTDOWN
