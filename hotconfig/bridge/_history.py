"""Replayable channels: a capped history per channel, so a browser resumes where it left off.

The publisher writes each message to the channel's history and publishes it in one Lua script::

    with hotconfig.bridge.ReplayPublisher(url, history=Replayable(maxlen=1000)) as publisher:
        event_id = publisher.publish("ai:stream:sess-abc", json.dumps({"token": "Rev"}))

Each channel has an **epoch** (a random id, made by the first publish) and an **offset** (1, 2,
3, ... within the epoch); together they are the message's event id, ``"{epoch}:{offset}"``. The
history lives in two keys that share a hash tag on the channel, so the script runs on one
Redis Cluster slot::

    hotconfig:replay:{<channel>}:meta     hash: epoch, offset (the last one given)
    hotconfig:replay:{<channel>}:stream   capped stream (XADD MAXLEN ~), entry ID 0-<offset>

What goes out on the channel is an envelope (a NUL, ``replay:``, the event id, a newline, then
the message byte for byte); the bridge takes it apart, so a browser receives the message as
published. If the history is lost (a restart without persistence, FLUSHALL, its ``ttl``
expired), the next publish starts a new epoch from offset 1, and a browser that asks to resume
in the old epoch is told that recovery was impossible instead of being handed the wrong messages.

The bridge's side of resuming is :class:`~hotconfig.bridge._recovery.Recovery`.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from redis.crc import key_slot

from .._redis.connection import Target, resolve
from .._redis.keyspace import as_text
from ..errors import ClientClosedError

__all__ = [
    "HISTORY_SCRIPT",
    "MAX_OFFSET",
    "PUBLISH_SCRIPT",
    "SPUBLISH_SCRIPT",
    "History",
    "Page",
    "Position",
    "ReplayPublisher",
    "Replayable",
    "history_keys",
    "unwrap",
]

_PREFIX: Final = "hotconfig:replay"
_MAGIC: Final = b"\0replay:"
# The last offset a history can give: the script counts with HINCRBY, a signed 64-bit integer.
# An id beyond it is not one a history gave; reading after it would not even be a stream ID.
MAX_OFFSET: Final = (1 << 63) - 1
# An epoch is made of 16 hex digits; up to 64 letters and digits are read. With ':' and the 19
# digits of MAX_OFFSET, the longest event id there is.
_EVENT_ID = re.compile(r"([A-Za-z0-9]{0,64}):([0-9]+)", re.ASCII).fullmatch
_MAX_ID: Final = 64 + 1 + 19

# KEYS: meta, stream. ARGV: channel, epoch candidate, maxlen, ttl in ms ('0': none), message.
# A meta hash that is gone (or was never there) starts a new epoch: the old stream, whose IDs
# belong to the lost epoch, goes with it, so offsets start again from 1.
PUBLISH_SCRIPT: Final = """
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[2]) == 1 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'offset', 0)
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '0-' .. offset, 'm', ARGV[5])
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', ARGV[1], string.char(0) .. 'replay:' .. epoch .. ':' .. offset .. '\\n' ..
  ARGV[5])
return {epoch, offset}
"""

# Sharded mode: the same, announced by SPUBLISH. The channel hashes to the slot of the keys'
# tag (both are the channel's name), so the script still runs on one shard.
SPUBLISH_SCRIPT: Final = PUBLISH_SCRIPT.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'")

# KEYS: meta, stream. ARGV: the first offset wanted, how many (0: only the position). Returns
# {epoch or false, the last offset given, {{'0-<offset>', {'m', message}}, ...}}, atomically.
HISTORY_SCRIPT: Final = """
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset')
if not meta[1] then
  return {false, 0, {}}
end
local entries = {}
if ARGV[2] ~= '0' then
  entries = redis.call('XRANGE', KEYS[2], '0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
return {meta[1], tonumber(meta[2]), entries}
"""


@dataclass(frozen=True, slots=True)
class Replayable:
    """A channel kept in a capped history (``maxlen`` messages, dropped ``ttl`` seconds after
    its last publish; None: kept until trimmed), so that a browser resumes with its last id.

    The bridge reads the history; :class:`ReplayPublisher` writes it, with these numbers.
    """

    maxlen: int = 1000
    ttl: float | None = 3600.0

    def __post_init__(self) -> None:
        if self.maxlen <= 0:
            raise ValueError(f"maxlen must be positive, got {self.maxlen}")
        if self.ttl is not None and self.ttl <= 0:
            raise ValueError(f"ttl must be positive seconds or None, got {self.ttl}")


class Position(NamedTuple):
    """Where a browser is in a channel's history. ``epoch`` "" means "before any history":
    it matches whatever epoch comes, from offset 1 (the id after a recovery found nothing)."""

    epoch: str
    offset: int

    @property
    def id(self) -> str:
        """The event id: ``"{epoch}:{offset}"``."""
        return f"{self.epoch}:{self.offset}"

    @classmethod
    def parse(cls, event_id: str) -> Position:
        """The position an event id names; :class:`ValueError` for anything else: another
        shape, an id longer than any a history gives, an offset past :data:`MAX_OFFSET`."""
        text = event_id.strip(" \t\r\n")
        if len(text) > _MAX_ID:
            raise ValueError(
                f"not an event id of a replayable channel: {len(event_id)} characters, longer "
                f"than any event id (at most {_MAX_ID}: '<epoch>:<offset>'); omit it to start anew"
            )
        match = _EVENT_ID(text)
        if match is None:
            raise ValueError(
                f"not an event id of a replayable channel: {event_id[:80]!r} (expected "
                "'<epoch>:<offset>', as sent in the 'id:' of the events; omit it to start anew)"
            )
        epoch, offset = match[1], int(match[2])
        if offset > MAX_OFFSET:
            raise ValueError(
                f"not an event id of a replayable channel: its offset {offset} is out of range "
                f"(at most {MAX_OFFSET}); omit it to start anew"
            )
        if not epoch and offset != 0:
            raise ValueError(f"an event id without an epoch must have offset 0: {event_id!r}")
        return cls(epoch, offset)


class Page(NamedTuple):
    """One read of a history: its epoch (None: there is none), the last offset given, and
    the stored messages asked for, ``(offset, message)`` in order."""

    epoch: str | None
    top: int
    entries: list[tuple[int, bytes]]


def history_keys(channel: str) -> tuple[str, str]:
    """The meta hash and the stream of ``channel``; one hash tag, one cluster slot."""
    tag = "{" + channel + "}"
    return f"{_PREFIX}:{tag}:meta", f"{_PREFIX}:{tag}:stream"


def unwrap(data: bytes) -> tuple[Position, bytes] | None:
    """The position and the message of an envelope; None if ``data`` is not one (a message
    published to the channel by something else than :class:`ReplayPublisher`, or one that
    only looks like an envelope: its id is not one a publisher gives, an epoch and an offset
    from 1 to :data:`MAX_OFFSET`)."""
    if not data.startswith(_MAGIC):
        return None
    newline = data.find(b"\n", len(_MAGIC), len(_MAGIC) + _MAX_ID + 1)
    if newline < 0:
        return None
    try:
        position = Position.parse(data[len(_MAGIC) : newline].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not position.epoch or position.offset < 1:
        return None
    return position, data[newline + 1 :]


class ReplayPublisher:
    """Publishes to replayable channels: one script stores, numbers and publishes each message.

    Thread-safe (one redis-py client with its pool); the URL follows
    :func:`hotconfig.resolve_url` (``None``: ``$HOTCONFIG_URL``, else localhost). In sharded mode
    (``sharded=True``, or ``?sharded=1`` in a cluster URL: what a sharded bridge follows) each
    message goes out by SPUBLISH, on the slot its history is in.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        history: Replayable | None = None,
        sharded: bool | None = None,
    ) -> None:
        self.history = history or Replayable()
        target = Target(resolve(url), sharded=sharded)
        self.sharded = target.sharded
        self._script = SPUBLISH_SCRIPT if target.sharded else PUBLISH_SCRIPT
        self._client: Any = target.command_client()

    def publish(self, channel: str, message: str | bytes) -> str:
        """Store ``message`` in the history of ``channel`` and publish it; its event id."""
        keys = history_keys(channel)
        if self.sharded and key_slot(channel.encode()) != key_slot(keys[0].encode()):
            raise ValueError(
                f"channel {channel!r} cannot be sharded with its history: its braces make it "
                "hash to another slot than its history's keys; use a channel name without {}"
            )
        ttl = self.history.ttl
        ttl_ms = "0" if ttl is None else str(max(1, round(ttl * 1000)))
        epoch, offset = self._client.eval(
            self._script,
            2,
            *keys,
            channel,
            secrets.token_hex(8),
            self.history.maxlen,
            ttl_ms,
            message,
        )
        return Position(as_text(epoch), int(offset)).id

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ReplayPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class History:
    """The bridge's reader of histories: one command client, made on first use.

    :meth:`read` blocks on the network: the bridge calls it off the event loop (a worker
    thread of ``asyncio.to_thread``), never on its reader thread.
    """

    def __init__(self, target: Target) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._client: Any = None
        self._closed = False

    def read(self, channel: str, after: int, count: int) -> Page:
        """Up to ``count`` stored messages after offset ``after`` (0: only the position).

        :class:`ValueError` for keys that hold something else than a history
        :class:`ReplayPublisher` writes (an epoch or offset of another shape, another entry)."""
        with self._lock:
            if self._closed:
                raise ClientClosedError("this bridge is closed: its histories are not read")
            if self._client is None:
                self._client = self._target.command_client()
            client = self._client
        reply = client.eval(HISTORY_SCRIPT, 2, *history_keys(channel), after + 1, count)
        try:
            return _page(reply)
        except (TypeError, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"the keys of {channel!r} do not hold a history ReplayPublisher writes: {exc}"
            ) from None

    def reconnect(self) -> None:
        """Read through a new connection from now on: the bridge reconnected, perhaps to
        another master (Sentinel), and a pooled connection may still be on the old one, which
        takes writes until the sentinels demote it."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        with self._lock:
            client, self._client, self._closed = self._client, None, True
        if client is not None:
            client.close()


def _page(reply: Any) -> Page:
    """A reply of :data:`HISTORY_SCRIPT` as a page; ValueError (or another error of the sort)
    for anything the publish script would not have written."""
    epoch, top, raw = reply
    if not epoch:
        return Page(None, 0, [])
    position = Position.parse(f"{as_text(epoch)}:{int(top)}")
    if not position.epoch:
        raise ValueError("an empty epoch")
    entries: list[tuple[int, bytes]] = []
    for entry_id, fields in raw:
        first, dash, offset = as_text(entry_id).partition("-")
        if first != "0" or not dash or not offset.isascii() or not offset.isdigit():
            raise ValueError(f"an entry ID that is not 0-<offset>: {as_text(entry_id)[:40]!r}")
        if len(fields) != 2 or fields[0] != b"m" or not isinstance(fields[1], bytes):
            raise ValueError(f"entry {as_text(entry_id)} is not one message")
        entries.append((int(offset), fields[1]))
    return Page(position.epoch, position.offset, entries)
