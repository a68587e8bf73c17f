"""The channel bridge against the hand-rolled stack (broadcaster + sse-starlette), side by side.

Both apps (:mod:`.bridge_stack`) run under real uvicorn, one worker each, on the bench's
server; the browsers are :mod:`.sse_clients` processes (several for 1,000 connections, so the
client side is not the bottleneck). Rounds alternate the stacks (A B, B A, ...), each round
on a fresh worker, so neither stack gets the warmer machine. In each round, for each stack:

1. one browser; ``ONE_MESSAGES`` publishes ``ONE_SPACING`` apart: publish → browser latency;
2. the worker's RSS, then ``MANY`` browsers connected and idle: RSS again (memory per idle
   connection) and the worker's Redis connections (its sockets to the server's port, from
   ``/proc/<pid>/net/tcp``, matched against ``CLIENT LIST``);
3. ``MANY_MESSAGES`` paced publishes to all of them: latency of every (message, browser)
   pair, and publish → last browser;
4. a burst of ``BURST`` messages in one pipeline: delivered (message, browser) pairs per
   second, from the first publish until the last browser has the last message, and the pairs
   never delivered.

Every message is a dashboard refresh, ``{"widgetId": "w-1", "dataVersion": i, "t": ns}``, on
``dashboard:refresh:bench``. The bridge has no delivery class for it: pass-through, every
message forwarded as published, the work the hand-rolled stack does too (``Ephemeral`` would
coalesce a burst for a slow browser, which the other stack cannot). Publish times are
``time.perf_counter_ns()`` just before the PUBLISH (CLOCK_MONOTONIC, shared by every process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import redis

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer, free_port
from tests.integrations.fastapi.servers import ROOT, serving, uvicorn_command

from .bridge_stack import HAND_ROLLED_PATH, HOTCONFIG_PATH
from .report import Bar, Row
from .sse_clients import STOP, WARMUP, raise_file_limit
from .timing import median, percentile

CHANNEL = "dashboard:refresh:bench"
ROUNDS = 4
ONE_MESSAGES, ONE_SPACING = 200, 0.005
MANY, CLIENT_PROCESSES = 1_000, 4
MANY_MESSAGES, MANY_SPACING = 100, 0.05
BURST = 200
_WARMUP_SPACING = 0.02
_SETTLE = 1.0  # after connecting or a phase: let the worker finish what it was doing
_TIMEOUT = 180.0


@dataclass(frozen=True)
class Stack:
    name: str
    factory: str
    path: str


HOTCONFIG = Stack("hotconfig", "tests.benchmarks.bridge_stack:hotconfig_app", HOTCONFIG_PATH)
HAND_ROLLED = Stack(
    "hand_rolled", "tests.benchmarks.bridge_stack:hand_rolled_app", HAND_ROLLED_PATH
)


@dataclass
class Samples:
    """What one stack showed, over every round."""

    one_us: list[float] = field(default_factory=list)
    many_us: list[float] = field(default_factory=list)
    last_us: list[float] = field(default_factory=list)  # publish -> the last browser
    rates: list[float] = field(default_factory=list)
    dropped: int = 0  # (message, browser) pairs never delivered, paced and burst
    redis_connections: list[int] = field(default_factory=list)
    connections_seen: list[list[dict[str, str]]] = field(default_factory=list)
    idle_kb: list[float] = field(default_factory=list)


def measure(server: EmbeddedServer, store: ConfigStore) -> list[Row]:
    raise_file_limit()  # the workers and the browsers inherit it
    samples = {stack.name: Samples() for stack in (HOTCONFIG, HAND_ROLLED)}
    with TemporaryDirectory() as logs:
        for round_ in range(ROUNDS):
            order = (HOTCONFIG, HAND_ROLLED) if round_ % 2 == 0 else (HAND_ROLLED, HOTCONFIG)
            for stack in order:
                _round(server, stack, Path(logs), samples[stack.name])
    return _rows(samples["hotconfig"], samples["hand_rolled"])


def _round(server: EmbeddedServer, stack: Stack, logs: Path, samples: Samples) -> None:
    port = free_port()
    command = uvicorn_command(stack.factory, port, extra=["--factory"])
    log = logs / f"{stack.name}-{port}.log"
    with serving(command, port, log, redis=server) as served, server.client() as client:
        url = served.url + stack.path + CHANNEL
        try:
            _one_browser(client, url, samples)
            time.sleep(_SETTLE)
            _many_browsers(client, url, served.process.pid, server.port, samples)
        except RuntimeError as exc:
            output = served.output()[-3000:]
            raise RuntimeError(f"{exc}; the {stack.name} worker said:\n{output}") from exc


def _one_browser(client: redis.Redis, url: str, samples: Samples) -> None:
    browsers = _spawn(url, [1], ONE_MESSAGES)
    _warm_up(client, browsers)
    sent = _paced(client, range(ONE_MESSAGES), ONE_SPACING)
    samples.one_us += _pair_latencies(sent, _finish(client, browsers))[0]


def _many_browsers(
    client: redis.Redis, url: str, pid: int, redis_port: int, samples: Samples
) -> None:
    # One browser first, alone: each client process opens its first connection alone (see
    # sse_clients), but four processes starting at once would race their first subscriptions,
    # which broadcaster loses. With the channel followed already, none is a first one. It stays
    # connected (both stacks serve 1,001) and its own arrivals are left out.
    primer = _spawn(url, [1], MANY_MESSAGES + BURST)
    _warm_up(client, primer)
    before = _rss_kb(pid)
    per_process = [MANY // CLIENT_PROCESSES] * CLIENT_PROCESSES
    browsers = _spawn(url, per_process, MANY_MESSAGES + BURST)
    try:
        _warm_up(client, browsers)
    except RuntimeError:
        _kill(primer)
        raise
    time.sleep(_SETTLE)
    samples.idle_kb.append((_rss_kb(pid) - before) / MANY)
    seen = _redis_connections(client, pid, redis_port)
    samples.redis_connections.append(len(seen))
    samples.connections_seen.append(seen)

    sent = _paced(client, range(MANY_MESSAGES), MANY_SPACING)
    time.sleep(_SETTLE)
    sent += _burst(client, range(MANY_MESSAGES, MANY_MESSAGES + BURST))
    arrivals = _finish(client, [*browsers, *primer])[:MANY]  # the primer's come last

    paced, dropped = _pair_latencies(sent[:MANY_MESSAGES], [a[:MANY_MESSAGES] for a in arrivals])
    samples.many_us += paced
    samples.last_us += _last_latencies(sent[:MANY_MESSAGES], arrivals)
    burst = [a[MANY_MESSAGES:] for a in arrivals]
    delivered = sum(1 for times in burst for at in times if at)
    finished = max(at for times in burst for at in times if at)
    samples.rates.append(delivered / ((finished - sent[MANY_MESSAGES]) / 1e9))
    samples.dropped += dropped + len(burst) * BURST - delivered


# -- browsers and publishes ----------------------------------------------------------------------


def _spawn(url: str, counts: list[int], messages: int) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.sse_clients", url, str(n), str(messages)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in counts
    ]


def _warm_up(client: redis.Redis, browsers: list[subprocess.Popen[str]]) -> None:
    """Publish warm-up messages until every browser process says all its browsers heard one."""
    ready = [threading.Event() for _ in browsers]

    def wait_ready(process: subprocess.Popen[str], said: threading.Event) -> None:
        assert process.stdout is not None
        if process.stdout.readline().strip() == "ready":
            said.set()

    for process, said in zip(browsers, ready, strict=True):
        threading.Thread(target=wait_ready, args=(process, said), daemon=True).start()
    deadline = time.monotonic() + _TIMEOUT
    while not all(said.is_set() for said in ready):
        exited = [p.returncode for p in browsers if p.poll() is not None]
        if time.monotonic() > deadline or exited:
            _kill(browsers)
            raise RuntimeError(
                "the SSE browsers did not all connect and hear a message "
                f"({len(exited)} of {len(browsers)} processes exited: {exited})"
            )
        client.publish(CHANNEL, _message(WARMUP))
        time.sleep(_WARMUP_SPACING)


def _message(index: int, sent: int = 0) -> str:
    return json.dumps({"widgetId": "w-1", "dataVersion": index, "t": sent})


def _paced(client: redis.Redis, indexes: range, spacing: float) -> list[int]:
    sent: list[int] = []
    next_at = time.perf_counter()
    for index in indexes:
        next_at += spacing
        started = time.perf_counter_ns()
        client.publish(CHANNEL, _message(index, started))
        sent.append(started)
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    return sent


def _burst(client: redis.Redis, indexes: range) -> list[int]:
    """Every message in one pipeline (one write); each is stamped with the burst's start."""
    started = time.perf_counter_ns()
    pipeline = client.pipeline(transaction=False)
    for index in indexes:
        pipeline.publish(CHANNEL, _message(index, started))
    pipeline.execute()
    return [started] * len(indexes)


def _finish(client: redis.Redis, browsers: list[subprocess.Popen[str]]) -> list[list[int]]:
    """Publish the stop marker; every browser's arrival times (0: never arrived)."""
    client.publish(CHANNEL, _message(STOP))
    arrivals: list[list[int]] = []
    try:
        for process in browsers:
            output, _ = process.communicate(timeout=_TIMEOUT)
            result = json.loads(output.strip().splitlines()[-1])
            if result["errors"]:
                raise RuntimeError(f"SSE browsers failed: {result['errors'][:3]}")
            arrivals += result["arrivals"]
    finally:
        _kill(browsers)
    return arrivals


def _kill(browsers: list[subprocess.Popen[str]]) -> None:
    for process in browsers:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- what the numbers are ------------------------------------------------------------------------


def _pair_latencies(sent: list[int], arrivals: list[list[int]]) -> tuple[list[float], int]:
    """µs from publish to arrival of every delivered (message, browser) pair; the missing."""
    latencies = [(at - sent[i]) / 1000 for times in arrivals for i, at in enumerate(times) if at]
    return latencies, len(sent) * len(arrivals) - len(latencies)


def _last_latencies(sent: list[int], arrivals: list[list[int]]) -> list[float]:
    """µs from publish until the last browser had it, for each message every browser got."""
    return [
        (max(times[i] for times in arrivals) - at) / 1000
        for i, at in enumerate(sent)
        if all(times[i] for times in arrivals)
    ]


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _redis_connections(client: redis.Redis, pid: int, redis_port: int) -> list[dict[str, str]]:
    """The server's CLIENT LIST entries for the worker's own sockets to ``redis_port``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == redis_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    listed: list[dict[str, Any]] = client.client_list()
    return [
        {key: str(entry.get(key, "")) for key in ("addr", "name", "cmd", "sub", "psub")}
        for entry in listed
        if int(str(entry["addr"]).rsplit(":", 1)[1]) in ports
    ]


def _rows(hot: Samples, hand: Samples) -> list[Row]:
    common = {"rounds": ROUNDS, "delivery_class": "none (pass-through)"}
    one = {**common, "messages": ONE_MESSAGES * ROUNDS, "spacing_s": ONE_SPACING}
    many = {**common, "browsers": MANY, "client_processes": CLIENT_PROCESSES,
            "messages": MANY_MESSAGES * ROUNDS, "spacing_s": MANY_SPACING,
            "pairs": {"hotconfig": len(hot.many_us), "hand_rolled": len(hand.many_us)}}  # fmt: skip
    burst = {**common, "burst": BURST, "browsers": MANY, "rates": hot.rates,
             "baseline_rates": hand.rates, "dropped_pairs": hot.dropped,
             "baseline_dropped_pairs": hand.dropped}  # fmt: skip
    connections = {"hotconfig": hot.connections_seen[-1], "hand_rolled": hand.connections_seen[-1]}
    memory = {**common, "browsers": MANY, "hotconfig_kb": hot.idle_kb,
              "hand_rolled_kb": hand.idle_kb}  # fmt: skip
    label = "broadcaster+sse-starlette"
    return [
        _latency_row(
            "bridge_sse_1_p50",
            f"bridge publish->SSE, 1 client, p50 / {label}",
            hot.one_us,
            hand.one_us,
            50,
            Bar("ratio", "<=", 0.9),
            one,
        ),
        _latency_row(
            "bridge_sse_1_p99",
            f"bridge publish->SSE, 1 client, p99 / {label}",
            hot.one_us,
            hand.one_us,
            99,
            Bar("ratio", "<=", 1.0),
            one,
        ),
        _latency_row(
            "bridge_sse_1000_p50",
            f"bridge publish->SSE, 1,000 clients, p50 / {label}",
            hot.many_us,
            hand.many_us,
            50,
            Bar("ratio", "<", 1.0),
            many,
        ),
        _latency_row(
            "bridge_sse_1000_p99",
            f"bridge publish->SSE, 1,000 clients, p99 / {label}",
            hot.many_us,
            hand.many_us,
            99,
            Bar("ratio", "<", 1.0),
            many,
        ),
        _latency_row(
            "bridge_sse_1000_last_p50",
            f"bridge publish->last of 1,000 clients, p50 / {label}",
            hot.last_us,
            hand.last_us,
            50,
            None,
            many,
        ),
        Row(
            "bridge_fanout_1000_rate",
            f"bridge burst to 1,000 clients, delivered msg/s / {label}",
            median(hot.rates),
            "msg/s",
            baseline=median(hand.rates),
            bar=Bar("ratio", ">=", 1.0),
            lower_is_better=False,
            details=burst,
        ),
        Row(
            "bridge_redis_connections",
            f"bridge Redis connections per worker, 1,000 clients (vs {label})",
            max(hot.redis_connections),
            "conn",
            baseline=max(hand.redis_connections),
            bar=Bar("value", "<=", 1),
            details=connections,
        ),
        Row(
            "bridge_idle_memory",
            f"bridge worker RSS per idle SSE connection / {label}",
            median(hot.idle_kb),
            "KB",
            baseline=median(hand.idle_kb),
            details=memory,
        ),
    ]


def _latency_row(
    id_: str,
    label: str,
    hot: list[float],
    hand: list[float],
    q: float,
    bar: Bar | None,
    details: dict[str, Any],
) -> Row:
    return Row(
        id_,
        label,
        percentile(hot, q),
        "us",
        baseline=percentile(hand, q),
        bar=bar,
        details={**details, "max_us": max(hot), "baseline_max_us": max(hand)},
    )
