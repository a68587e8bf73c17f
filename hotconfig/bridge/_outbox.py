"""A bounded outbox per connection: what keeps one slow reader from slowing the others.

Framework-neutral (asyncio only): the SSE endpoints of the integrations and the channel bridge
(:mod:`hotconfig.bridge`) queue what a connection is to receive in an :class:`Outbox` and a
writer takes it from there. The producer never waits for a connection, items with the same
``key`` replace each other (the latest wins), and once more than ``max_bytes`` wait unsent
the outbox ends (:attr:`Ending.OVERFLOW`), so the client reconnects and catches up in one step
instead of reading a backlog. Every outbox is read and written on one event loop only.

:func:`frame` and :func:`comment` write the ``text/event-stream`` format for every adapter,
ASGI and WSGI alike.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Iterable

__all__ = ["CONTENT_TYPE", "KEEPALIVE", "Ending", "Outbox", "OutboxEnded", "comment", "frame"]

# The Server-Sent Events format, shared by every adapter (ASGI and WSGI alike).
CONTENT_TYPE = "text/event-stream; charset=utf-8"
KEEPALIVE = b": keep-alive\n\n"


class Ending(enum.StrEnum):
    """Why a stream ended."""

    CLIENT_GONE = "client_gone"  # the browser closed the connection
    OVERFLOW = "overflow"  # more than max_bytes waited unsent: a slow browser
    SHUTDOWN = "shutdown"  # the server is stopping (or the producer ended every stream)
    DONE = "done"  # a bridged stream's terminal message arrived
    IDLE = "idle"  # a bridged stream heard nothing for its idle timeout


class OutboxEnded(Exception):
    """Raised by :meth:`Outbox.take` once the outbox has ended; ``ending`` says why."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.value)
        self.ending = ending


class Outbox:
    """Frames waiting to be written to one connection, bounded in bytes.

    :meth:`put` never blocks: it is how a producer feeds many connections without waiting for
    any of them. Called on the connection's event loop only.
    """

    __slots__ = (
        "_deadline",
        "_drained",
        "_ended",
        "_frames",
        "_pending",
        "_ready",
        "_timer",
        "_unique",
        "_waiting",
        "ended",
        "max_bytes",
    )

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = max_bytes
        self.ended: Ending | None = None
        self._frames: dict[object, bytes] = {}
        self._pending = 0
        self._ready = asyncio.Event()
        self._ended = asyncio.Event()
        self._drained = asyncio.Event()
        self._unique = itertools.count()
        # The keep-alive of take(timeout): one timer per connection, re-armed when it fires
        # early, instead of one made and cancelled per frame (see _wait_ready).
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = False

    @property
    def pending_bytes(self) -> int:
        """Bytes put and not yet taken."""
        return self._pending

    def put(self, data: bytes, key: str | None = None, *, supersede: bool = False) -> bool:
        """Queue ``data``; False if the outbox has ended (now or before).

        A frame with the ``key`` of one still waiting replaces it and goes to the end of the
        queue; ``supersede`` drops everything waiting first (a full reset makes it obsolete).
        Going over ``max_bytes`` ends the outbox with :attr:`Ending.OVERFLOW`.
        """
        if self.ended is not None:
            return False
        if supersede:
            self._frames.clear()
            self._pending = 0
        slot: object = next(self._unique) if key is None else key
        replaced = self._frames.pop(slot, None)
        if replaced is not None:
            self._pending -= len(replaced)
        self._frames[slot] = data
        self._pending += len(data)
        if self._pending > self.max_bytes:
            self.end(Ending.OVERFLOW)
            return False
        self._ready.set()
        return True

    def put_many(self, frames: Iterable[tuple[bytes, str | None]]) -> bool:
        return all(self.put(data, key) for data, key in frames)

    def end(self, ending: Ending) -> None:
        """End the outbox (the first reason given stays); what waits unsent is dropped."""
        if self.ended is None:
            self.ended = ending
            self._frames.clear()
            self._pending = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._ended.set()
        self._ready.set()
        self._drained.set()

    async def take(self, timeout: float | None = None) -> bytes:
        """Everything waiting, joined; ``b""`` if nothing came within ``timeout`` seconds.

        Raises:
            OutboxEnded: the outbox has ended.
        """
        return b"".join(await self.take_frames(timeout))

    async def take_frames(self, timeout: float | None = None) -> list[bytes]:
        """Everything waiting, one item per frame in queue order; ``[]`` on a timeout.

        Raises:
            OutboxEnded: the outbox has ended.
        """
        if not self._frames and self.ended is None:
            self._ready.clear()  # only a keep-alive timer that fired too late can have set it
            if timeout is None:
                await self._ready.wait()
            else:
                await self._wait_ready(timeout)
        if self.ended is not None:
            raise OutboxEnded(self.ended)
        self._ready.clear()
        frames = list(self._frames.values())
        self._frames.clear()
        self._pending = 0
        self._drained.set()
        return frames

    async def _wait_ready(self, timeout: float) -> None:
        # A stream that gets a frame every few milliseconds and a keep-alive every 15 s would
        # make and cancel a timer per frame with asyncio.timeout(): with a thousand browsers
        # on a loop, that is a large share of the cost of a message. Here each wait only moves the
        # deadline; the one pending timer, when it fires early, re-arms for the deadline.
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout
        if self._timer is None or self._timer.when() > self._deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(self._deadline, self._keepalive_due, loop)
        self._waiting = True
        try:
            await self._ready.wait()
        finally:
            self._waiting = False

    def _keepalive_due(self, loop: asyncio.AbstractEventLoop) -> None:
        """The keep-alive timer fired (on the outbox's loop): wake the taker if its time is up."""
        self._timer = None
        if not self._waiting or self.ended is not None:
            return  # the next wait arms a timer again
        if loop.time() >= self._deadline:
            self._ready.set()  # take_frames() finds nothing waiting and answers []
        else:
            self._timer = loop.call_at(self._deadline, self._keepalive_due, loop)

    async def drained(self) -> None:
        """Wait until everything put so far has been taken (or the outbox has ended)."""
        while self._frames and self.ended is None:
            self._drained.clear()
            await self._drained.wait()

    async def wait_ended(self) -> Ending:
        """Wait until the outbox ends; say why."""
        await self._ended.wait()
        assert self.ended is not None
        return self.ended


def frame(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """One event in the ``text/event-stream`` format: each line of ``data`` its own field."""
    lines: list[str] = []
    if id is not None:
        lines.append(f"id: {_one_line(id, 'id')}")
    if event is not None:
        lines.append(f"event: {_one_line(event, 'event')}")
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    # CR, LF and CRLF all end a line in the format; a value must not smuggle in a new field.
    lines.extend(
        f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    )
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "") -> bytes:
    """A comment line: ignored by browsers, it keeps proxies from closing an idle stream."""
    return f": {_one_line(text, 'comment')}\n\n".encode()


def _one_line(value: str, field: str) -> str:
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"an SSE {field} must be one line without NUL: {value!r}")
    return value
