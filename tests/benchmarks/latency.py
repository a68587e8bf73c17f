"""Publish → receiver latency: hotconfig's on_change against a raw redis-py subscriber thread.

Both subscribers run at once, each in its own process (tests/benchmarks/subscriber.py), so
they see the very same publishes under the same load. One publisher in this process sends
paced messages (one about every millisecond) and notes ``time.perf_counter_ns()`` just
before each send; each subscriber notes the same clock (CLOCK_MONOTONIC, shared by all
processes) when its callback runs. A message whose value hotconfig merged into a newer one
(two waiting at once: one swap, one change per key) counts as delivered when the newer one
was. Two phases:

- ``raw``: seed-format PUBLISH (no version), as any publisher would send;
- ``versioned``: ``ConfigStore.set`` (Lua script: write, version, history, PUBLISH).

The client holds 1,000 keys. The first messages of each phase are a warm-up and not counted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from hotconfig import ConfigStore

from .report import Bar, Row
from .subscriber import CHANNEL, LATENCY_KEY, STOP_KEY
from .timing import percentile

MESSAGES = 2_000
WARMUP = 200
SPACING = 0.001
_ROOT = Path(__file__).resolve().parents[2]


def measure(url: str, store: ConfigStore) -> list[Row]:
    store.set_many({f"bench.k{i:04d}": f"value-{i}" for i in range(1_000)})
    workers = {kind: _spawn(kind, url) for kind in ("raw", "hotconfig")}
    sent: dict[str, list[int]] = {}
    try:
        with redis.Redis.from_url(url) as publisher:
            sent["raw"] = _paced(lambda value: _publish(publisher, LATENCY_KEY, value), "raw")
            sent["versioned"] = _paced(lambda value: store.set(LATENCY_KEY, value), "versioned")
            _publish(publisher, STOP_KEY, time.time_ns())
        received = {kind: _collect(process) for kind, process in workers.items()}
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return [row for phase in sent for row in _rows(phase, sent[phase], received)]


def _spawn(kind: str, url: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.subscriber", kind, url],
        cwd=_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        process.kill()
        raise RuntimeError(f"the {kind} subscriber did not start (it said {line!r})")
    return process


def _collect(process: subprocess.Popen[str]) -> dict[str, Any]:
    output, _ = process.communicate(timeout=30)
    data: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return data


def _publish(publisher: redis.Redis, key: str, value: Any) -> None:
    publisher.publish(CHANNEL, json.dumps({"key": key, "value": value, "scope": "global"}))


def _paced(send: Callable[[dict[str, Any]], Any], phase: str) -> list[int]:
    """Send WARMUP + MESSAGES values about SPACING apart; return the send times (ns)."""
    sent = []
    next_at = time.perf_counter()
    for i in range(WARMUP + MESSAGES):
        next_at += SPACING
        counted = i >= WARMUP
        started = time.perf_counter_ns()
        send({"i": i - WARMUP, "t": started, "phase": phase if counted else "warmup"})
        if counted:
            sent.append(started)
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    time.sleep(0.2)  # let the last messages land before the next phase starts
    return sent


def _latencies_us(sent: list[int], received: list[list[int]]) -> tuple[list[float], int]:
    """Latency of every sent message, and how many were merged into a later one."""
    at: list[int | None] = [None] * len(sent)
    for index, when in received:
        at[index] = when
    latencies, merged, later = [], 0, None
    for index in reversed(range(len(sent))):
        if at[index] is None:
            merged += 1
        else:
            later = at[index]
        if later is None:
            raise RuntimeError(f"message {index} and every later one never arrived")
        latencies.append((later - sent[index]) / 1000)
    return latencies, merged


def _rows(phase: str, sent: list[int], received: dict[str, Any]) -> list[Row]:
    label = {"raw": "raw PUBLISH", "versioned": "ConfigStore.set"}[phase]
    hot, merged = _latencies_us(sent, received["hotconfig"]["received"].get(phase, []))
    raw, lost = _latencies_us(sent, received["raw"]["received"].get(phase, []))
    counts = {"sent": len(sent), "hotconfig_merged": merged, "raw_missing": lost}
    stats = received["hotconfig"]["stats"]
    return [
        Row(
            f"latency_p50_{phase}",
            f"publish->receiver p50, {label} / raw redis-py",
            percentile(hot, 50),
            "us",
            baseline=percentile(raw, 50),
            bar=Bar("ratio", "<=", 1.1),
            details=counts,
        ),
        Row(
            f"latency_p99_{phase}",
            f"publish->receiver p99, {label} / raw redis-py",
            percentile(hot, 99),
            "us",
            baseline=percentile(raw, 99),
            bar=Bar("value", "<", 1000.0),
            details={
                "hotconfig_max_us": max(hot),
                "raw_max_us": max(raw),
                "hotconfig_stats_at_end": stats,
                **counts,
            },
        ),
    ]
