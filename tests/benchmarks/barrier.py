"""The convergence barrier, and what health reporting costs the listener.

The barrier: a write, then ``Fleet.wait`` until 20 instances confirmed it.

20 clients in this process, each with its health reporter, follow the store. Each trial writes
one value with ``ConfigStore.set`` and times until ``Fleet.wait`` returns with every instance
confirmed — what ``hotconfig set --wait`` does after its write, without the interpreter's
start-up (about 0.2 s for the console script, the same for any Python command).

The cost: the 50k versioned burst of throughput.py, applied by a client with and without its
reporter (which wakes on every applied version), rounds alternating; best round of each.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from hotconfig import ConfigStore, Fleet, HotConfig
from hotconfig.fleet.reporter import Reporter
from hotconfig.testing.server import EmbeddedServer

from . import throughput
from .report import Bar, Row

INSTANCES = 20
TRIALS = 50


def measure(server: EmbeddedServer, store: ConfigStore) -> list[Row]:
    return [*_barrier(server.url, store), _health_cost(server, store)]


def _health_cost(server: EmbeddedServer, store: ConfigStore) -> Row:
    store.set_many({f"bench.k{i:04d}": f"value-{i}" for i in range(throughput.KEYS)})
    rates: dict[str, list[float]] = {"without": [], "with": []}
    for round_ in range(throughput.ROUNDS):
        for health in (False, True) if round_ % 2 == 0 else (True, False):
            token = f"health-{health}-{round_}-{time.time_ns()}"
            payload = throughput._payload("versioned", store, token)
            seconds, _ = throughput._hotconfig_round(server, payload, token, health=health)
            rates["with" if health else "without"].append(throughput.COUNT / seconds)
    return Row(
        "health_cost",
        f"apply throughput with health reports / without, {throughput.COUNT // 1000}k burst",
        max(rates["with"]),
        "msg/s",
        baseline=max(rates["without"]),
        bar=Bar("ratio", ">=", 0.97),
        lower_is_better=False,
        details={"rounds": rates},
    )


def _barrier(url: str, store: ConfigStore) -> list[Row]:
    configs: list[HotConfig[Any]] = [
        HotConfig(url, service=f"bench-barrier-{i % 4}", health=False) for i in range(INSTANCES)
    ]
    reporters = [Reporter(config, url=url) for config in configs]
    timings: list[float] = []
    try:
        for config, reporter in zip(configs, reporters, strict=True):
            if not config.start(timeout=10):
                raise TimeoutError("a client did not go LIVE")
            reporter.start()
        with Fleet(url) as fleet:
            deadline = time.monotonic() + 10
            while len(fleet.instances()) < INSTANCES:
                if time.monotonic() > deadline:
                    raise TimeoutError("not every instance registered")
                time.sleep(0.01)
            for trial in range(TRIALS):
                started = time.perf_counter()
                result = fleet.wait(store.set("bench.barrier", trial), timeout=5)
                timings.append(time.perf_counter() - started)
                if not result.ok or len(result.applied) != INSTANCES:
                    raise RuntimeError(f"the barrier did not converge: {result}")
    finally:
        for reporter in reporters:
            reporter.close()
        for config in configs:
            config.close()
    timings.sort()
    p50 = statistics.median(timings) * 1000
    p99 = timings[int(len(timings) * 0.99) - 1] * 1000
    return [
        Row(
            "barrier_p50",
            f"set + Fleet.wait, {INSTANCES} instances confirmed, p50",
            p50,
            "ms",
            bar=Bar("value", "<", 100.0),
            details={"instances": INSTANCES, "trials": TRIALS, "p99_ms": p99},
        ),
        Row(
            "barrier_p99",
            f"set + Fleet.wait, {INSTANCES} instances confirmed, p99",
            p99,
            "ms",
        ),
    ]
