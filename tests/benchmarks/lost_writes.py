"""Writes that subscribers never hear about, and the gap that makes them resync.

A resync is what a client does after it lost messages. To time one on demand, the store is
changed behind the clients' back (the scope hashes are written directly, as if the messages
announcing the writes had been lost), then a message announces a version two ahead of the
clients': they see the gap, reload the store and swap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from hotconfig import Entry, HotConfig
from hotconfig._config.wire import encode_message
from hotconfig._redis.keyspace import Keyspace, as_text

_CHUNK = 20_000  # fields per HSET, so that no single command blocks the server for long


def write_silently(
    client: redis.Redis, keyspace: Keyspace, values: Mapping[str, Any], scope: str = "global"
) -> None:
    """Put ``values`` into the store's hash of ``scope`` without bumping the version or
    publishing anything (JSON-encoded, as ConfigStore stores them)."""
    items = [(key, json.dumps(value, separators=(",", ":"))) for key, value in values.items()]
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(items), _CHUNK):
        pipe.hset(keyspace.scope(scope), mapping=dict(items[start : start + _CHUNK]))
    pipe.execute()


def remove_silently(
    client: redis.Redis, keyspace: Keyspace, keys: Iterable[str], scope: str = "global"
) -> None:
    keys = list(keys)
    for start in range(0, len(keys), _CHUNK):
        client.hdel(keyspace.scope(scope), *keys[start : start + _CHUNK])


def announce_gap(client: redis.Redis, keyspace: Keyspace, channel: str) -> tuple[int, Any]:
    """Prepare a transaction that moves the store's version two ahead and publishes only the
    second: a gap for every client. Returns ``(version, pipeline)``; ``pipeline.execute()``
    sends it, and ``config.wait_for_version(version)`` returns once the resync is live."""
    version = int(client.get(keyspace.version) or 0) + 2
    epoch = client.get(keyspace.epoch)
    message = encode_message(
        [Entry("bench.gap", version)], version, as_text(epoch) if epoch else None
    )
    pipe = client.pipeline(transaction=True)
    pipe.set(keyspace.version, version)
    pipe.publish(channel, message)
    return version, pipe


def timed_resync(client: redis.Redis, config: HotConfig[Any], timeout: float = 30.0) -> float:
    """Seconds from sending the gap until ``config`` has resynced (its receivers included)."""
    version, pipe = announce_gap(client, config.keyspace, config.channel)
    started = time.perf_counter()
    pipe.execute()
    if not config.wait_for_version(version, timeout):
        raise TimeoutError(f"the client did not resync to version {version} in {timeout}s")
    return time.perf_counter() - started
