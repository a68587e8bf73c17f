"""Resuming a replayable channel: each message exactly once, or a notice that it cannot be.

One :class:`Recovery` per browser on an exact replayable channel (see :mod:`._history`)
holds the browser's :class:`~hotconfig.bridge._history.Position` and catches up whenever Redis
acknowledges the bridge's SUBSCRIBE: the first time (from the browser's ``Last-Event-ID``, or
just to learn where the history is), after every reconnect of the bridge, and when a live
message shows a gap or another epoch. Catching up is always the same three steps:

1. live messages wait (bounded by the subscription's bytes) from the acknowledgement on, so
   nothing published from then on can be missed (a browser without an id starts where the
   history stands right after the acknowledgement);
2. the history is read after the position, off the event loop, a page at a time, paced by the
   browser's outbox; the stored messages are delivered in order;
3. the waiting live messages follow, each only if its offset is higher than the last one
   delivered: a message both stored and heard live is delivered once.

If the history cannot give what was missed (another epoch: the history was lost; the offset
was already trimmed; a position the history never gave), the browser gets one ``recovery``
event ``{"channel", "recovered": false, "reason", "epoch", "offset"}`` whose id is where it
now stands, and the live messages from there. ``authorize`` is asked again before any stored
message is sent; a refusal sends ``{"recovered": false, "reason": "forbidden"}`` and ends
the stream. A read that fails (Redis unreachable) is counted, logged and retried with backoff.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ._history import History, Page, Position

__all__ = ["Authorize", "Feed", "Reason", "Recovery"]

log = logging.getLogger("hotconfig.bridge")

Authorize = Callable[[], bool | Awaitable[bool]]

_PAGE = 100  # stored messages per read
_RETRY_BASE, _RETRY_MAX = 0.05, 1.0


class Reason(enum.StrEnum):
    """Why a recovery was impossible (the ``reason`` of a ``recovery`` event)."""

    EPOCH = "epoch"  # the history is another one: lost (restart, FLUSHALL, ttl) and begun anew
    TRIMMED = "trimmed"  # messages after the position were already trimmed (maxlen)
    UNKNOWN = "unknown"  # the position is ahead of the history: not an id this history gave
    FORBIDDEN = "forbidden"  # authorize refused at replay: nothing stored is sent


class Feed(Protocol):
    """What a recovery delivers to: the subscription (every call on its loop)."""

    def _deliver(self, data: bytes, event_id: str | None) -> bool: ...  # False once ended

    def _notice(self, data: dict[str, Any], event_id: str | None, final: bool) -> None: ...

    async def _room(self, size: int) -> None: ...  # wait until ``size`` more bytes fit well

    def _caught_up(self) -> None: ...  # from now on, every message published is delivered

    def _overflow(self) -> None: ...


class Counter(Protocol):
    def add(self, name: str, amount: int = 1) -> None: ...


class Recovery:
    """One browser's position in one replayable channel. Every method runs on the loop of the
    subscription that owns it (the bridge's thread schedules :meth:`live` and :meth:`restart`
    there)."""

    def __init__(
        self,
        channel: str,
        start: Position | None,
        *,
        history: History,
        feed: Feed,
        tally: Counter,
        authorize: Authorize | None,
        max_bytes: int,
    ) -> None:
        self.channel = channel
        self.position = start  # None: a new browser; its position is read at the first ack
        self._history, self._feed, self._tally = history, feed, tally
        self._authorize, self._max_bytes = authorize, max_bytes
        # Live messages heard while catching up; None: a message without an envelope (published
        # to the channel by something else), kept in its place and delivered without an id.
        self._waiting: deque[tuple[Position | None, bytes]] = deque()
        self._waiting_bytes = 0
        self._catching_up = True  # nothing goes out before the first catch-up is done
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def restart(self) -> None:
        """Redis acknowledged the subscription (again): catch up from the position."""
        if self._closed:
            return
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()  # its read may still finish on its thread: the result is dropped
        self._catching_up = True
        self._task = asyncio.get_running_loop().create_task(self._catch_up())

    def live(self, at: Position | None, data: bytes) -> None:
        """A message heard on the channel (``at`` None: it came without an envelope)."""
        if self._closed:
            return
        if self._catching_up:
            self._wait(at, data)
        else:
            self._accept(at, data)

    def close(self) -> None:
        self._closed = True
        self._waiting.clear()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    # -- live messages --------------------------------------------------------------------------

    def _wait(self, at: Position | None, data: bytes, *, first: bool = False) -> None:
        if first:
            self._waiting.appendleft((at, data))
        else:
            self._waiting.append((at, data))
        self._waiting_bytes += len(data)
        if self._waiting_bytes > self._max_bytes:
            self._feed._overflow()

    def _accept(self, at: Position | None, data: bytes) -> None:
        """Deliver a live message in its turn; a gap or another epoch sends it to wait while
        the history says what happened."""
        position = self.position
        assert position is not None
        if at is None:
            self._feed._deliver(data, None)
            return
        same = position.epoch in (at.epoch, "")
        if same and at.offset == position.offset + 1:
            self.position = at
            self._feed._deliver(data, at.id)
        elif same and position.epoch and at.offset <= position.offset:
            pass  # delivered already, from the history: exactly once
        else:
            self._wait(at, data, first=True)
            self.restart()

    def _release_waiting(self) -> None:
        self._catching_up = False
        while self._waiting and not self._catching_up and not self._closed:
            at, data = self._waiting.popleft()
            self._waiting_bytes -= len(data)
            self._accept(at, data)

    # -- catching up ----------------------------------------------------------------------------

    async def _catch_up(self) -> None:
        delay = _RETRY_BASE
        while True:
            try:
                await self._recover()
                break
            except Exception as exc:  # Redis unreachable, or refusing the script: try again
                self._tally.add("replay_errors")
                log.warning(
                    "could not read the history of %s (%s: %s); retrying in %.2fs",
                    self.channel,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(_RETRY_MAX, delay * 2)
        if not self._closed:
            self._release_waiting()
            self._feed._caught_up()

    async def _read(self, after: int, count: int) -> Page:
        page = await asyncio.to_thread(self._history.read, self.channel, after, count)
        if page.epoch is not None:
            self._drop_stale(page.epoch)
        return page

    async def _recover(self) -> None:
        start = self.position
        if start is None:  # a new browser: it starts from now, wherever the history is
            self._settle(await self._read(0, 0))
            return
        epoch, after, asked = start.epoch, start.offset, False
        while True:
            page = await self._read(after, _PAGE)
            reason = _verdict(epoch, after, page)
            if reason is not None:
                self._fail(reason, page)
                return
            if not page.entries:
                return
            if not asked:
                asked = True
                if not await self._allowed():
                    self._refuse()
                    return
            assert page.epoch is not None
            for offset, data in page.entries:
                await self._feed._room(len(data))
                if self._closed:
                    return
                self.position = Position(page.epoch, offset)
                self._tally.add("replayed")
                if not self._feed._deliver(data, self.position.id):
                    return
            epoch, after = page.epoch, page.entries[-1][0]
            if len(page.entries) < _PAGE:
                return

    def _settle(self, page: Page) -> Position:
        """Stand at the history's last offset, or just before the first message waiting (it
        was heard after the subscription, so it is new to the browser)."""
        epoch = page.epoch or ""
        offset = page.top if page.epoch else 0
        first = next((at for at, _ in self._waiting if at is not None), None)
        if first is not None and epoch and first.epoch == epoch:
            offset = min(offset, first.offset - 1)
        self.position = Position(epoch, offset)
        return self.position

    def _drop_stale(self, epoch: str) -> None:
        # Messages of an epoch the history has left behind can never be placed: the notice
        # that follows tells the browser what it lost.
        if any(at is not None and at.epoch != epoch for at, _ in self._waiting):
            kept = deque(i for i in self._waiting if i[0] is None or i[0].epoch == epoch)
            self._waiting = kept
            self._waiting_bytes = sum(len(data) for _, data in kept)

    def _fail(self, reason: Reason, page: Page) -> None:
        self._tally.add("unrecovered")
        now = self._settle(page)
        log.info(
            "%s: a browser could not resume (%s); it goes on from %s", self.channel, reason, now.id
        )
        data = {
            "channel": self.channel,
            "recovered": False,
            "reason": str(reason),
            "epoch": page.epoch,
            "offset": now.offset,
        }
        self._feed._notice(data, now.id, False)

    def _refuse(self) -> None:
        self._tally.add("unrecovered")
        self._closed = True
        self._waiting.clear()
        data = {"channel": self.channel, "recovered": False, "reason": str(Reason.FORBIDDEN)}
        self._feed._notice(data, None, True)

    async def _allowed(self) -> bool:
        if self._authorize is None:
            return True
        try:
            answer = self._authorize()
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception:
            log.exception("authorize raised at the replay of %s: refused", self.channel)
            return False
        return answer is True


def _verdict(epoch: str, after: int, page: Page) -> Reason | None:
    """Can ``page`` continue a browser at (``epoch``, ``after``)? None: yes."""
    if page.epoch is None:  # there is no history at all
        return None if not epoch else Reason.EPOCH
    if epoch and page.epoch != epoch:
        return Reason.EPOCH
    if after > page.top:
        return Reason.UNKNOWN
    if after < page.top and (not page.entries or page.entries[0][0] != after + 1):
        return Reason.TRIMMED
    return None
