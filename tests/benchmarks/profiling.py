"""``--profile``: where the time of a 50k-message burst goes, for the throughput rows.

Two views. First, costs per message without any profiler: the redis-py read alone (the floor
of every subscriber built on ``get_message``), the raw baseline (read + ``json.loads``), the
hotconfig client, and hotconfig's own steps timed offline, without Redis (``wire.parse``;
``ConfigState.stage`` + ``commit`` in drains of 10,000 as the listener does). Second, cProfile
of the listener thread during one burst (cProfile only sees the thread that enables it, so a
one-shot ``threading.setprofile`` hook enables it as that thread starts). Profiling slows
everything down about 2x: read its shares, not its times.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from hotconfig import ConfigStore, HotConfig
from hotconfig._config.schema import Schema
from hotconfig._config.state import ConfigState
from hotconfig._config.wire import parse
from hotconfig._redis.keyspace import StoreSnapshot
from hotconfig.testing.server import EmbeddedServer

from . import burst
from .throughput import COUNT, KEYS, TIMEOUT, _hotconfig_round, _raw_round

DRAIN = 10_000  # listener._DRAIN_LIMIT: messages applied in one swap at most


def profile_burst(server: EmbeddedServer, store: ConfigStore, top: int = 20) -> str:
    store.set_many({f"bench.k{i:04d}": f"value-{i}" for i in range(KEYS)})
    out = io.StringIO()
    out.write(f"per message, {COUNT:,}-message raw burst, best of 3 (no profiler):\n")
    for label, us in _costs(server).items():
        out.write(f"  {label:<60} {us:5.2f} us\n")
    out.write("\ncProfile of the listener thread during one burst, by own time:\n")
    stats = pstats.Stats(_profiled_round(server), stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _costs(server: EmbeddedServer) -> dict[str, float]:
    def burst_us(run: Callable[[bytes, str], float]) -> float:
        best = float("inf")
        for round_ in range(3):
            token = f"profile-{round_}-{time.time_ns()}"
            best = min(best, run(burst.raw_burst(COUNT, KEYS, token), token))
        return best / COUNT * 1e6

    payloads = [
        json.dumps({"key": f"bench.k{i % KEYS:04d}", "value": i, "scope": "global"}).encode()
        for i in range(COUNT)
    ]
    state = ConfigState(Schema(None), ("global",))
    state.resync(
        StoreSnapshot("bench", 1, {"global": {f"bench.k{i:04d}": "value" for i in range(KEYS)}})
    )

    def apply() -> None:
        for start in range(0, COUNT, DRAIN):
            for payload in payloads[start : start + DRAIN]:
                state.stage(parse(payload))
            state.commit()

    parse_us = _offline_us(lambda: [parse(p) for p in payloads])
    return {
        "redis-py get_message alone (floor)": burst_us(
            lambda payload, token: _raw_round(server, payload, token, decode=False)
        ),
        "raw baseline: get_message + json.loads": burst_us(
            lambda payload, token: _raw_round(server, payload, token)
        ),
        "hotconfig client (listener thread)": burst_us(
            lambda payload, token: _hotconfig_round(server, payload, token)[0]
        ),
        "  offline: json.loads alone": _offline_us(lambda: [json.loads(p) for p in payloads]),
        "  offline: wire.parse (json.loads + checks + Entry/Message)": parse_us,
        "  offline: stage + commit (apply, swap), parse excluded": _offline_us(apply) - parse_us,
    }


def _offline_us(action: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best / COUNT * 1e6


def _profiled_round(server: EmbeddedServer) -> cProfile.Profile:
    token = f"profile-{time.time_ns()}"
    payload = burst.raw_burst(COUNT, KEYS, token)
    profiler = cProfile.Profile()

    def enable_in_new_thread(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        profiler.enable()

    config: HotConfig[Any] = HotConfig(server.url, service="bench-profile")
    done = threading.Event()
    config.on_change(burst.DONE_KEY)(lambda change: done.set())
    threading.setprofile(enable_in_new_thread)
    try:
        started = config.start(timeout=10)
    finally:
        threading.setprofile(None)
    try:
        if not started:
            raise TimeoutError("the client did not go LIVE")
        _, sock = burst.send(server.host, server.port, payload)
        if not done.wait(TIMEOUT):
            raise TimeoutError("the burst was not applied in time")
        sock.close()
    finally:
        config.close()  # the listener thread ends, and its profile with it
    return profiler
