"""Memory a client holds for 10,000 keys, against a plain dict of the same keys and values.

tracemalloc counts the Python allocations that stay alive (after ``gc.collect()``) between a
LIVE client with an empty store and the same client after ``ConfigStore.set_many`` of 10,000
keys has been applied: the snapshot, the per-scope layers, the receiver cache, the key and
value objects. The baseline is ``json.loads`` of the same values into a dict. Short string
values (``"value-1234"``); larger values cost the same in both.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable
from typing import Any

from hotconfig import ConfigStore, HotConfig

from .report import Row

KEYS = 10_000


def measure(url: str, namespace: str = "bench-memory") -> list[Row]:
    values = {f"bench.k{i:05d}": f"value-{i}" for i in range(KEYS)}
    encoded = json.dumps(values)
    baseline = _retained(lambda: json.loads(encoded))
    store = ConfigStore(url, namespace=namespace)
    config: HotConfig[Any] = HotConfig(url, namespace=namespace, service="bench-memory")
    try:
        if not config.start(timeout=10):
            raise TimeoutError("the client did not go LIVE")

        def load() -> None:
            if not config.wait_for_version(store.set_many(values), timeout=30):
                raise TimeoutError("the client did not apply 10,000 keys")

        held = _retained(load)
        count = len(config.snapshot())
    finally:
        config.close()
        store.close()
    return [
        Row(
            "memory_10k",
            f"memory for {count:,} keys / plain dict",
            held / 1e6,
            "MB",
            baseline=baseline / 1e6,
            details={"bytes_per_key": held / count, "dict_bytes_per_key": baseline / KEYS},
        )
    ]


def _retained(action: Callable[[], Any]) -> int:
    """Bytes allocated by ``action`` (and by other threads meanwhile) still alive after it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = action()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before
