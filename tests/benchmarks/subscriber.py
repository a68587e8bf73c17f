"""A subscriber process for the latency benchmark.

    python -m tests.benchmarks.subscriber KIND URL

KIND is ``raw`` (a redis-py subscriber thread: get_message loop, json.loads, callback) or
``hotconfig`` (a HotConfig client and an on_change receiver). Each runs in its own process so
that both can be subscribed to the same publishes without sharing a GIL. The callback notes
the message's index and ``time.perf_counter_ns()`` (CLOCK_MONOTONIC: the publisher's clock
too). It prints ``ready`` once subscribed, and on the ``bench.stop`` message one JSON line:
``{"received": {phase: [[index, received_ns], ...]}, "stats": {...}}`` (hotconfig's counters).

hotconfig applies every message already waiting in one swap and reports one change per key,
so a message overtaken by a newer value of the same key is never seen by a receiver; the
publisher side counts it as delivered when the newer one was (see latency.py).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import redis

import hotconfig

CHANNEL = "config:changes"
LATENCY_KEY = "bench.latency"
STOP_KEY = "bench.stop"


class LatencyLog:
    """When each latency message arrived, by phase; printed as JSON on the stop message."""

    def __init__(self) -> None:
        self.received: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        self.done = threading.Event()
        self.stats: dict[str, Any] = {}

    def record(self, value: Any) -> None:
        self.received[value["phase"]].append((value["i"], time.perf_counter_ns()))

    def stop(self) -> None:
        print(json.dumps({"received": self.received, "stats": self.stats}), flush=True)
        self.done.set()


def run_raw(url: str, recorder: LatencyLog) -> None:
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)
    while (message := pubsub.get_message(timeout=1.0)) is None or message["type"] != "subscribe":
        pass

    def callback(change: dict[str, Any]) -> None:
        if change["key"] == LATENCY_KEY:
            recorder.record(change["value"])
        elif change["key"] == STOP_KEY:
            recorder.stop()

    def loop() -> None:
        while not recorder.done.is_set():
            message = pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "message":
                callback(json.loads(message["data"]))

    threading.Thread(target=loop, name="raw-subscriber", daemon=True).start()
    print("ready", flush=True)
    recorder.done.wait()


def run_hotconfig(url: str, recorder: LatencyLog) -> None:
    config: hotconfig.HotConfig[Any] = hotconfig.HotConfig(url, service="bench-latency")
    config.on_change(LATENCY_KEY)(lambda change: recorder.record(change.new))

    def stop(change: hotconfig.Change) -> None:
        recorder.stats = dataclasses.asdict(config.stats)
        recorder.stop()

    config.on_change(STOP_KEY)(stop)
    if not config.start(timeout=10):
        sys.exit("the hotconfig client did not go LIVE")
    print("ready", flush=True)
    recorder.done.wait()
    config.close()


def main() -> None:
    kind, url = sys.argv[1], sys.argv[2]
    recorder = LatencyLog()
    {"raw": run_raw, "hotconfig": run_hotconfig}[kind](url, recorder)


if __name__ == "__main__":
    main()
