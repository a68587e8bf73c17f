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
message is sent; a refusal sends ``{"recovered": false, "reason": "forbidden"}``, and ends.

Catching up never loops. A live message that the history, read after it was heard, cannot
place is not this history's (Pub/Sub ignores database numbers: a publisher on another database
reaches the channel; anyone may PUBLISH a copied envelope): it is dropped and counted
(``stray``), the browser gets one ``recovery`` event (``unknown``, at most one a second), and
later messages of an epoch found stray are dropped unread; catching up for live gaps starts at
most twice a second. A read that fails because Redis is unreachable or busy is counted and
retried with backoff (logged once, then quietly); one that Redis refuses (an ACL, keys that
hold no history) sends one ``recovery`` event (``unavailable``), and live messages go on
unchecked until the bridge reconnects.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis

from .._redis.liveness import misconfiguration
from ..errors import ClientClosedError
from ._history import History, Page, Position

__all__ = ["Authorize", "Feed", "Reason", "Recovery"]

log = logging.getLogger("hotconfig.bridge")

Authorize = Callable[[], bool | Awaitable[bool]]

_PAGE = 100  # stored messages per read
_RETRY_BASE, _RETRY_MAX = 0.05, 1.0
_GAP_PAUSE = 0.5  # seconds between the starts of two catch-ups for live gaps
_NOTICE_QUIET = 1.0  # seconds after a recovery event during which a stray sends none
_STRAYS_KEPT = 8  # epochs remembered as not this history's


class Reason(enum.StrEnum):
    """Why a recovery was impossible (the ``reason`` of a ``recovery`` event)."""

    EPOCH = "epoch"  # the history is another one: lost (restart, FLUSHALL, ttl) and begun anew
    TRIMMED = "trimmed"  # messages after the position were already trimmed (maxlen)
    UNKNOWN = "unknown"  # a position the history never gave: ahead of it, or not of it
    FORBIDDEN = "forbidden"  # authorize refused at replay: nothing stored is sent
    UNAVAILABLE = "unavailable"  # Redis refused to read the history: live messages go on


class Feed(Protocol):
    """What a recovery delivers to: the subscription (every call on its loop)."""

    def _deliver(self, data: bytes, event_id: str | None) -> bool: ...  # False once ended

    def _notice(self, data: dict[str, Any], event_id: str | None, final: bool) -> None: ...

    async def _room(self, size: int) -> None: ...  # wait until ``size`` more bytes fit well

    def _caught_up(self) -> None: ...  # from now on, every message published is delivered

    def _overflow(self) -> None: ...


class Counter(Protocol):
    def add(self, name: str, amount: int = 1) -> None: ...

    def warn(self, kind: str, message: str, *args: object) -> None: ...


# A live message heard while catching up: its position (None: no envelope), itself, its number.
Waiting = tuple[Position | None, bytes, int]


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
        # Live messages heard while catching up, in order; one without an envelope (published by
        # something else) is delivered in its place, without an id.
        self._waiting: deque[Waiting] = deque()
        self._waiting_bytes = 0
        self._heard = 0  # live messages heard so far: each is numbered
        self._read_at = 0  # messages numbered below it were heard before the last read began
        self._epoch: str | None = None  # the history's epoch at the last read
        self._strays: deque[str] = deque(maxlen=_STRAYS_KEPT)  # epochs the history is not in
        self._blind = False  # the history cannot be read: nothing is checked until a reconnect
        self._gap_at = float("-inf")  # when the last catch-up for a live gap started
        self._quiet_until = float("-inf")  # no recovery event for a stray before then
        self._paused: asyncio.TimerHandle | None = None
        self._catching_up = True  # nothing goes out before the first catch-up is done
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def restart(self) -> None:
        """Redis acknowledged the subscription (again): catch up from the position."""
        if self._closed:
            return
        self._blind = False  # a new connection: try the history again
        self._catch_up_now()

    def live(self, at: Position | None, data: bytes) -> None:
        """A message heard on the channel (``at`` None: it came without an envelope)."""
        if self._closed:
            return
        heard, self._heard = self._heard, self._heard + 1
        if at is not None and at.epoch in self._strays and not self._blind:
            self._stray(at, told=True)  # of a history found not this one: the browser knows
        elif self._catching_up:
            self._wait((at, data, heard))
        else:
            self._accept((at, data, heard))

    def close(self) -> None:
        self._closed = True
        self._waiting.clear()
        self._stop_task()

    def _stop_task(self) -> None:
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()  # its read may still finish on its thread: the result is dropped

    # -- live messages --------------------------------------------------------------------------

    def _wait(self, item: Waiting, *, first: bool = False) -> None:
        if first:
            self._waiting.appendleft(item)
        else:
            self._waiting.append(item)
        self._waiting_bytes += len(item[1])
        if self._waiting_bytes > self._max_bytes:
            self._feed._overflow()

    def _accept(self, item: Waiting) -> None:
        """Deliver a live message in its turn; one that does not follow sends the subscription
        to the history, unless the history was read after it was heard: then it is a stray."""
        at, data, heard = item
        position = self.position
        assert position is not None
        if at is None:
            self._feed._deliver(data, None)
            return
        same = position.epoch in (at.epoch, "")
        if same and position.epoch and at.offset <= position.offset:
            return  # delivered already, from the history: exactly once
        if (same and at.offset == position.offset + 1) or self._blind:
            self.position = at
            self._feed._deliver(data, at.id)
        elif heard < self._read_at:
            self._stray(at)
        else:
            self._wait(item, first=True)
            self._gap()

    def _gap(self) -> None:
        """A live message does not follow: read the history, at most every ``_GAP_PAUSE``
        seconds (what is heard meanwhile waits, in order)."""
        self._catching_up = True
        if self._paused is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self._gap_at + _GAP_PAUSE - loop.time()
        if delay > 0:
            self._paused = loop.call_later(delay, self._catch_up_for_gap)
        else:
            self._catch_up_for_gap()

    def _catch_up_for_gap(self) -> None:
        self._paused = None
        if not self._closed:
            self._gap_at = asyncio.get_running_loop().time()
            self._catch_up_now()

    def _stray(self, at: Position, *, told: bool = False) -> None:
        """Drop a live message the history cannot place; tell the browser, rarely."""
        self._tally.add("stray")
        if at.epoch != self._epoch and at.epoch not in self._strays:
            self._strays.append(at.epoch)
        self._tally.warn(
            "stray",
            "%s: dropped a message whose envelope names %s, a position its history does not "
            "hold (a lost history, a publisher on another database of the server, or a copied "
            "envelope)",
            self.channel,
            at.id,
        )
        quiet = told or asyncio.get_running_loop().time() < self._quiet_until
        if not quiet and self.position is not None:
            self._notify(Reason.UNKNOWN, self._epoch, self.position)

    def _release_waiting(self) -> None:
        self._catching_up = False
        while self._waiting and not self._catching_up and not self._closed:
            item = self._waiting.popleft()
            self._waiting_bytes -= len(item[1])
            self._accept(item)

    # -- catching up ----------------------------------------------------------------------------

    def _catch_up_now(self) -> None:
        self._stop_task()
        self._catching_up = True
        self._task = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        failures = 0
        while not self._closed:
            try:
                await self._recover()
                break
            except ClientClosedError:
                return  # the bridge is closing: its subscriptions end with it
            except Exception as exc:
                failures += 1
                self._tally.add("replay_errors")
                if not _passing(exc):
                    self._give_up(exc)
                    break
                delay = min(_RETRY_MAX, _RETRY_BASE * 2 ** min(failures - 1, 8))
                self._tally.warn(
                    "replay_errors",
                    "could not read the history of %s (%s: %s); retrying every %.2fs at most",
                    self.channel,
                    type(exc).__name__,
                    exc,
                    _RETRY_MAX,
                )
                await asyncio.sleep(delay)
        if not self._closed:
            self._release_waiting()
            self._feed._caught_up()

    async def _read(self, after: int, count: int) -> Page:
        heard = self._heard
        page = await asyncio.to_thread(self._history.read, self.channel, after, count)
        self._read_at, self._epoch = max(self._read_at, heard), page.epoch
        if page.epoch is not None and page.epoch in self._strays:  # that one after all
            self._strays.remove(page.epoch)
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
        """Stand at the history's last offset, or just before the first message of its epoch
        waiting (it was heard after the subscription, so it is new to the browser)."""
        epoch = page.epoch or ""
        offset = page.top if page.epoch else 0
        if epoch:
            heard = (at.offset for at, _, _ in self._waiting if at and at.epoch == epoch)
            offset = min(offset, next(heard, offset + 1) - 1)
        self.position = Position(epoch, offset)
        return self.position

    def _fail(self, reason: Reason, page: Page) -> None:
        now = self._settle(page)
        log.info(
            "%s: a browser could not resume (%s); it goes on from %s", self.channel, reason, now.id
        )
        self._notify(reason, page.epoch, now)

    def _give_up(self, exc: Exception) -> None:
        """Redis refused the read (or the keys hold no history): tell the browser once and let
        the live messages go on, unchecked, until the bridge reconnects."""
        self._blind = True
        if self.position is None:
            self.position = Position("", 0)
        hint = misconfiguration(exc) if isinstance(exc, redis.RedisError) else None
        self._tally.warn(
            "unavailable",
            "could not read the history of %s (%s: %s): its browsers get live messages without "
            "replay until the bridge reconnects",
            self.channel,
            type(exc).__name__,
            hint or exc,
        )
        if not isinstance(exc, redis.RedisError | ValueError):  # not Redis, nor its data: a bug
            log.error("reading the history of %s failed", self.channel, exc_info=exc)
        self._notify(Reason.UNAVAILABLE, None, self.position)

    def _notify(self, reason: Reason, epoch: str | None, now: Position) -> None:
        self._tally.add("unrecovered")
        self._quiet_until = asyncio.get_running_loop().time() + _NOTICE_QUIET
        data = {
            "channel": self.channel,
            "recovered": False,
            "reason": str(reason),
            "epoch": epoch,
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


def _passing(exc: Exception) -> bool:
    """Whether a failed read is worth trying again: Redis unreachable, or busy for a while
    (LOADING, BUSY, TRYAGAIN, ...), rather than refusing it."""
    return isinstance(exc, redis.RedisError) and misconfiguration(exc) is None


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
