"""Fan-out: one write reaching 1, 100, 500 and 1,000 subscribers, beside as many raw redis-py ones.

At each count, first as many raw redis-py subscribers (the baseline: one connection each, a
get_message loop, json.loads), then as many real HotConfig clients (health reports off) are
held by four worker processes (tests/benchmarks/fanout_worker.py), and this process writes
through the real write path, ``ConfigStore.set``, values padded so that the published message
is 256 B, then 4 KB. Measured for each kind, count and size:

- **publish-to-all**: for each of ``PUBLISHES`` writes paced ``_interval(count)`` apart (not a
  burst), the time from just before ``set`` until the *last* subscriber's receiver ran (the
  value carries its send time; receivers note ``time.perf_counter_ns()``, CLOCK_MONOTONIC,
  shared by the processes); p50 and p99 over the writes, and the p50 over every (subscriber,
  write) pair. The subscribers share the machine's cores with the server and the publisher, so
  at high counts this is bounded by the subscribers' own CPU.
- **server CPU per publish**: the server's user + system CPU (``INFO``) over the paced writes,
  less its idle rate with the same subscribers held (``IDLE`` seconds measured before: a
  HotConfig client PINGs every second and polls every five), divided by the writes. Also the
  bytes the server wrote per publish, measured the same way.
- **peak output buffer**: ``CLIENT LIST TYPE pubsub`` sampled on a thread while ``BURST``
  writes go out back to back: the largest ``omem`` of one subscriber (what
  ``client-output-buffer-limit pubsub`` compares) and the largest sum over all. The bench
  server runs with that limit off (``SERVER_ARGS`` in __main__.py), so a peak over a limit is
  reported here instead of ending in a disconnect. Whatever the loopback socket buffers hold
  is not in ``omem``.
- **restart convergence** (the largest count, HotConfig only): the server killed and started
  again, empty, on the same port; one ``ConfigStore.set`` right after it answers PING; the time
  until every client's receiver got that value, and when the clients went LIVE again (the
  backoff jitter spreads them), ``RESTARTS`` trials.

``FANOUT_COUNTS=1,100`` (environment) runs other counts. All rows are info: the issue that
asked for these figures sets no bar; the ratios say what hotconfig adds to a raw subscriber.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hotconfig import ConfigStore
from hotconfig.testing.server import EmbeddedServer

from .fanout_pool import Arrival, BufferSampler, Pool, ensure_maxclients, server_counters
from .fanout_rows import rows
from .report import Row
from .timing import percentile

COUNTS = tuple(int(n) for n in os.environ.get("FANOUT_COUNTS", "1,100,500,1000").split(","))
SIZES = (256, 4_096)
KINDS = ("raw", "hotconfig")
WORKERS = 4
PUBLISHES = 100
WARMUP = 5
KEYS = 16  # the writes cycle over this many keys: the store stays small for each new client
IDLE = 1.5
BURST = 50
RESTARTS = 2
TIMEOUT = 30.0


def measure(server: EmbeddedServer, store: ConfigStore) -> list[Row]:
    # A HotConfig client holds two connections (subscription, commands).
    ensure_maxclients(server, 2 * max(COUNTS) + 64)
    pads = {size: _pad_for(server, store, size) for size in SIZES}
    pool = Pool(server.url, WORKERS)
    phases: dict[tuple[str, int], dict[str, Any]] = {}
    restarts: list[dict[str, Any]] = []
    try:
        for count in COUNTS:
            for kind in KINDS:
                phases[kind, count] = _phase(server, store, pool, kind, count, pads)
                if kind == "hotconfig" and count == max(COUNTS):
                    restarts = [_restart(server, pool, count, trial) for trial in range(RESTARTS)]
                pool.release()
    finally:
        pool.close()
    return rows(phases, restarts, COUNTS, SIZES, BURST)


def _pad_for(server: EmbeddedServer, store: ConfigStore, size: int) -> str:
    """The padding that makes a published message ``size`` bytes (within a few)."""
    with server.client() as client, client.pubsub() as pubsub:
        pubsub.subscribe(store.channel)
        pubsub.get_message(timeout=2.0)
        store.set("fanout.k00", _value("calibrate", 0, ""))
        message = pubsub.get_message(timeout=2.0)
        while message is None or message["type"] != "message":
            message = pubsub.get_message(timeout=2.0)
    return "x" * max(0, size - len(message["data"]))


def _value(tag: str, index: int, pad: str) -> dict[str, Any]:
    # Fixed widths, so every message of a size is as long as the calibrated one.
    return {"tag": tag, "i": index, "t": time.perf_counter_ns(), "pad": pad}


def _interval(count: int) -> float:
    """Seconds between paced writes: room for every subscriber to take one before the next."""
    return 0.005 + count * 60e-6


def _phase(
    server: EmbeddedServer,
    store: ConfigStore,
    pool: Pool,
    kind: str,
    count: int,
    pads: dict[int, str],
) -> dict[str, Any]:
    with server.client() as probe:
        before = server_counters(probe)
        held_s = pool.hold(kind, count)
        held = server_counters(probe)
        time.sleep(IDLE)
        idle = server_counters(probe)
        idle_rate = (idle.cpu_s - held.cpu_s) / IDLE, (idle.net_out - held.net_out) / IDLE
    process = pool.collect()  # clears what holding produced
    phase: dict[str, Any] = {
        "hold_s": held_s,
        "server_memory_per_client": (held.memory - before.memory) / count,
        "idle_cpu_share": idle_rate[0],
        "worker_threads": process.threads,
        "worker_rss_mb": process.rss_mb,
    }
    for size in SIZES:
        tag = f"{kind}-{count}-{size}"
        phase[f"paced_{size}"] = _paced(server, store, pool, tag, count, pads[size], idle_rate)
        phase[f"burst_{size}"] = _burst(server, store, pool, f"burst-{tag}", count, pads[size])
    return phase


def _paced(
    server: EmbeddedServer,
    store: ConfigStore,
    pool: Pool,
    tag: str,
    count: int,
    pad: str,
    idle_rate: tuple[float, float],
) -> dict[str, Any]:
    interval = _interval(count)
    with server.client() as probe:
        start, started = server_counters(probe), time.perf_counter()
        next_at = started
        for index in range(WARMUP + PUBLISHES):
            next_at += interval
            store.set(f"fanout.k{index % KEYS:02d}", _value(tag, index, pad))
            time.sleep(max(0.0, next_at - time.perf_counter()))
        arrivals, stats = _gather(pool, tag, count, WARMUP + PUBLISHES - 1)
        end, elapsed = server_counters(probe), time.perf_counter() - started
    writes = WARMUP + PUBLISHES
    return {
        "interval_s": interval,
        "cpu_us_per_publish": (end.cpu_s - start.cpu_s - idle_rate[0] * elapsed) / writes * 1e6,
        "cpu_user_share": (end.cpu_user_s - start.cpu_user_s) / (end.cpu_s - start.cpu_s),
        "net_bytes_per_publish": (end.net_out - start.net_out - idle_rate[1] * elapsed) / writes,
        "stats": stats,
        **_deliveries(arrivals, count),
    }


def _gather(pool: Pool, tag: str, count: int, last: int) -> tuple[list[Arrival], dict[str, int]]:
    """Collect until every subscriber got write ``last``: its arrivals, the clients' counters."""
    arrivals: list[Arrival] = []
    done: set[int] = set()
    deadline = time.monotonic() + TIMEOUT
    while True:
        collected = pool.collect()
        new = collected.arrivals.get(tag, [])
        arrivals += new
        done.update(arrival.client for arrival in new if arrival.write == last)
        if len(done) == count:
            return arrivals, collected.stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(done)}/{count} subscribers got {tag} {last} in {TIMEOUT}s")
        time.sleep(0.1)


def _deliveries(arrivals: list[Arrival], count: int) -> dict[str, Any]:
    """Publish-to-all and per-subscriber latencies (ms) of the counted writes.

    A write a HotConfig client merged into a later one (two values of one key waiting in one
    read) counts as delivered when the later one was, as in latency.py.
    """
    sent: dict[int, int] = {}
    received: dict[int, dict[int, int]] = {}
    for arrival in arrivals:
        sent[arrival.write] = arrival.sent_ns
        received.setdefault(arrival.client, {})[arrival.write] = arrival.received_ns
    last = WARMUP + PUBLISHES - 1
    if len(received) != count or len(sent) != last + 1:
        raise RuntimeError(
            f"{len(received)}/{count} subscribers heard, {len(sent)}/{last + 1} writes arrived"
        )
    to_all = [0] * (last + 1)
    each: list[float] = []
    merged = 0
    for times in received.values():
        later: int | None = None
        for index in reversed(range(last + 1)):
            if index in times:
                later = times[index]
            else:
                merged += 1
            if later is None:
                raise RuntimeError(f"write {index} and every later one missed a subscriber")
            to_all[index] = max(to_all[index], later)
            if index >= WARMUP:
                each.append((later - sent[index]) / 1e6)
    latencies = [(to_all[i] - sent[i]) / 1e6 for i in range(WARMUP, last + 1)]
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
        "each_p50_ms": percentile(each, 50),
        "each_p99_ms": percentile(each, 99),
        "merged": merged,
    }


def _burst(
    server: EmbeddedServer, store: ConfigStore, pool: Pool, tag: str, count: int, pad: str
) -> dict[str, Any]:
    """BURST writes back to back while the output buffers are sampled; until all drained."""
    with BufferSampler(server) as sampler:
        time.sleep(0.05)
        started = time.perf_counter_ns()
        for index in range(BURST):
            store.set(f"fanout.k{index % KEYS:02d}", _value(tag, index, pad))
        written = time.perf_counter_ns()
        arrivals, _ = _gather(pool, tag, count, BURST - 1)
        time.sleep(0.05)
    with server.client() as probe:
        recent_max = int(probe.info("clients")["client_recent_max_output_buffer"])
    return {
        "written_ms": (written - started) / 1e6,
        "drained_ms": (max(a.received_ns for a in arrivals if a.write == BURST - 1) - started)
        / 1e6,
        "peak_omem": sampler.peak_omem,
        "peak_total_omem": sampler.peak_total_omem,
        "peak_tot_mem": sampler.peak_tot_mem,
        "recent_max_output_buffer": recent_max,
        "samples": sampler.samples,
    }


def _restart(server: EmbeddedServer, pool: Pool, count: int, trial: int) -> dict[str, Any]:
    """Kill the server, start it empty, write once: when did every client hold that write?"""
    pool.collect()
    tag = f"restart-{trial}"
    killed = time.perf_counter_ns()
    server.kill()
    server.start()
    back = time.perf_counter_ns()
    ensure_maxclients(server, 2 * count + 64)
    with ConfigStore(server.url) as store:  # a new store: the old one's socket died with it
        store.set("fanout.restart", _value(tag, 0, ""))
    written = time.perf_counter_ns()
    converged: dict[int, int] = {}
    statuses: list[tuple[int, str, int]] = []
    deadline = time.monotonic() + TIMEOUT
    while len(converged) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(converged)}/{count} clients converged in {TIMEOUT}s")
        time.sleep(0.1)
        collected = pool.collect()
        statuses += collected.statuses
        for arrival in collected.arrivals.get(tag, []):
            converged.setdefault(arrival.client, arrival.received_ns)
    with server.client() as probe:
        counters = server_counters(probe)
    live = sorted((ns - back) / 1e9 for _, status, ns in statuses if status == "LIVE")
    interrupted = sorted((ns - killed) / 1e9 for _, status, ns in statuses if status != "LIVE")
    return {
        "converged_s": (max(converged.values()) - back) / 1e9,
        "first_converged_s": (min(converged.values()) - back) / 1e9,
        "set_after_back_s": (written - back) / 1e9,
        "live_first_s": live[0],
        "live_last_s": live[-1],
        "live_count": len(live),
        "interrupted_first_s": interrupted[0] if interrupted else None,
        "interrupted_last_s": interrupted[-1] if interrupted else None,
        "connections_accepted": counters.connections,
        "server_cpu_s": counters.cpu_s,
    }
