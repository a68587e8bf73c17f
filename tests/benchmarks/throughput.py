"""Apply throughput on a burst: how fast a subscriber works through 50,000 waiting messages.

The subject is subscribed and idle; the burst (burst.py) is written to the server in one
``sendall``; the clock runs from the first byte sent until the subject has handled the last
message (a marker key). The subjects take turns, one at a time, five rounds each; each row
compares the best round of each (the median is in the details):

- raw: a redis-py decode loop on a thread: ``get_message`` + ``json.loads`` per message;
- hotconfig: a fresh client holding 1,000 keys, whose on_change receiver for the marker
  notes the time (the snapshot holding the last message is live by then).

Two kinds of burst: seed-format messages (no version), and the store's wire format with
consecutive versions (what ``ConfigStore`` publishes; sent as plain PUBLISH commands because
50,000 Lua writes would measure the server's script speed instead of the subscriber).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from hotconfig import ConfigStore, HotConfig
from hotconfig.fleet.reporter import Reporter
from hotconfig.testing.server import EmbeddedServer

from . import burst
from .report import Bar, Row
from .timing import median

COUNT = 50_000
KEYS = 1_000
ROUNDS = 5
TIMEOUT = 60.0


def measure(server: EmbeddedServer, store: ConfigStore) -> list[Row]:
    store.set_many({f"bench.k{i:04d}": f"value-{i}" for i in range(KEYS)})
    rows = []
    for kind in ("raw", "versioned"):
        rates: dict[str, list[float]] = {"raw": [], "hotconfig": []}
        applied = []
        for round_ in range(ROUNDS):
            for subject in ("raw", "hotconfig") if round_ % 2 == 0 else ("hotconfig", "raw"):
                token = f"{kind}-{subject}-{round_}-{time.time_ns()}"
                payload = _payload(kind, store, token)
                if subject == "raw":
                    seconds = _raw_round(server, payload, token)
                else:
                    seconds, stats = _hotconfig_round(server, payload, token)
                    applied.append(stats)
                rates[subject].append(COUNT / seconds)
        label = {"raw": "raw PUBLISH", "versioned": "versioned"}[kind]
        rows.append(
            Row(
                f"throughput_{kind}",
                f"apply throughput, {COUNT // 1000}k {label} burst / raw redis-py loop",
                max(rates["hotconfig"]),
                "msg/s",
                baseline=max(rates["raw"]),
                bar=Bar("ratio", ">=", 1.3),
                lower_is_better=False,
                details={
                    "rounds": rates,
                    "median_ratio": median(rates["hotconfig"]) / median(rates["raw"]),
                    "hotconfig_applied": applied,
                },
            )
        )
    return rows


def _payload(kind: str, store: ConfigStore, token: str) -> bytes:
    if kind == "raw":
        return burst.raw_burst(COUNT, KEYS, token)
    epoch = store.epoch
    assert epoch is not None
    digest = store.snapshot([]).digest
    return burst.versioned_burst(COUNT, KEYS, token, store.version, epoch, digest)


def _raw_round(server: EmbeddedServer, payload: bytes, token: str, decode: bool = True) -> float:
    """Seconds for a redis-py loop to read the burst; with ``decode=False`` it only reads
    (get_message and nothing else: the floor of any subscriber built on get_message)."""
    client = server.client()
    pubsub = client.pubsub()
    pubsub.subscribe(burst.CHANNEL)
    while (message := pubsub.get_message(timeout=1.0)) is None or message["type"] != "subscribe":
        pass
    finished: list[float] = []
    marker = token.encode()

    def loop() -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1.0)
            if message is None or message["type"] != "message":
                continue
            if decode:
                change = json.loads(message["data"])
                last = change["key"] == burst.DONE_KEY and change["value"] == token
            else:
                last = marker in message["data"]
            if last:
                finished.append(time.perf_counter())
                return

    thread = threading.Thread(target=loop, name="raw-decode-loop")
    thread.start()
    started, sock = burst.send(server.host, server.port, payload)
    thread.join()
    sock.close()
    pubsub.close()
    client.close()
    if not finished:
        raise TimeoutError(f"the raw loop did not see the end of the burst in {TIMEOUT}s")
    return finished[0] - started


def _hotconfig_round(
    server: EmbeddedServer, payload: bytes, token: str, *, health: bool = False
) -> tuple[float, dict[str, Any]]:
    """With ``health``, the client's health reporter runs too (its cost is barrier.py's row)."""
    config: HotConfig[Any] = HotConfig(server.url, service="bench-throughput", health=False)
    reporter = Reporter(config, url=server.url) if health else None
    finished: list[float] = []
    done = threading.Event()

    @config.on_change(burst.DONE_KEY)
    def last(change: Any) -> None:
        if change.new == token:
            finished.append(time.perf_counter())
            done.set()

    try:
        if not config.start(timeout=10):
            raise TimeoutError("the hotconfig client did not go LIVE")
        if reporter is not None:
            reporter.start()
        started, sock = burst.send(server.host, server.port, payload)
        done.wait(TIMEOUT)
        sock.close()
        stats = config.stats
    finally:
        if reporter is not None:
            reporter.close()
        config.close()
    if not finished:
        raise TimeoutError(f"the client did not apply the end of the burst in {TIMEOUT}s")
    return finished[0] - started, {"applied": stats.applied, "resyncs": stats.resyncs}
