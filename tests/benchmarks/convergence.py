"""Convergence after the server comes back: 20 clients, the server killed and restarted empty.

The 20 clients (default options: reconnect backoff capped at 1 s, jittered) follow the store.
The server is killed (SIGKILL) and, after ``outage`` seconds in which nothing is written, started
again on the same port, empty. The clock starts when the restarted server answers PING
(``EmbeddedServer.start`` polls every 20 ms, so the true moment is up to 20 ms earlier). Then
one ``ConfigStore.set`` writes a new value; a client has converged when its on_change
receiver got that value. Also timed: every client LIVE again (``status_changed`` signal).
Two outages: a restart right away (one trial), and 3 s down, when every client's backoff is
at its cap (three trials, since the jitter decides the worst client). Each row is the
slowest client of all trials of its outage.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from hotconfig import Change, ConfigStore, HotConfig, Status, signals
from hotconfig.testing.server import EmbeddedServer

from .report import Bar, Row

CLIENTS = 20
KEY = "bench.converge"
TIMEOUT = 15.0
OUTAGES = ((0.0, 1), (3.0, 3))  # (seconds down, trials)


class Watch:
    """When each client went LIVE and when it got the value, after ``since``."""

    def __init__(self, configs: list[HotConfig[Any]]) -> None:
        self.configs = configs
        self.token: object = None
        self.live: dict[int, float] = {}
        self.converged: dict[int, float] = {}
        self.all_converged = threading.Event()
        self._lock = threading.Lock()

    def on_status(self, sender: Any, old: Status, new: Status) -> None:
        if new is Status.LIVE and sender in self.configs:
            with self._lock:
                self.live.setdefault(id(sender), time.perf_counter())

    def receiver(self, config: HotConfig[Any]) -> Any:
        def got(change: Change) -> None:
            if self.token is not None and change.new == self.token:
                with self._lock:
                    self.converged.setdefault(id(config), time.perf_counter())
                    if len(self.converged) == len(self.configs):
                        self.all_converged.set()

        return got


def measure(server: EmbeddedServer) -> list[Row]:
    configs: list[HotConfig[Any]] = [
        HotConfig(server.url, service=f"bench-converge-{i}") for i in range(CLIENTS)
    ]
    watch = Watch(configs)
    for config in configs:
        config.on_change(KEY)(watch.receiver(config))
    signals.status_changed.connect(watch.on_status)
    rows = []
    try:
        for config in configs:
            if not config.start(timeout=10):
                raise TimeoutError("a client did not go LIVE")
        for outage, trials in OUTAGES:
            rows += _rows(outage, [_trial(server, watch, outage) for _ in range(trials)])
    finally:
        signals.status_changed.disconnect(watch.on_status)
        for config in configs:
            config.close()
    return rows


def _trial(server: EmbeddedServer, watch: Watch, outage: float) -> dict[str, Any]:
    server.kill()
    time.sleep(outage)
    watch.live.clear()
    watch.converged.clear()
    watch.all_converged.clear()
    spawned = time.perf_counter()
    server.start()
    back = time.perf_counter()
    watch.token = f"converge-{time.time_ns()}"
    with ConfigStore(server.url) as store:
        written = time.perf_counter()
        store.set(KEY, watch.token)
    if not watch.all_converged.wait(TIMEOUT):
        raise TimeoutError(f"{len(watch.converged)}/{CLIENTS} clients converged in {TIMEOUT}s")
    return {
        "server_start_s": back - spawned,
        "set_after_back_s": written - back,
        "converged_s": sorted(t - back for t in watch.converged.values()),
        "live_s": sorted(t - back for t in watch.live.values()),
    }


def _rows(outage: float, trials: list[dict[str, Any]]) -> list[Row]:
    name = "restart" if outage == 0 else f"{outage:g}s_outage"
    label = "restart at once" if outage == 0 else f"{outage:g} s down"
    if len(trials) > 1:
        label += f", worst of {len(trials)}"
    live_counts = [len(trial["live_s"]) for trial in trials]
    return [
        Row(
            f"converge_{name}",
            f"{CLIENTS} clients converged after server back, {label}",
            max(trial["converged_s"][-1] for trial in trials),
            "s",
            bar=Bar("value", "<", 1.0),
            details={"clients": CLIENTS, "trials": trials},
        ),
        Row(
            f"live_{name}",
            f"{CLIENTS} clients LIVE after server back, {label}",
            max(max(trial["live_s"], default=float("nan")) for trial in trials),
            "s",
            details={"live_clients_per_trial": live_counts},
        ),
    ]
