"""The fan-out benchmark's moving parts: the worker processes, and what it reads off the server.

:class:`Pool` drives several ``fanout_worker`` processes (the clients split between them, so
1,000 Python subscribers do not share one GIL). :func:`server_counters` reads the server's
CPU time and bytes written; :class:`BufferSampler` samples the pub/sub clients' output buffers
(``CLIENT LIST TYPE pubsub``) on a thread of its own while the publisher writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import redis

from hotconfig.testing.server import EmbeddedServer

_ROOT = Path(__file__).resolve().parents[2]
_CLIENT_ID = 100_000  # client ids are worker * _CLIENT_ID + index: unique across workers


class Arrival(NamedTuple):
    client: int
    write: int  # its index in the run of writes
    sent_ns: int
    received_ns: int
    thread_cpu_ns: int  # the receiving thread's CPU time when it got the message


class Collected(NamedTuple):
    """What every worker reported at one collect."""

    arrivals: dict[str, list[Arrival]]  # by tag
    statuses: list[tuple[int, str, int]]  # (client, status, ns)
    stats: dict[str, int]  # hotconfig's counters, summed over the clients
    threads: int
    rss_mb: float
    cpu_s: float  # CPU time the workers used so far, summed


class Pool:
    """``workers`` worker processes, each holding its share of the subscribers."""

    def __init__(self, url: str, workers: int) -> None:
        self._processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.benchmarks.fanout_worker", url, str(worker)],
                cwd=_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for worker in range(workers)
        ]

    def hold(self, kind: str, count: int, channel: str) -> float:
        """Open ``count`` more subscribers of ``kind`` (raw ones on ``channel``), split between
        the workers; the seconds the slowest worker took."""
        shares = [count // len(self._processes)] * len(self._processes)
        for worker in range(count % len(self._processes)):
            shares[worker] += 1
        commands = [{"op": "hold", "kind": kind, "count": n, "channel": channel} for n in shares]
        answers = self._ask(commands)
        return max(float(answer["seconds"]) for answer in answers)

    def collect(self) -> Collected:
        answers = self._ask([{"op": "collect"}] * len(self._processes))
        arrivals: defaultdict[str, list[Arrival]] = defaultdict(list)
        statuses: list[tuple[int, str, int]] = []
        stats: defaultdict[str, int] = defaultdict(int)
        for worker, answer in enumerate(answers):
            base = worker * _CLIENT_ID
            for tag, rows in answer["arrivals"].items():
                arrivals[tag] += [Arrival(base + c, i, s, r, u) for c, i, s, r, u in rows]
            statuses += [(base + c, status, ns) for c, status, ns in answer["statuses"]]
            for name, value in answer["stats"].items():
                stats[name] += value
        return Collected(
            dict(arrivals),
            statuses,
            dict(stats),
            sum(answer["threads"] for answer in answers),
            sum(answer["rss_mb"] for answer in answers),
            sum(answer["cpu_s"] for answer in answers),
        )

    def release(self, kind: str | None = None) -> None:
        """Close the subscribers of ``kind`` (None: all)."""
        self._ask([{"op": "release", "kind": kind}] * len(self._processes))

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None and process.stdin is not None:
                try:
                    process.stdin.write(json.dumps({"op": "exit"}) + "\n")
                    process.stdin.close()
                except OSError:
                    pass
        for process in self._processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _ask(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send each worker its command, then read every answer (the workers run meanwhile)."""
        for process, command in zip(self._processes, commands, strict=True):
            assert process.stdin is not None
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
        answers = []
        for process in self._processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"a fan-out worker exited (code {process.wait()})")
            answer: dict[str, Any] = json.loads(line)
            if "error" in answer:
                raise RuntimeError(f"a fan-out worker refused a command: {answer['error']}")
            answers.append(answer)
        return answers


class ServerCounters(NamedTuple):
    cpu_user_s: float  # CPU time of the server process since it started, in user space
    cpu_sys_s: float  # and in the kernel (on loopback, delivery into the readers' sockets too)
    net_out: int  # bytes the server wrote to its clients since it started
    connections: int  # connections it accepted since it started
    memory: int  # used_memory: what the server allocated, client buffers included

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s


def server_counters(client: redis.Redis) -> ServerCounters:
    """One ``INFO cpu stats memory``: cheap enough to read before every write."""
    info = client.info("cpu", "stats", "memory")
    return ServerCounters(
        float(info["used_cpu_user"]),
        float(info["used_cpu_sys"]),
        int(info["total_net_output_bytes"]),
        int(info["total_connections_received"]),
        int(info["used_memory"]),
    )


def ensure_maxclients(server: EmbeddedServer, needed: int) -> None:
    """Let the server take ``needed`` connections (its default, 10,000, usually does)."""
    with server.client() as client:
        current = int(client.config_get("maxclients")["maxclients"])
        if current < needed:
            try:
                client.config_set("maxclients", str(needed))
            except redis.ResponseError as exc:
                raise RuntimeError(
                    f"the server takes {current} clients, the fan-out needs {needed}; raise the "
                    f"open-file limit (ulimit -n) before the benchmark: {exc}"
                ) from None


class BufferSampler:
    """Samples every pub/sub client's output buffer until stopped; keeps the peaks.

    ``omem`` is the memory of the client's reply list beyond its fixed buffer: the quantity
    ``client-output-buffer-limit pubsub`` is compared with. ``tot-mem`` adds the fixed buffers
    and the query buffer.
    """

    def __init__(self, server: EmbeddedServer) -> None:
        self._client = server.client()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fanout-buffers", daemon=True)
        self.samples = 0
        self.peak_omem = 0  # one client's
        self.peak_total_omem = 0  # summed over the clients, in one sample
        self.peak_tot_mem = 0  # one client's, buffers included
        self.last_total_omem = 0

    def __enter__(self) -> BufferSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            clients = self._client.client_list(_type="pubsub")
            omem = [int(c["omem"]) for c in clients]
            self.samples += 1
            self.last_total_omem = sum(omem)
            self.peak_omem = max(self.peak_omem, *omem, 0)
            self.peak_total_omem = max(self.peak_total_omem, self.last_total_omem)
            self.peak_tot_mem = max(self.peak_tot_mem, *(int(c["tot-mem"]) for c in clients), 0)
