"""How ``get`` and resync grow with the number of scopes a client follows (1, 3, 10).

Every scope holds the same 1,000 keys (the worst case for precedence: each key is set in every
scope, the highest one wins). ``get`` is one key, timed like the read rows; resync is the
median of 5 gap-triggered resyncs (lost_writes.py) in which every value of every scope changed.
"""

from __future__ import annotations

from typing import Any

import redis

from hotconfig import ConfigStore, HotConfig

from .lost_writes import timed_resync, write_silently
from .report import Row
from .timing import median, per_call

COUNTS = (1, 3, 10)
KEYS = 1_000
REPEATS = 5


def measure(url: str) -> list[Row]:
    client = redis.Redis.from_url(url)
    get_ns: dict[int, float] = {}
    resync_ms: dict[int, float] = {}
    try:
        for count in COUNTS:
            get_ns[count], resync_ms[count] = _measure_scopes(client, url, count)
    finally:
        client.close()
    rows = []
    for count in COUNTS:
        rows.append(
            Row(
                f"scopes_get_{count}",
                f"config.get, {count} scope(s) / 1 scope",
                get_ns[count],
                "ns",
                baseline=get_ns[1],
            )
        )
    for count in COUNTS:
        rows.append(
            Row(
                f"scopes_resync_{count}",
                f"resync {count} x {KEYS:,} keys / 1 scope",
                resync_ms[count],
                "ms",
                baseline=resync_ms[1],
            )
        )
    return rows


def _measure_scopes(client: redis.Redis, url: str, count: int) -> tuple[float, float]:
    namespace = f"bench-scopes-{count}"
    scopes = ["global", *(f"layer:{i}" for i in range(1, count))]
    store = ConfigStore(url, namespace=namespace)
    store.set("bench.seed", 1)
    config: HotConfig[Any] = HotConfig(
        url, namespace=namespace, scopes=scopes, service="bench-scopes"
    )
    try:
        if not config.start(timeout=10):
            raise TimeoutError("the client did not go LIVE")
        times = []
        for rep in range(REPEATS + 1):
            for scope in scopes:
                values = {f"bench.k{i:04d}": f"{scope}-{rep}-{i}" for i in range(KEYS)}
                write_silently(client, config.keyspace, values, scope)
            times.append(timed_resync(client, config) * 1000)
        names = {"c": config, "k": "bench.k0500"}
        get = per_call({"config.get": "c.get(k)"}, names)["config.get"] * 1e9
    finally:
        config.close()
        store.close()
    return get, median(times[1:])
