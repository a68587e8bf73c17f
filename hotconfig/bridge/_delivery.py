"""What one browser receives from the channel bridge: the subscription.

A :class:`Subscription` is one browser's view of one channel (or one pattern). The bridge's
reader thread hands each message to the subscription's event loop; the subscription applies
the channel's delivery class and queues the result in a bounded :class:`~._outbox.Outbox`,
which the browser's writer reads by iterating the subscription (or in batches, with
:meth:`Subscription.take`)::

    async with bridge.subscribe("ai:stream:sess-abc") as subscription:
        async for event in subscription:
            await send(event.data)
    subscription.ending  # why it ended: Ending.DONE, IDLE, OVERFLOW, SHUTDOWN

The delivery class of the channel (:mod:`._classes`) decides what the browser gets; the
events it gets are :mod:`._events`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ._classes import Delivery, Ephemeral, Sequenced, delivery_for
from ._events import _FINAL_ENDING, Event, EventKind, Tally, _pack, _unpack
from ._history import History, Position, Replayable
from ._incoming import Incoming
from ._outbox import Ending, Outbox, OutboxEnded
from ._recovery import Authorize, Recovery

__all__ = ["Subscription"]

log = logging.getLogger("hotconfig.bridge")


class Subscription:
    """One browser's subscription; iterate it on the loop that created it.

    Created by :meth:`hotconfig.bridge.Bridge.subscribe`. Every method runs on that loop,
    except that the bridge's reader thread schedules :meth:`_receive` and :meth:`_end` there
    with ``call_soon_threadsafe``.
    """

    def __init__(
        self,
        channel: str,
        *,
        pattern: bool,
        classes: Mapping[str, Delivery],
        max_bytes: int,
        tally: Tally,
        release: Callable[[Subscription], None],
        start: Position | None = None,
        history: History | None = None,
        authorize_replay: Authorize | None = None,
    ) -> None:
        self.channel, self.pattern = channel, pattern
        self.loop = asyncio.get_running_loop()
        # Set once Redis acknowledged the (P)SUBSCRIBE (on a replayable channel: and the
        # subscription caught up): everything published from then on is delivered.
        self.subscribed = asyncio.Event()
        self.ending: Ending | None = None
        self._classes, self._tally, self._release = classes, tally, release
        self._outbox = Outbox(max_bytes)
        self._taken: deque[Event] = deque()
        self._next: dict[str, int] = {}  # per channel: the index expected next
        self._final = False
        self._released = False
        self._idle: asyncio.TimerHandle | None = None
        self._delivery = None if pattern else delivery_for(classes, channel)
        self._recovery: Recovery | None = None
        if isinstance(self._delivery, Replayable) and history is not None:
            self._recovery = Recovery(
                channel,
                start,
                history=history,
                feed=self,
                tally=tally,
                authorize=authorize_replay,
                max_bytes=max_bytes,
            )
        self._arm_idle()

    # -- fed by the bridge ----------------------------------------------------------------------

    def _receive(self, message: Incoming) -> None:
        """One published message, read once for all (on this subscription's loop)."""
        if self._final or self._outbox.ended is not None:
            return
        delivery, channel, data = message.delivery, message.channel, message.data
        if isinstance(delivery, Ephemeral):
            key = message.key or ""
            self._put(_pack(EventKind.MESSAGE, channel, data, key), key or None)
        elif isinstance(delivery, Sequenced):
            self._receive_sequenced(delivery, message)
        elif isinstance(delivery, Replayable):
            self._receive_replayable(message)
        else:
            self._put(_pack(EventKind.MESSAGE, channel, data))

    def _receive_sequenced(self, delivery: Sequenced, message: Incoming) -> None:
        channel, index = message.channel, message.ordinal
        if index is not None:
            expected = self._next.get(channel, delivery.first)
            if index < expected:
                self._tally.add("out_of_order")  # a late or repeated message: already passed
                return
            if index > expected:
                self._tally.add("gaps")
                gap = {"channel": channel, "from": expected, "to": index - 1}
                self._put(_pack(EventKind.GAP, channel, json.dumps(gap).encode()))
            self._next[channel] = index + 1
        self._put(_pack(EventKind.MESSAGE, channel, message.data))
        if not message.done:
            self._arm_idle()
        elif self.pattern:
            self._next.pop(channel, None)  # that stream is over: a pattern sees many come and go
        else:
            self._tally.add("done")
            self._finish()

    def _receive_replayable(self, message: Incoming) -> None:
        # A message without an envelope (not published by ReplayPublisher) goes as it came,
        # with no id; on a pattern the ids are shown, and nothing is resumed.
        at = message.at
        if self._recovery is not None:
            self._recovery.live(at, message.data)
        else:
            event_id = at.id if at else ""
            self._put(_pack(EventKind.MESSAGE, message.channel, message.data, event_id=event_id))

    def _acknowledged(self) -> None:
        """Redis acknowledged the (P)SUBSCRIBE, the first time or after a reconnect (on the
        loop); a replayable subscription catches up from its position first."""
        if self._recovery is None:
            self.subscribed.set()
        elif not self._released:
            self._recovery.restart()

    # -- fed by the recovery (._recovery.Feed) ------------------------------------------------

    def _deliver(self, data: bytes, event_id: str | None) -> bool:
        self._put(_pack(EventKind.MESSAGE, self.channel, data, event_id=event_id or ""))
        return self._outbox.ended is None and not self._final

    def _notice(self, data: dict[str, Any], event_id: str | None, final: bool) -> None:
        notice = json.dumps(data).encode()
        self._put(_pack(EventKind.RECOVERY, self.channel, notice, event_id=event_id or ""))
        if final:
            self._finish()

    async def _room(self, size: int) -> None:
        if self._outbox.pending_bytes + size > self._outbox.max_bytes // 2:
            await self._outbox.drained()

    def _overflow(self) -> None:
        self._end(Ending.OVERFLOW)

    def _caught_up(self) -> None:
        self.subscribed.set()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if isinstance(self._delivery, Sequenced):
            self._idle = self.loop.call_later(self._delivery.idle_timeout, self._idle_out)

    def _idle_out(self) -> None:
        assert isinstance(self._delivery, Sequenced)
        if self._final or self._outbox.ended is not None:
            return
        self._tally.add("idle")
        data = {
            "channel": self.channel,
            "idle_timeout": self._delivery.idle_timeout,
            "next": self._next.get(self.channel, self._delivery.first),
        }
        self._put(_pack(EventKind.IDLE, self.channel, json.dumps(data).encode()))
        self._finish()

    def _put(self, item: bytes, key: str | None = None) -> None:
        if self._outbox.put(item, key):
            self._tally.add("delivered")
        elif self._outbox.ended is Ending.OVERFLOW:
            self._end(Ending.OVERFLOW)

    def _finish(self) -> None:
        """The stream is complete: what is queued is still delivered, nothing after it."""
        self._final = True
        self._let_go()

    def _end(self, ending: Ending) -> None:
        """End now, dropping what waits unsent (the bridge closed, the client left)."""
        if self.ending is None:
            self.ending = ending
            if ending is Ending.OVERFLOW:
                self._tally.add("dropped_slow")
                log.info("a slow client of %s was dropped at its bound", self.channel)
        self._outbox.end(ending)
        self._let_go()

    def _let_go(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._recovery is not None:
            self._recovery.close()
        if not self._released:
            self._released = True
            self._release(self)

    # -- read by the browser's writer ---------------------------------------------------------

    def close(self, ending: Ending = Ending.CLIENT_GONE) -> None:
        """Stop receiving; safe to call more than once (the first ending stays).

        An adapter whose own buffer for this browser overflowed passes
        :attr:`~hotconfig.bridge._outbox.Ending.OVERFLOW`, so that the drop is counted.
        """
        self._end(ending)

    async def wait_dropped(self) -> Ending:
        """Wait until the subscription is ended before its stream is complete; say why.

        For a writer blocked on a client that stopped reading: the subscription overflows
        meanwhile, and the writer can give up on that client.
        """
        return await self._outbox.wait_ended()

    def limit_bytes(self, max_bytes: int) -> None:
        """Keep at most ``max_bytes`` unsent from now on, if that is less than the bridge's
        bound: an adapter's own bound per browser, applied where the events wait."""
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self._outbox.max_bytes = min(self._outbox.max_bytes, max_bytes)

    async def take(self, timeout: float | None = None) -> list[Event] | None:
        """Every event waiting, in order; ``[]`` if none came within ``timeout`` seconds (time
        for a keep-alive); None once the stream is over (:attr:`ending` says why).

        What a writer that sends in batches reads; iterating the subscription reads the same
        events one at a time. The last event of a complete stream has ``final`` set.
        """
        if self._taken:  # left over from iterating: they come first
            events = list(self._taken)
            self._taken.clear()
            return events
        if self._final and self._outbox.pending_bytes == 0:
            return None
        while True:
            try:
                items = await self._outbox.take_frames(timeout)
            except OutboxEnded as exc:
                self.ending = self.ending or exc.ending
                return None
            if items or timeout is not None:
                break
        events = [_unpack(item) for item in items]
        if events and self._final and self._outbox.pending_bytes == 0:
            # Nothing is put after the stream is complete: the batch holds its last event.
            last = events[-1]
            self.ending = _FINAL_ENDING.get(last.kind, Ending.DONE)
            events[-1] = last._replace(final=True)
        return events

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._taken:
            events = await self.take()
            if events is None:
                raise StopAsyncIteration
            self._taken.extend(events)
        return self._taken.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
