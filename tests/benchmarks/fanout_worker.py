"""A worker process of the fan-out benchmark: many subscribers of one kind, driven over stdin.

    python -m tests.benchmarks.fanout_worker URL WORKER_ID

One process cannot hold 1,000 Python subscribers fairly (they would share one GIL), so
fanout.py starts several of these and splits the clients between them. Each reads one JSON
command a line on stdin and answers with one JSON line on stdout:

- ``{"op": "hold", "kind": "hotconfig" | "raw", "count": N, "channel": C}``: open N more
  subscribers, each with its own connections; answer once every one is subscribed (a HotConfig
  client: LIVE). Raw subscribers listen on ``C``, so that both kinds can be held at once and
  each write reaches one kind only.
  ``hotconfig`` is a real :class:`hotconfig.HotConfig` (listener thread, its own subscription
  and command connection, an on_change receiver); ``raw`` is a plain redis-py subscriber (one
  connection, a get_message loop on its own thread, json.loads), the baseline.
- ``{"op": "collect"}``: answer what arrived since the last collect, and clear it:
  ``arrivals`` = ``{tag: [[client, index, sent_ns, received_ns, thread_cpu_ns], ...]}``
  (the receiving thread's CPU time, so that the CPU one message costs a subscriber is known
  per kind, whatever else the process runs), ``statuses`` =
  ``[[client, status, ns], ...]`` (HotConfig status moves), the summed client counters, the
  thread count, the resident memory and the CPU time this process used so far.
- ``{"op": "release", "kind": K}``: close every subscriber of kind K (null: all);
  ``{"op": "exit"}``: leave.

Times are ``time.perf_counter_ns()`` (CLOCK_MONOTONIC), the publisher's clock too, taken first
thing in the receiver. A published value is ``{"tag", "i", "t", "pad"}``; other changes (the
deletions a resync reports after the server came back empty) are not recorded.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import redis

import hotconfig
from hotconfig import Change, Status, signals

PATTERN = "fanout.*"
START_TIMEOUT = 60.0
_STATS = ("received", "applied", "resyncs", "reconnects", "rejected")


class Log:
    """What every subscriber of this process received; appended from many threads (a list
    append is atomic under the GIL), read and cleared by ``collect``."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, str, int, int, int, int]] = []
        self.statuses: list[tuple[int, str, int]] = []
        self.read_timeouts = 0  # raw subscribers' reads that timed out mid-message

    def record(self, client: int, value: Any, received: int) -> None:
        if isinstance(value, dict) and "tag" in value:
            cpu = time.thread_time_ns()
            self.arrivals.append((client, value["tag"], value["i"], value["t"], received, cpu))

    def take(self) -> dict[str, Any]:
        arrivals, self.arrivals = self.arrivals, []
        statuses, self.statuses = self.statuses, []
        by_tag: defaultdict[str, list[tuple[int, int, int, int, int]]] = defaultdict(list)
        for client, tag, index, sent, received, cpu in arrivals:
            by_tag[tag].append((client, index, sent, received, cpu))
        return {"arrivals": by_tag, "statuses": statuses}


class RawSubscriber:
    """The baseline: redis-py's PubSub on one connection, read by a get_message loop."""

    def __init__(self, url: str, channel: str, index: int, log: Log) -> None:
        self._client = redis.Redis.from_url(url)
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(channel)
        deadline = time.monotonic() + START_TIMEOUT
        while (message := self._pubsub.get_message(timeout=1.0)) is None or (
            message["type"] != "subscribe"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("no SUBSCRIBE acknowledgement")
        self._index, self._log = index, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"raw-{index}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.25)
            except redis.TimeoutError:
                # Under load the rest of a message may come later than the read timeout;
                # the parser keeps what it has read, so reading again goes on from there.
                self._log.read_timeouts += 1
                continue
            if message is not None and message["type"] == "message":
                received = time.perf_counter_ns()
                self._log.record(self._index, json.loads(message["data"]).get("value"), received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._pubsub.close()
        self._client.close()


class Worker:
    """The subscribers of this process, of one kind at a time."""

    def __init__(self, url: str, worker_id: int) -> None:
        self.url, self.worker_id = url, worker_id
        self.log = Log()
        self.raw: list[RawSubscriber] = []
        self.configs: list[hotconfig.HotConfig[Any]] = []
        self._index: dict[int, int] = {}  # id(config) -> its index
        signals.status_changed.connect(self._on_status)

    def _on_status(self, sender: Any, old: Status, new: Status) -> None:
        """Called on the listener thread of the client that moved."""
        index = self._index.get(id(sender))
        if index is not None:
            self.log.statuses.append((index, new.value, time.perf_counter_ns()))

    def hold(self, kind: str, count: int, channel: str) -> dict[str, Any]:
        started = time.perf_counter()
        for _ in range(count):
            if kind == "raw":
                self.raw.append(RawSubscriber(self.url, channel, len(self.raw), self.log))
            else:
                self.configs.append(self._hotconfig(len(self.configs)))
        return {"held": count, "seconds": time.perf_counter() - started, **_process()}

    def _hotconfig(self, index: int) -> hotconfig.HotConfig[Any]:
        # health=False: the fan-out of a change is measured, not the health reports each
        # instance would send after it (one script call per instance and version).
        config: hotconfig.HotConfig[Any] = hotconfig.HotConfig(
            self.url, service=f"fanout-{self.worker_id}-{index}", health=False
        )
        log = self.log

        def received(change: Change) -> None:
            """Called on this client's listener thread."""
            log.record(index, change.new, time.perf_counter_ns())

        config.on_change(PATTERN)(received)
        self._index[id(config)] = index
        if not config.start(timeout=START_TIMEOUT):
            raise TimeoutError(f"client {index} did not go LIVE in {START_TIMEOUT}s")
        return config

    def collect(self) -> dict[str, Any]:
        totals = dict.fromkeys(_STATS, 0)
        for config in self.configs:
            stats = config.stats
            for name in _STATS:
                totals[name] += getattr(stats, name)
        totals["raw_read_timeouts"] = self.log.read_timeouts
        return {**self.log.take(), "stats": totals, **_process()}

    def release(self, kind: str | None) -> dict[str, Any]:
        released = 0
        if kind in (None, "raw"):
            for subscriber in self.raw:
                subscriber.close()
            released, self.raw = len(self.raw), []
        if kind in (None, "hotconfig"):
            for config in self.configs:
                config.close()
            released, self.configs = released + len(self.configs), []
            self._index.clear()
        self.log.take()
        return {"released": released}


def _process() -> dict[str, Any]:
    rss_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "threads": threading.active_count(),
        "rss_mb": rss_kb / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def raise_open_files() -> int:
    """Raise this process's open-file limit to its hard limit: each client holds sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    url, worker_id = sys.argv[1], int(sys.argv[2])
    # The restart trial drops every client at once: their reconnect warnings are expected.
    logging.getLogger("hotconfig").setLevel(logging.ERROR)
    raise_open_files()
    worker = Worker(url, worker_id)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "exit":
            break
        if op == "hold":
            answer = worker.hold(command["kind"], command["count"], command["channel"])
        elif op == "collect":
            answer = worker.collect()
        elif op == "release":
            answer = worker.release(command.get("kind"))
        else:
            answer = {"error": f"unknown op {op!r}"}
        print(json.dumps(answer), flush=True)
    worker.release(None)


if __name__ == "__main__":
    main()
