"""Fan-out: one write reaching 1, 100, 500 and 1,000 subscribers, beside as many raw redis-py ones.

At each count, eight worker processes (tests/benchmarks/fanout_worker.py) hold as many raw
redis-py subscribers (the baseline: one connection each, a get_message loop, json.loads) and
as many real HotConfig clients (health reports off), both at once: the raw ones listen on a
channel of their own, fed by a second store, so each write reaches one kind only, and writes
to the two kinds alternate, under the same load. This process writes through the real write
path, ``ConfigStore.set``, values padded so that the published message is 256 B, then 4 KB.
Measured for each kind, count and size:

- **publish-to-all**: for each of ``PUBLISHES`` writes (fewer above 100 subscribers: ``_publishes``)
  paced ``_interval(count)`` apart (not a burst), the time from just before ``set`` until the
  *last* subscriber's receiver ran (the value carries its send time; receivers note
  ``time.perf_counter_ns()``, CLOCK_MONOTONIC, shared by the processes); p50 and p99 over
  the writes, and the p50 over every (subscriber, write) pair. The subscribers share the
  machine's two cores with the server and the publisher, so at high counts this is bounded by
  the subscribers' own CPU, which is measured too: the receiving thread's CPU time per message.
- **server CPU per publish**: the server's user + system CPU (``INFO``) read before every
  write; a write's cost is the CPU until the next write, less the idle rate with the same
  subscribers held (``IDLE`` seconds measured before, read as often: a HotConfig client PINGs
  every second and polls every five). Also the bytes the server wrote per publish, alike.
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
import statistics
import time
from collections import defaultdict
from typing import Any, NamedTuple

from hotconfig import ConfigStore
from hotconfig.testing.server import EmbeddedServer

from .fanout_pool import (
    Arrival,
    BufferSampler,
    Collected,
    Pool,
    ServerCounters,
    ensure_maxclients,
    server_counters,
)
from .fanout_rows import rows
from .report import Row
from .timing import percentile

COUNTS = tuple(int(n) for n in os.environ.get("FANOUT_COUNTS", "1,100,500,1000").split(","))
SIZES = (256, 4_096)
WORKERS = 8
PUBLISHES = 100
WARMUP = 5
KEYS = 16  # the writes cycle over this many keys: the store stays small for each new client
IDLE = 1.5
BURST = 50
RESTARTS = 2
TIMEOUT = 30.0
RAW_CHANNEL = "fanout:raw"
RAW_NAMESPACE = "rawfanout"  # as long as "hotconfig": the messages are as long


class Idle(NamedTuple):
    """Rates with the subscribers held and nothing written: what to subtract from a write."""

    server_cpu: float  # server CPU seconds per second
    net_out: float  # bytes per second the server wrote (PONGs, poll replies)


def measure(server: EmbeddedServer, store: ConfigStore) -> list[Row]:
    # A HotConfig client holds two connections (subscription, commands), a raw one one.
    ensure_maxclients(server, 3 * max(COUNTS) + 64)
    with ConfigStore(server.url, channel=RAW_CHANNEL, namespace=RAW_NAMESPACE) as raw_store:
        stores = {"raw": raw_store, "hotconfig": store}
        pads = {
            (kind, size): _pad_for(server, stores[kind], size) for kind in stores for size in SIZES
        }
        pool = Pool(server.url, WORKERS)
        phases: dict[tuple[str, int], dict[str, Any]] = {}
        restarts: list[dict[str, Any]] = []
        try:
            for count in COUNTS:
                phases.update(_phase(server, stores, pool, count, pads))
                if count == max(COUNTS):
                    pool.release("raw")
                    restarts = [_restart(server, pool, count, trial) for trial in range(RESTARTS)]
                pool.release()
        finally:
            pool.close()
    return rows(phases, restarts, COUNTS, SIZES, BURST)


def _pad_for(server: EmbeddedServer, store: ConfigStore, size: int) -> str:
    """The padding that makes a message of ``store`` ``size`` bytes (within a few)."""
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
    """Seconds between paced writes: room for every subscriber to take one before the next.

    The subscribers share two cores here, and a message costs each more CPU the more clients
    its process holds (``client_cpu_us_per_message``: about 150 us at 1, 230 us at 500, 450 us
    at 1,000 in one run), so the spacing grows faster than the count: the figure is meant to
    be a delivery time, not a backlog.
    """
    return max(0.005 + count * 250e-6, count**2 * 0.5e-6)


def _publishes(count: int) -> int:
    """Fewer writes where each is spaced widely, to keep the section within a few minutes."""
    return PUBLISHES if count <= 100 else PUBLISHES // 2 if count <= 500 else PUBLISHES // 4


def _phase(
    server: EmbeddedServer,
    stores: dict[str, ConfigStore],
    pool: Pool,
    count: int,
    pads: dict[tuple[str, int], str],
) -> dict[tuple[str, int], dict[str, Any]]:
    """Hold ``count`` of each kind, then the paced writes and the bursts of every size."""
    phases: dict[tuple[str, int], dict[str, Any]] = {}
    with server.client() as probe:
        before = server_counters(probe)
        idle: dict[str, Idle] = {}
        for kind in stores:
            held_s = pool.hold(kind, count, RAW_CHANNEL)
            pool.collect()  # clears what holding did
            held = server_counters(probe)
            idle[kind], after = _idle(probe, _interval(count), held)
            process = pool.collect()
            phases[kind, count] = {
                "hold_s": held_s,
                # Measured after IDLE s: the server shrinks idle clients' buffers in its cron.
                "server_memory_per_client": (after.memory - before.memory) / count,
                "idle_cpu_share": idle[kind].server_cpu,
                "worker_threads": process.threads,
                "worker_rss_mb": process.rss_mb,
            }
            before = after
    # Held both: the second kind's idle rate is the sum of both.
    total = idle["hotconfig"]
    phases["hotconfig", count]["idle_cpu_share"] -= idle["raw"].server_cpu
    for size in SIZES:
        paced = _paced(server, stores, pool, count, size, {k: pads[k, size] for k in stores}, total)
        for kind in stores:
            phases[kind, count][f"paced_{size}"] = paced[kind]
            tag = f"burst-{kind}-{count}-{size}"
            phases[kind, count][f"burst_{size}"] = _burst(
                server, stores[kind], pool, tag, count, pads[kind, size]
            )
    return phases


def _idle(probe: Any, interval: float, held: ServerCounters) -> tuple[Idle, ServerCounters]:
    """The server's idle rates, read every ``interval`` as the paced writes will read them."""
    started = time.perf_counter()
    next_at = started
    while (now := time.perf_counter()) < started + IDLE:
        server_counters(probe)
        next_at += interval
        time.sleep(max(0.0, next_at - now))
    after, elapsed = server_counters(probe), time.perf_counter() - started
    rates = Idle((after.cpu_s - held.cpu_s) / elapsed, (after.net_out - held.net_out) / elapsed)
    return rates, after


def _paced(
    server: EmbeddedServer,
    stores: dict[str, ConfigStore],
    pool: Pool,
    count: int,
    size: int,
    pads: dict[str, str],
    idle: Idle,
) -> dict[str, dict[str, Any]]:
    """Writes to each kind in turn, ``_interval(count)`` apart; what each cost and delivered."""
    interval, writes = _interval(count), WARMUP + _publishes(count)
    tags = {kind: f"{kind}-{count}-{size}" for kind in stores}
    cost = _write_alternately(server, stores, tags, pads, interval, writes, idle)
    results = {}
    by_tag, collected = _gather(pool, list(tags.values()), count, writes - 1)
    for kind, tag in tags.items():
        arrivals = by_tag[tag]
        cpu = [c for c, _ in cost[kind][WARMUP:]]
        results[kind] = {
            "interval_s": interval,
            "writes": writes,
            "cpu_us_per_publish": statistics.mean(cpu) * 1e6,
            "cpu_us_per_publish_p50": percentile(cpu, 50) * 1e6,
            "net_bytes_per_publish": statistics.mean(b for _, b in cost[kind][WARMUP:]),
            "client_cpu_us_per_message": _thread_cpu_us(arrivals),
            "stats": collected.stats
            if kind == "hotconfig"
            else {"read_timeouts": collected.stats["raw_read_timeouts"]},
            **_deliveries(arrivals, count, writes),
        }
    return results


def _write_alternately(
    server: EmbeddedServer,
    stores: dict[str, ConfigStore],
    tags: dict[str, str],
    pads: dict[str, str],
    interval: float,
    writes: int,
    idle: Idle,
) -> dict[str, list[tuple[float, float]]]:
    """``writes`` writes to each store in turn; per kind, each write's (server CPU s, bytes):
    the server's counters from just before it to just before the next write, less idle."""
    cost: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with server.client() as probe:
        previous: tuple[str, ServerCounters, float] | None = None
        next_at = time.perf_counter()
        for index in range(writes):
            for kind, store in stores.items():
                now, counters = time.perf_counter(), server_counters(probe)
                if previous is not None:
                    cost[previous[0]].append(_cost(previous[1], counters, now - previous[2], idle))
                previous = kind, counters, now
                store.set(f"fanout.k{index % KEYS:02d}", _value(tags[kind], index, pads[kind]))
                next_at += interval
                time.sleep(max(0.0, next_at - time.perf_counter()))
        now, counters = time.perf_counter(), server_counters(probe)
        assert previous is not None
        cost[previous[0]].append(_cost(previous[1], counters, now - previous[2], idle))
    return cost


def _cost(
    start: ServerCounters, end: ServerCounters, elapsed: float, idle: Idle
) -> tuple[float, float]:
    return (
        end.cpu_s - start.cpu_s - idle.server_cpu * elapsed,
        end.net_out - start.net_out - idle.net_out * elapsed,
    )


def _thread_cpu_us(arrivals: list[Arrival]) -> float:
    """CPU one message cost its subscriber's thread: from its first counted message to its
    last, divided by the messages in between (PINGs and polls on that thread included)."""
    by_client: defaultdict[int, list[Arrival]] = defaultdict(list)
    for arrival in arrivals:
        if arrival.write >= WARMUP:
            by_client[arrival.client].append(arrival)
    spent, messages = 0, 0
    for got in by_client.values():
        got.sort(key=lambda a: a.write)
        spent += got[-1].thread_cpu_ns - got[0].thread_cpu_ns
        messages += len(got) - 1
    return spent / max(1, messages) / 1000


def _gather(
    pool: Pool, tags: list[str], count: int, last: int
) -> tuple[dict[str, list[Arrival]], Collected]:
    """Collect until every subscriber of each tag got write ``last``: the arrivals by tag, and
    the last collect (its counters)."""
    arrivals: dict[str, list[Arrival]] = {tag: [] for tag in tags}
    done: dict[str, set[int]] = {tag: set() for tag in tags}
    deadline = time.monotonic() + TIMEOUT
    while True:
        collected = pool.collect()
        for tag in tags:
            new = collected.arrivals.get(tag, [])
            arrivals[tag] += new
            done[tag].update(arrival.client for arrival in new if arrival.write == last)
        if all(len(clients) == count for clients in done.values()):
            return arrivals, collected
        if time.monotonic() > deadline:
            heard = {tag: len(clients) for tag, clients in done.items()}
            raise TimeoutError(f"of {count}, these got write {last} in {TIMEOUT}s: {heard}")
        time.sleep(0.1)


def _deliveries(arrivals: list[Arrival], count: int, writes: int) -> dict[str, Any]:
    """Publish-to-all and per-subscriber latencies (ms) of the counted writes.

    A write a HotConfig client merged into a later one (two values of one key waiting in one
    read) counts as delivered when the later one was, as in latency.py.
    """
    sent: dict[int, int] = {}
    received: dict[int, dict[int, int]] = {}
    for arrival in arrivals:
        sent[arrival.write] = arrival.sent_ns
        received.setdefault(arrival.client, {})[arrival.write] = arrival.received_ns
    last = writes - 1
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
        arrivals = _gather(pool, [tag], count, BURST - 1)[0][tag]
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
