"""``make bench``: measure hotconfig's bars (DESIGN §8) side by side with their baselines.

    python -m tests.benchmarks [--server valkey|redis] [--only SECTION ...] [--profile]

Starts its own server on a free loopback port, runs every section, prints one table of
ratios measured in this run, writes ``.bench/results-<timestamp>.json`` and
``.bench/latest.json``, and shows the change of each row against the previous latest.json.
Exit status: 0 when the run completed (FAIL rows included, unless ``--strict``), 1 with
``--strict`` when a bar failed, 2 when a section could not run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from hotconfig import ConfigStore
from hotconfig.testing.server import EmbeddedServer, ServerKind

from . import (
    alternatives,
    barrier,
    bridge_fanout,
    bridge_idle,
    convergence,
    django_reads,
    fanout,
    fastapi_integration,
    flask_reads,
    latency,
    machine,
    memory,
    profiling,
    reads,
    report,
    resync,
    scopes,
    throughput,
)
from .report import Row

# A 50k-message burst must not get the subscriber dropped by the server's pub/sub output
# buffer limit on a slow machine: that would measure a disconnect, not the subscriber.
SERVER_ARGS = ["--client-output-buffer-limit", "pubsub 0 0 0"]
BUSY_LOAD = 0.5


def _reads(server: EmbeddedServer, store: ConfigStore) -> list[Row]:
    config = reads.live_client(server.url, store)
    try:
        return [
            *reads.measure(config),
            alternatives.dynaconf_row(config),
            alternatives.constance_row(config, server.url),
            *django_reads.measure(config, server.url),
        ]
    finally:
        config.close()


SECTIONS: dict[str, Callable[[EmbeddedServer, ConfigStore], list[Row]]] = {
    "reads": _reads,
    "flask": lambda server, store: flask_reads.measure(server.url, store),
    "latency": lambda server, store: latency.measure(server.url, store),
    "throughput": throughput.measure,
    "resync": lambda server, store: resync.measure(server.url),
    "scopes": lambda server, store: scopes.measure(server.url),
    "memory": lambda server, store: memory.measure(server.url),
    "convergence": lambda server, store: convergence.measure(server),
    "barrier": barrier.measure,
    "fastapi": fastapi_integration.measure,
    "bridge": bridge_fanout.measure,
    "bridge-idle": lambda server, store: bridge_idle.measure(server.url),
    "fanout": fanout.measure,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.verbose:
        # Convergence kills the server under 20 clients: their reconnect warnings are expected.
        logging.getLogger("hotconfig").setLevel(logging.ERROR)
    server = EmbeddedServer(args.server, args=SERVER_ARGS).start()
    try:
        described = machine.describe(server)
        if described["load_average_at_start"] > BUSY_LOAD:
            print(
                f"warning: load average {described['load_average_at_start']:.2f} at start: "
                "other processes compete for the CPU and the numbers will be noisier",
                file=sys.stderr,
            )
        if args.profile:
            with ConfigStore(server.url) as store:
                print(profiling.profile_burst(server, store))
            return 0
        rows, starts, errors = _run(server, args.only or list(SECTIONS))
    finally:
        server.close()
    previous = report.load_previous(args.out)
    print()
    print(machine.summary(described))
    if previous is not None:
        print(f"vs last run: {previous['_timestamp']} ({args.out / 'latest.json'})")
    print(report.render(rows, starts, previous))
    timestamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = report.save(args.out, timestamp, described, rows)
    print(f"\nresults: {path} (and {args.out / 'latest.json'})")
    if errors:
        print(f"sections that could not run: {', '.join(errors)}", file=sys.stderr)
        return 2
    failed = [row.label for row in rows if row.passed is False]
    return 1 if args.strict and failed else 0


def _run(
    server: EmbeddedServer, names: list[str]
) -> tuple[list[Row], list[tuple[str, int]], list[str]]:
    rows: list[Row] = []
    starts: list[tuple[str, int]] = []
    errors: list[str] = []
    for name in names:
        with server.client() as client:
            client.flushall()  # every section starts from an empty store
        started = time.perf_counter()
        print(f"running {name} ...", end=" ", file=sys.stderr, flush=True)
        try:
            with ConfigStore(server.url) as store:
                new = SECTIONS[name](server, store)
        except Exception:
            print("failed", file=sys.stderr)
            traceback.print_exc()
            errors.append(name)
            continue
        print(f"{time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
        starts.append((name, len(rows)))
        rows += new
    return rows, starts, errors


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    kinds: list[ServerKind] = ["valkey", "redis"]
    parser.add_argument("--server", choices=kinds, default="valkey", help="default: valkey")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), metavar="SECTION")
    parser.add_argument("--out", type=Path, default=Path(".bench"), help="default: .bench")
    parser.add_argument("--profile", action="store_true", help="profile the listener thread")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a bar fails")
    parser.add_argument("--verbose", action="store_true", help="show hotconfig's warnings")
    return parser


if __name__ == "__main__":
    sys.exit(main())
