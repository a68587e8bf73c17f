"""The bounded outbox of one connection (hotconfig.bridge._outbox): what waits is counted in
bytes, items with one key coalesce, going over the bound ends the outbox, and an ended outbox
wakes whoever waits on it. The SSE wire format's own tests are in
tests/core/test_outbox_wire.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from hotconfig.bridge._outbox import Ending, Outbox, OutboxEnded, comment, frame

T = TypeVar("T")


def on_a_loop(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario()`` on an event loop of its own, bounded in time."""

    async def bounded() -> T:
        async with asyncio.timeout(10):
            return await scenario()

    return asyncio.run(bounded())


@pytest.mark.parametrize("max_bytes", [0, -1])
def test_a_bound_that_is_not_positive_is_refused(max_bytes: int) -> None:
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        Outbox(max_bytes)


def test_a_replaced_item_gives_its_bytes_back_so_coalescing_never_overflows() -> None:
    async def scenario() -> tuple[int, Ending | None, list[bytes]]:
        outbox = Outbox(max_bytes=100)
        for version in range(1_000):  # 100 KB put in all, under one key
            assert outbox.put(b"%060d" % version, key="w-1")
        return outbox.pending_bytes, outbox.ended, await outbox.take_frames(timeout=0)

    assert on_a_loop(scenario) == (60, None, [b"%060d" % 999])


def test_items_without_a_key_never_coalesce_even_when_equal() -> None:
    async def scenario() -> list[bytes]:
        outbox = Outbox(max_bytes=100)
        for _ in range(3):
            outbox.put(b"same")
        return await outbox.take_frames(timeout=0)

    assert on_a_loop(scenario) == [b"same"] * 3


def test_frames_are_taken_one_item_each_in_queue_order_and_the_count_resets() -> None:
    async def scenario() -> tuple[list[bytes], int, list[bytes]]:
        outbox = Outbox(max_bytes=100)
        outbox.put(b"a1", key="a")
        outbox.put(b"n1")
        outbox.put(b"b1", key="b")
        outbox.put(b"a2", key="a")  # moves to the end
        frames = await outbox.take_frames(timeout=0)
        return frames, outbox.pending_bytes, await outbox.take_frames(timeout=0)

    assert on_a_loop(scenario) == ([b"n1", b"b1", b"a2"], 0, [])


def test_exactly_the_bound_fits_and_one_byte_more_ends_the_outbox() -> None:
    async def scenario() -> tuple[bool, bool, Ending | None, int]:
        outbox = Outbox(max_bytes=8)
        fits = outbox.put(b"12345678")
        over = outbox.put(b"9")
        return fits, over, outbox.ended, outbox.pending_bytes

    assert on_a_loop(scenario) == (True, False, Ending.OVERFLOW, 0)


def test_a_single_item_larger_than_the_bound_ends_an_empty_outbox() -> None:
    async def scenario() -> Ending:
        outbox = Outbox(max_bytes=4)
        assert not outbox.put(b"12345", key="big")
        return await outbox.wait_ended()

    assert on_a_loop(scenario) is Ending.OVERFLOW


def test_put_many_stops_at_the_first_item_refused() -> None:
    async def scenario() -> tuple[bool, Ending | None, bool]:
        outbox = Outbox(max_bytes=10)
        many = outbox.put_many([(b"12345", None), (b"123456", None), (b"1", "k")])
        return many, outbox.ended, outbox.put(b"x")

    assert on_a_loop(scenario) == (False, Ending.OVERFLOW, False)


def test_a_reader_that_takes_in_time_never_overflows_a_small_bound() -> None:
    async def scenario() -> tuple[int, Ending | None]:
        outbox = Outbox(max_bytes=16)
        taken = 0
        for n in range(500):
            assert outbox.put(b"%010d" % n)
            taken += len(await outbox.take_frames(timeout=0))
        return taken, outbox.ended

    assert on_a_loop(scenario) == (500, None)


def test_a_taker_waiting_without_a_timeout_wakes_on_the_next_put() -> None:
    async def scenario() -> bytes:
        outbox = Outbox()
        waiting = asyncio.ensure_future(outbox.take())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        outbox.put(b"first")
        return await waiting

    assert on_a_loop(scenario) == b"first"


def test_drained_waits_until_everything_put_was_taken() -> None:
    async def scenario() -> list[str]:
        outbox = Outbox()
        seen: list[str] = []
        outbox.put(b"a")
        outbox.put(b"b")

        async def writer() -> None:
            await asyncio.sleep(0.01)
            seen.append("taken")
            await outbox.take(timeout=0)

        task = asyncio.ensure_future(writer())
        await outbox.drained()
        seen.append("drained")
        await task
        await outbox.drained()  # nothing waits: returns at once
        return seen

    assert on_a_loop(scenario) == ["taken", "drained"]


def test_ending_an_outbox_releases_a_wait_for_it_to_drain() -> None:
    async def scenario() -> tuple[Ending | None, int]:
        outbox = Outbox()
        outbox.put(b"never taken")
        waiting = asyncio.ensure_future(outbox.drained())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        outbox.end(Ending.CLIENT_GONE)
        await waiting
        return outbox.ended, outbox.pending_bytes

    assert on_a_loop(scenario) == (Ending.CLIENT_GONE, 0)


@pytest.mark.parametrize("ending", list(Ending))
def test_every_ending_is_raised_to_the_taker_with_its_reason(ending: Ending) -> None:
    async def scenario() -> tuple[Ending, str]:
        outbox = Outbox()
        outbox.put(b"dropped with the rest")
        outbox.end(ending)
        with pytest.raises(OutboxEnded) as ended:
            await outbox.take_frames()
        return ended.value.ending, str(ended.value)

    assert on_a_loop(scenario) == (ending, ending.value)


def test_an_overflowed_outbox_keeps_overflow_as_its_reason_when_ended_again() -> None:
    async def scenario() -> Ending:
        outbox = Outbox(max_bytes=1)
        outbox.put(b"too big")
        outbox.end(Ending.SHUTDOWN)
        return await outbox.wait_ended()

    assert on_a_loop(scenario) is Ending.OVERFLOW


def test_a_comment_or_id_with_a_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="without NUL"):
        comment("a\x00b")
    with pytest.raises(ValueError, match="without NUL"):
        frame("data", id="1\x002")
    assert comment() == b": \n\n"
