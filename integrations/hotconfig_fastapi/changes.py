"""The allowed keys of one client as a stream of events, fanned out to every open connection.

Events (``data:`` is JSON; ``id:`` is the store version the value belongs to)::

    event: reset     data: {"version": 42, "values": {"ui.banner": "Hello", ...}}
    event: change    data: {"key": "ui.banner", "value": "Hi", "version": 43}
    event: change    data: {"key": "ui.banner", "deleted": true, "version": 44}
    event: end       data: {"reason": "shutdown"}

A new connection starts with ``reset`` (every allowed key's current value). A browser that
reconnects with ``Last-Event-ID: N`` gets the current value of every allowed key that changed
at version N or later (at-least-once: values, not a log, so a repeat is harmless), or a
``reset`` when this process cannot tell what changed since N (N older than what it followed,
from another epoch, or unreadable).

The feed follows *state*, not messages: on each change it reads the client's current
snapshot and sends the key's value there, skipping values already sent. So events come in
version order and a burst that the core coalesced for a slow loop still ends at the latest
value. Secrets: only keys matched by the allow-list leave the process; a wildcard pattern
never matches a key whose name says it is a secret (``*password*``, ``*token*``, ...), which
must be listed by its exact name, and secret-typed values (pydantic ``SecretStr``) are sent
masked.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pydantic_core

from hotconfig import Change, HotConfig, Snapshot
from hotconfig.bridge.serving import Ending, Outbox, frame
from hotconfig.security import looks_secret

__all__ = ["ChangeFeed", "StreamCounts"]

log = logging.getLogger("hotconfig.fastapi")

_ABSENT: Any = object()


class StreamCounts(NamedTuple):
    """What a feed has done since it started; ``open`` is a gauge, the rest are totals."""

    open: int
    opened: int
    resumed: int
    reset: int
    dropped_slow: int
    events: int
    unencodable: int


class ChangeFeed:
    """The allowed keys of ``config``, for any number of event-stream connections.

    Lives on one event loop: :meth:`start`, :meth:`open`, :meth:`close` and the change
    receivers it registers all run there.
    """

    def __init__(
        self,
        config: HotConfig[Any],
        allow: Iterable[str],
        *,
        max_buffer_bytes: int = 1 << 20,
        retry_ms: int = 1000,
    ) -> None:
        self.allow = tuple(allow)
        if not self.allow:
            raise ValueError("a change feed needs an allow-list of keys, e.g. ['ui.*']")
        self.max_buffer_bytes = max_buffer_bytes
        self._config = config
        self._retry_ms = int(retry_ms)
        self._retry = f"retry: {self._retry_ms}\n\n".encode()
        self._reset: bytes | None = None  # the reset frame, until the next change
        self._outboxes: set[Outbox] = set()
        self._sent: dict[str, Any] = {}  # the value of each allowed key as last announced
        self._changed_at: dict[str, int] = {}  # the event id each key last changed at
        self._epoch: str | None = None
        self._since = 0  # ids from here on are all known to this feed
        self._last_id = 0
        self._counts = dict.fromkeys(StreamCounts._fields, 0)
        self._started = False

    # -- lifecycle (on the loop) ----------------------------------------------------------------

    def start(self) -> None:
        """Follow the client's changes on the running loop."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        for pattern in self.allow:
            self._config.on_change(pattern, loop=loop)(self._changed)
        self._restart(self._config.snapshot())

    def stop(self) -> None:
        """End every stream (with the ``end`` event) and stop following the client."""
        self.end_all()
        if self._started:
            self._started = False
            for pattern in self.allow:
                self._config.remove_receiver(self._changed, pattern)

    def end_all(self, ending: Ending = Ending.SHUTDOWN) -> None:
        for outbox in list(self._outboxes):
            outbox.end(ending)

    # -- connections ----------------------------------------------------------------------------

    def open(self, last_event_id: str | None) -> Outbox:
        """A new connection's outbox, already holding what the browser must see first."""
        outbox = Outbox(self.max_buffer_bytes)
        resumed = self._resume_frames(last_event_id)
        if resumed is None:
            self._count("reset")
            outbox.put(self._reset_frame())  # carries the retry delay itself
        else:
            self._count("resumed")
            outbox.put(self._retry)
            outbox.put_many(resumed)
        self._outboxes.add(outbox)
        self._count("opened")
        return outbox

    def close(self, outbox: Outbox, ending: Ending) -> None:
        self._outboxes.discard(outbox)
        if ending is Ending.OVERFLOW:
            self._count("dropped_slow")
            log.warning(
                "hotconfig: disconnected a slow event-stream client (over %d bytes unsent)",
                self.max_buffer_bytes,
            )

    @property
    def counts(self) -> StreamCounts:
        return StreamCounts(**{**self._counts, "open": len(self._outboxes)})

    def allowed(self, key: str) -> bool:
        if key in self.allow:
            return True
        if looks_secret(key):  # hotconfig's own rule: whole words, plus any added patterns
            return False
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in self.allow)

    # -- changes (on the loop) ------------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        """A change receiver the core calls on the feed's loop (``on_change(loop=...)``), in a
        callback: no task to start and no turn of the loop to wait for before the frame goes."""
        snapshot = self._config.snapshot()
        if snapshot.epoch != self._epoch:
            self._restart(snapshot)  # a new store lifetime: versions start over
            self._broadcast(self._reset_frame(), None, supersede=True)
            return
        key = change.key
        if not self.allowed(key):
            return
        value = snapshot.get(key, _ABSENT)
        previous = self._sent.get(key, _ABSENT)
        if previous is value or (_ABSENT not in (previous, value) and previous == value):
            return  # already announced (a repeat, or a value coalesced into an earlier event)
        # The change's own version while the snapshot still holds its value; if a later one
        # has replaced it already (a burst), the snapshot's: the value is current as of then.
        current = change.new is None if value is _ABSENT else value == change.new
        version = max(change.version if current else snapshot.version, self._last_id)
        data = self._change_frame(key, value, version)
        if data is None:
            return
        self._last_id = version
        self._reset = None
        self._changed_at[key] = version
        if value is _ABSENT:
            self._sent.pop(key, None)
        else:
            self._sent[key] = value
        self._broadcast(data, key)

    def _broadcast(self, data: bytes, key: str | None, *, supersede: bool = False) -> None:
        self._count("events")
        for outbox in list(self._outboxes):
            # An outbox over its bound ends itself; its stream's task notices and leaves.
            outbox.put(data, key, supersede=supersede)

    def _restart(self, snapshot: Snapshot) -> None:
        self._reset = None
        self._epoch = snapshot.epoch
        self._since = self._last_id = snapshot.version
        self._changed_at.clear()
        self._sent = {key: value for key, value in snapshot.items() if self.allowed(key)}

    def _resume_frames(self, last_event_id: str | None) -> list[tuple[bytes, str | None]] | None:
        try:
            since = int(last_event_id) if last_event_id is not None else None
        except ValueError:
            since = None
        if since is None or not self._since <= since <= self._last_id:
            return None
        frames: list[tuple[bytes, str | None]] = []
        for key, version in sorted(self._changed_at.items(), key=lambda item: item[1]):
            if version >= since:
                data = self._change_frame(key, self._sent.get(key, _ABSENT), version)
                if data is not None:
                    frames.append((data, key))
        return frames

    def _reset_frame(self) -> bytes:
        # Built once per change, not once per connection: a thousand browsers reconnecting
        # after a restart cost one encoding.
        if self._reset is None:
            values = {}
            for key, value in self._sent.items():
                encoded = self._jsonable(key, value)
                if encoded is not _ABSENT:
                    values[key] = encoded
            body = json.dumps({"version": self._last_id, "values": values}, ensure_ascii=False)
            self._reset = frame(body, event="reset", id=str(self._last_id), retry=self._retry_ms)
        return self._reset

    def _change_frame(self, key: str, value: Any, version: int) -> bytes | None:
        body: Mapping[str, Any]
        if value is _ABSENT:
            body = {"key": key, "deleted": True, "version": version}
        else:
            encoded = self._jsonable(key, value)
            if encoded is _ABSENT:
                return None
            body = {"key": key, "value": encoded, "version": version}
        return frame(json.dumps(body, ensure_ascii=False), event="change", id=str(version))

    def _jsonable(self, key: str, value: Any) -> Any:
        try:
            return pydantic_core.to_jsonable_python(value)
        except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
            self._count("unencodable")
            log.warning("hotconfig: the value of %r cannot be sent as JSON; left out", key)
            return _ABSENT

    def _count(self, name: str) -> None:
        self._counts[name] += 1
