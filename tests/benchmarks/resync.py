"""Resync time, and how resync and ``get`` grow with the number of keys (10 → 100,000).

One client follows a store that grows from 10 to 100,000 keys. At each size the store's
values all change behind the client's back and a gap makes it resync (lost_writes.py): the
time runs from sending the gap until ``wait_for_version`` returns, so it covers reading the
store (one Lua HGETALL), decoding, merging, diffing, the swap and one change per key sent to
the receivers. The first resync at each size (which adds the new keys) is a warm-up; the
row is the median of the next ones, each of which changes every value.

``get`` at each size looks up 1,000 random keys in turn (so a large map pays its cache
misses), timed interleaved with ``dict.get`` on a copy of the same snapshot.
"""

from __future__ import annotations

import random
from typing import Any

import redis

from hotconfig import ConfigStore, HotConfig

from .lost_writes import timed_resync, write_silently
from .report import Bar, Row
from .timing import median, per_call

SIZES = (10, 100, 1_000, 10_000, 100_000)
REPEATS = {10: 9, 100: 9, 1_000: 7, 10_000: 5, 100_000: 3}
SAMPLE = 1_000


def measure(url: str, namespace: str = "bench-resync") -> list[Row]:
    store = ConfigStore(url, namespace=namespace)
    store.set("bench.seed", 1)  # give the store an epoch and a version
    client = redis.Redis.from_url(url)
    config: HotConfig[Any] = HotConfig(url, namespace=namespace, service="bench-resync")
    resync_ms: dict[int, float] = {}
    get_ns: dict[int, tuple[float, float]] = {}
    details: dict[int, list[float]] = {}
    try:
        if not config.start(timeout=10):
            raise TimeoutError("the client did not go LIVE")
        for size in SIZES:
            times = [_resync(client, config, size, rep) for rep in range(REPEATS[size] + 1)]
            details[size] = times[1:]
            resync_ms[size] = median(times[1:])
            get_ns[size] = _get_ns(config)
    finally:
        config.close()
        client.close()
        store.close()
    return _rows(resync_ms, get_ns, details)


def _resync(client: redis.Redis, config: HotConfig[Any], size: int, rep: int) -> float:
    values = {f"bench.k{i:06d}": f"value-{rep}-{i}" for i in range(size)}
    write_silently(client, config.keyspace, values)
    return timed_resync(client, config) * 1000


def _get_ns(config: HotConfig[Any]) -> tuple[float, float]:
    snapshot = config.snapshot()
    keys = random.Random(0).choices(list(snapshot), k=SAMPLE)
    names = {"c": config, "d": dict(snapshot), "keys": keys}
    t = per_call(
        {"config.get": "for k in keys: c.get(k)", "dict.get": "for k in keys: d.get(k)"},
        names,
    )
    return t["config.get"] / SAMPLE * 1e9, t["dict.get"] / SAMPLE * 1e9


def _rows(
    resync_ms: dict[int, float],
    get_ns: dict[int, tuple[float, float]],
    details: dict[int, list[float]],
) -> list[Row]:
    rows = []
    per_key_1k = resync_ms[1_000] / 1_000
    for size in SIZES:
        rows.append(
            Row(
                f"resync_{size}",
                f"resync {size:,} keys / linear from 1k",
                resync_ms[size],
                "ms",
                baseline=per_key_1k * size,
                bar=Bar("value", "<", 100.0) if size == 10_000 else None,
                details={"runs_ms": details[size]},
            )
        )
    smallest = get_ns[SIZES[0]][0]
    for size in SIZES:
        rows.append(
            Row(
                f"get_growth_{size}",
                f"config.get, {size:,} keys / at {SIZES[0]} keys",
                get_ns[size][0],
                "ns",
                baseline=smallest,
                details={"dict_get_ns": get_ns[size][1]},
            )
        )
    return rows
