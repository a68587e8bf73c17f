"""The app under real servers: Werkzeug's reloader (``flask run --debug``) and gunicorn workers.

What a user would notice: the reloader's file-watching process does not subscribe (one
listener on the server, in the process that serves), and under gunicorn, with or without
``--preload``, every worker serves a new value, through the extension and through the
mirrored ``app.config`` key, within a second of ``ConfigStore.set``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import redis

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer, free_port
from tests.integrations.flask.serving import (
    Served,
    app_env,
    fetch,
    flask_run,
    gunicorn,
    pubsub_count,
    running,
    serve_round,
)
from tests.waiting import eventually

pytestmark = pytest.mark.slow

WORKERS = 3
FRESHNESS = 1.0  # seconds from store.set() until every worker serves the new value


def test_flask_run_with_the_reloader_follows_the_store_in_the_serving_process_only(
    server: EmbeddedServer, store: ConfigStore, redis_client: redis.Redis, tmp_path: Path
) -> None:
    store.set("greeting", "v1")
    port = free_port()
    command = flask_run(port, "--debug")  # --debug turns the reloader on
    with running(command, app_env(server.url), port, tmp_path / "flask.log") as watcher:
        first = fetch(port)
        # The watcher ran the app factory too, but a child of it serves.
        assert first.pid != watcher.pid
        assert (first.greeting, first.mirrored, first.status) == ("v1", "v1", "LIVE")
        assert pubsub_count(redis_client) == 1

        store.set("greeting", "v2")
        assert eventually(lambda: fetch(port).greeting == "v2", timeout=5)
        assert fetch(port).mirrored == "v2"
        assert pubsub_count(redis_client) == 1
    assert eventually(lambda: pubsub_count(redis_client) == 0)


def _live_workers(port: int, timeout: float = 30.0) -> dict[int, Served]:
    """Request until every worker has answered, LIVE, serving v1; the latest answer of each."""
    seen: dict[int, Served] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < WORKERS or any(s.status != "LIVE" for s in seen.values()):
        assert time.monotonic() < deadline, f"workers seen: {seen}"
        for served in serve_round(port, WORKERS):
            seen[served.pid] = served
    assert len(seen) == WORKERS, f"more workers than --workers {WORKERS}: {seen}"
    assert all((s.greeting, s.mirrored) == ("v1", "v1") for s in seen.values()), seen
    # Start is not a change: no worker's receiver ran for the value it booted with.
    assert all(s.told == () for s in seen.values()), seen
    return seen


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_every_gunicorn_worker_serves_a_change_and_its_mirror_within_a_second(
    preload: bool,
    server: EmbeddedServer,
    store: ConfigStore,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    store.set("greeting", "v1")
    port = free_port()
    log = tmp_path / "gunicorn.log"
    command = gunicorn(port, WORKERS, preload=preload)
    with running(command, app_env(server.url), port, log) as master:
        workers = set(_live_workers(port))
        assert master.pid not in workers
        # Each worker follows with a listener of its own; under --preload the master, which
        # ran the app factory before forking, keeps one too.
        listeners = WORKERS + 1 if preload else WORKERS
        assert eventually(lambda: pubsub_count(redis_client) == listeners)

        written = time.monotonic()
        store.set("greeting", "v2")
        first_v2: dict[int, Served] = {}
        # The snapshot swaps before the receivers run: a worker can serve v2 a moment before
        # its receiver records when v2 arrived, so the arrival is taken from any later answer.
        arrived: dict[int, float] = {}
        latest: dict[int, Served] = {}
        stale: list[Served] = []
        # Keep asking past the bound, so that a worker that lags or reverts is caught too.
        deadline = written + 20
        while (
            set(first_v2) != workers
            or set(arrived) != workers
            or time.monotonic() < written + FRESHNESS + 0.2
        ):
            assert time.monotonic() < deadline, f"v2 seen from {sorted(first_v2)} only"
            for served in serve_round(port, WORKERS):
                assert served.pid in workers, f"an unknown worker answered: {served}"
                latest[served.pid] = served
                if served.greeting == "v2":
                    first_v2.setdefault(served.pid, served)
                    if served.arrived is not None:
                        arrived.setdefault(served.pid, served.arrived)
                    if served.mirrored != "v2":
                        stale.append(served)
                elif served.sent >= written + FRESHNESS or served.pid in first_v2:
                    stale.append(served)
        assert not stale, f"stale answers {FRESHNESS}s after the change or after v2: {stale}"
        # When v2 reached each worker, as the worker itself recorded it.
        lags = {pid: at - written for pid, at in arrived.items()}
        # Each worker's receiver ran once, for the one change.
        told = {pid: served.told for pid, served in latest.items()}
        assert all(changes == ("v2",) for changes in told.values()), told
        assert all(0 <= lag < FRESHNESS for lag in lags.values()), lags

        master.send_signal(signal.SIGTERM)
        assert master.wait(timeout=15) == 0, log.read_text()
    assert eventually(lambda: pubsub_count(redis_client) == 0)
