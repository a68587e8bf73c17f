"""Fork safety: children of a process with a started HotConfig follow the channel on their own.

After ``os.fork()`` a child that read the inherited PubSub connection would steal its parent's
messages (and pongs), and under ``gunicorn --preload`` the listener thread started at import
exists only in the master (DESIGN §1, §6). These tests fork for real — ``os.fork``,
``multiprocessing`` with the "fork" start method, gunicorn sync workers — and check what a
user would notice: every process serves the inherited values at once, then every process
(parent included) receives each later change, each on a connection of its own, and a change
whose receivers were still running when the process forked is handled in the child as well.
"""

from __future__ import annotations

import contextlib
import gc
import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

import hotconfig
from hotconfig import ConfigStore, HotConfig, Status, Timings
from hotconfig.testing.server import EmbeddedServer, free_port
from tests.waiting import eventually

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
LISTENER_PREFIX = "hotconfig-listener-"


def listener_threads() -> list[str]:
    """Names of this process's live listener threads."""
    return sorted(
        t.name for t in threading.enumerate() if t.name.startswith(LISTENER_PREFIX) and t.is_alive()
    )


def pubsub_ids(r: redis.Redis) -> list[int]:
    """Ids of the server's connections in subscribe mode, i.e. of the listeners following it."""
    return sorted(int(c["id"]) for c in r.client_list(_type="pubsub"))


# -- a child made with os.fork() --------------------------------------------------------------


class Link:
    """One end of a socketpair carrying JSON lines between the test and its forked child."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message; a child's failure is raised here with the child's traceback."""
        self._sock.settimeout(timeout)
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"the other process said nothing for {timeout}s") from None
            if not chunk:
                raise EOFError("the other process closed the link without a word")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise AssertionError(f"the forked child failed:\n{message['error']}")
        return message


@dataclass
class Child:
    pid: int
    link: Link
    exit_code: int | None = None

    def wait(self, timeout: float = 10.0) -> int:
        """The child's exit code, once it has exited."""

        def reaped() -> bool:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
            return pid != 0

        assert eventually(reaped, timeout=timeout), f"child {self.pid} did not exit"
        assert self.exit_code is not None
        return self.exit_code


def _run_child(body: Callable[[Link], None], link: Link) -> int:
    try:
        body(link)
    except BaseException:
        link.send({"error": traceback.format_exc()})
        return 1
    return 0


@contextlib.contextmanager
def forked(body: Callable[[Link], None]) -> Iterator[Child]:
    """Fork; the child runs ``body`` and leaves with ``os._exit`` (0 if it returned, else 1).

    The child never returns into pytest (no fixture teardown, no atexit, no flush of the
    parent's buffers). If the test fails first, the child is killed and reaped.
    """
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ours.close()
            code = _run_child(body, Link(theirs))
        finally:
            os._exit(code)
    theirs.close()
    child = Child(pid, Link(ours))
    try:
        yield child
    finally:
        if child.exit_code is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        ours.close()


# -- os.fork() --------------------------------------------------------------------------------


def test_a_forked_child_serves_the_inherited_snapshot_then_follows_on_its_own_connection(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    store = ConfigStore(server.url)
    # No anti-entropy poll within the test: a message stolen by the child would stay lost for
    # the parent instead of being papered over by a resync.
    config: HotConfig[Any] = HotConfig(server.url, timings=Timings(poll_interval=60.0))

    def child_body(link: Link) -> None:
        # First thing after fork(): no listener of the child's has connected yet.
        link.send({"inherited": config.get("greeting"), "pid": os.getpid()})
        assert eventually(lambda: config.status is Status.LIVE, timeout=10)
        # Collect the parent's listener, unreachable here: its redis-py objects close their
        # copy of the parent's socket, which must not shut the parent's connection down.
        gc.collect()
        link.send({"listeners": listener_threads()})
        assert eventually(lambda: config.get("greeting") == "v2", timeout=10)
        stats = config.stats
        link.send({"greeting": "v2", "version": config.version, "reconnects": stats.reconnects})
        link.recv(timeout=30)  # stay alive (and subscribed) until the test has looked around
        # No close(): the child ends as a crashing worker would, its sockets dropped by the OS.

    try:
        store.set("greeting", "v1")
        assert config.start(timeout=5)
        assert config.get("greeting") == "v1"
        parent_connection = pubsub_ids(redis_client)
        assert len(parent_connection) == 1

        with forked(child_body) as child:
            hello = child.link.recv()
            assert hello == {"inherited": "v1", "pid": child.pid}
            # Its own listener thread, started in the child (the name carries the child's pid).
            assert child.link.recv()["listeners"] == [f"{LISTENER_PREFIX}{child.pid}"]
            # The child subscribed on a connection of its own; the parent's is still the same.
            ids = pubsub_ids(redis_client)
            assert len(ids) == 2
            assert set(parent_connection) < set(ids)

            version = store.set("greeting", "v2")
            assert config.wait_for_version(version, timeout=5)
            assert config.get("greeting") == "v2"
            assert child.link.recv() == {"greeting": "v2", "version": version, "reconnects": 0}
            child.link.send({"exit": True})
            assert child.wait() == 0

        # The child is gone with its connection; the parent's is untouched and still receives.
        assert eventually(lambda: pubsub_ids(redis_client) == parent_connection)
        version = store.set("greeting", "v3")
        assert config.wait_for_version(version, timeout=5)
        assert config.get("greeting") == "v3"
        stats = config.stats
        # One snapshot at start and nothing since: every change came in order over the channel.
        assert (stats.reconnects, stats.resyncs, stats.applied) == (0, 1, 2)
        assert config.status is Status.LIVE
        assert pubsub_ids(redis_client) == parent_connection
    finally:
        config.close()
        store.close()


def test_a_child_forked_while_redis_is_frozen_serves_the_inherited_snapshot(
    server: EmbeddedServer,
) -> None:
    store = ConfigStore(server.url)
    config: HotConfig[Any] = HotConfig(server.url)

    def child_body(link: Link) -> None:
        link.send({"inherited": config.get("greeting"), "status": str(config.status)})
        # v2 may come with the first snapshot, which is live a moment before the status is.
        assert eventually(
            lambda: config.get("greeting") == "v2" and config.status is Status.LIVE, timeout=15
        )
        link.send({"greeting": config.get("greeting"), "status": str(config.status)})

    try:
        store.set("greeting", "v1")
        assert config.start(timeout=5)
        server.pause()  # the child's listener cannot get a single answer: reads must not need one
        try:
            with forked(child_body) as child:
                assert child.link.recv() == {"inherited": "v1", "status": "STARTING"}
                server.resume()
                version = store.set("greeting", "v2")
                assert child.link.recv(timeout=20) == {"greeting": "v2", "status": "LIVE"}
                assert child.wait() == 0
        finally:
            server.resume()
        assert config.wait_for_version(version, timeout=10)
        assert config.get("greeting") == "v2"
    finally:
        config.close()
        store.close()


def test_children_forked_during_a_burst_of_changes_converge_with_the_parent(
    server: EmbeddedServer,
) -> None:
    store = ConfigStore(server.url)
    config: HotConfig[Any] = HotConfig(server.url)
    stop = threading.Event()

    def write_until_stopped() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            store.set_many({"a": i, "b": i})

    def child_body(link: Link) -> None:
        snapshot = config.snapshot()  # one batch is never seen half applied
        link.send({"consistent": snapshot["a"] == snapshot["b"]})
        final = link.recv(timeout=30)["version"]
        assert config.wait_for_version(final, timeout=10), config.stats
        snapshot = config.snapshot()
        link.send({"a": snapshot["a"], "b": snapshot["b"], "version": snapshot.version})

    writer = threading.Thread(target=write_until_stopped, name="burst-writer")
    try:
        store.set_many({"a": 0, "b": 0})
        assert config.start(timeout=5)
        writer.start()
        assert eventually(lambda: config.get("a", 0) > 10)
        with contextlib.ExitStack() as children_alive:
            children = [children_alive.enter_context(forked(child_body)) for _ in range(5)]
            assert [child.link.recv() for child in children] == [{"consistent": True}] * 5
            stop.set()
            writer.join()
            final = store.version
            assert config.wait_for_version(final, timeout=10)
            expected = {"a": config.get("a"), "b": config.get("b"), "version": final}
            assert expected["a"] == expected["b"]
            for child in children:
                child.link.send({"version": final})
            assert [child.link.recv(timeout=20) for child in children] == [expected] * 5
            assert [child.wait() for child in children] == [0] * 5
    finally:
        stop.set()
        if writer.is_alive():
            writer.join()
        config.close()
        store.close()


def test_a_change_whose_receivers_a_fork_cut_short_is_handled_in_the_child(
    server: EmbeddedServer,
) -> None:
    store = ConfigStore(server.url)
    config: HotConfig[Any] = HotConfig(server.url)
    parent = os.getpid()
    loaded: dict[str, Any] = {}  # what a receiver built from the config, e.g. a loaded model
    reloading, release = threading.Event(), threading.Event()

    @config.on_change("model")
    def reload_model(change: hotconfig.Change) -> None:
        if os.getpid() == parent and change.new == "v2":
            reloading.set()
            release.wait(10)  # a slow reload, still running in the parent when it forks
        loaded["model"] = change.new

    def child_body(link: Link) -> None:
        # The fork copied v2 into the snapshot but not the end of its receivers: whatever
        # this process serves, its receivers must have run for it.
        assert eventually(lambda: loaded.get("model") == "v2", timeout=5), (
            f"serving {config.get('model')!r} but the receiver built {loaded.get('model')!r}"
        )

    try:
        store.set("model", "v1")
        assert config.start(timeout=5)
        assert loaded == {}  # start is not a change: the app builds from what start() loaded
        loaded["model"] = config.get("model")
        version = store.set("model", "v2")
        assert reloading.wait(5)
        try:
            # os.fork() waits a bounded time for the receiver, then forks anyway.
            with forked(child_body) as child:
                release.set()
                assert child.wait(timeout=15) == 0, child.link.recv()
        finally:
            release.set()
        assert config.wait_for_version(version, timeout=5)
        assert loaded == {"model": "v2"}
    finally:
        config.close()
        store.close()


# -- multiprocessing, "fork" start method -----------------------------------------------------

# Set by the pool's initializer in each worker process only (inherited through fork, not pickled).
_in_worker: dict[str, Any] = {}


def _adopt(config: HotConfig[Any], ready: Any) -> None:
    """The pool's initializer, run in each worker right after it is forked."""
    _in_worker.update(config=config, ready=ready)


def _wait_for_greeting(expected: str) -> dict[str, Any]:
    """A pool task: say it runs, then wait for ``expected`` to arrive in this worker."""
    config: HotConfig[Any] = _in_worker["config"]
    _in_worker["ready"].put(os.getpid())
    eventually(lambda: config.get("greeting") == expected, timeout=15)
    return {
        "pid": os.getpid(),
        "greeting": config.get("greeting"),
        "version": config.version,
        "listeners": listener_threads(),
    }


def test_multiprocessing_fork_workers_each_receive_a_change_made_after_they_started(
    server: EmbeddedServer,
) -> None:
    store = ConfigStore(server.url)
    config: HotConfig[Any] = HotConfig(server.url)
    context = multiprocessing.get_context("fork")
    ready = context.Queue()
    try:
        store.set("greeting", "v1")
        assert config.start(timeout=5)
        pool = context.Pool(3, initializer=_adopt, initargs=(config, ready))
        try:
            # Each task blocks until the change arrives, so the three land on three workers.
            pending = pool.map_async(_wait_for_greeting, ["v2"] * 3, chunksize=1)
            workers = {ready.get(timeout=15) for _ in range(3)}
            assert len(workers) == 3
            assert os.getpid() not in workers

            version = store.set("greeting", "v2")
            assert config.wait_for_version(version, timeout=5)
            assert config.get("greeting") == "v2"
            results = pending.get(timeout=20)
            assert {r["pid"] for r in results} == workers
            for result in results:
                assert result["greeting"] == "v2"
                assert result["version"] == version
                assert result["listeners"] == [f"{LISTENER_PREFIX}{result['pid']}"]
            pool.close()
            pool.join()
        finally:
            pool.terminate()
            pool.join()
        # The parent still follows after its workers are gone.
        version = store.set("greeting", "v3")
        assert config.wait_for_version(version, timeout=5)
        assert config.stats.reconnects == 0
    finally:
        ready.close()
        ready.join_thread()
        config.close()
        store.close()


# -- gunicorn --preload -----------------------------------------------------------------------

WORKERS = 3
FRESHNESS = 1.0  # seconds from store.set() until every worker serves the new value


@dataclass(frozen=True)
class Served:
    """One response: which worker served what, and when the request went out / came back."""

    sent: float
    received: float
    pid: int
    greeting: Any
    status: str
    arrived: float | None


def _serve_round(port: int) -> list[Served]:
    """One request on each of ``WORKERS`` fresh connections, all opened before any is sent.

    A sync worker that accepted a connection blocks reading it, so the connections opened
    first tend to be held by different workers; which worker answers is up to the OS anyway.
    """
    connections = [
        http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(WORKERS)
    ]
    try:
        for connection in connections:
            connection.connect()
        served = []
        for connection in connections:
            sent = time.monotonic()
            connection.request("GET", "/")
            response = connection.getresponse()
            assert response.status == 200
            body = json.loads(response.read())
            served.append(
                Served(
                    sent,
                    time.monotonic(),
                    body["pid"],
                    body["greeting"],
                    body["status"],
                    body["arrived"],
                )
            )
        return served
    finally:
        for connection in connections:
            connection.close()


def _answers(port: int, gunicorn: subprocess.Popen[bytes], log: Path) -> bool:
    """True once gunicorn answers an HTTP request; fails the test at once if it died."""
    if gunicorn.poll() is not None:
        pytest.fail(f"gunicorn exited with {gunicorn.returncode}:\n{log.read_text()}")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


@contextlib.contextmanager
def _gunicorn(url: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn",
        "--preload",
        "--workers", str(WORKERS),
        "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        "--chdir", str(ROOT),
        "--graceful-timeout", "5",
        "tests.faults.wsgi_app:app",
    ]  # fmt: skip
    env = {**os.environ, "HOTCONFIG_URL": url}
    with log.open("wb") as output:
        gunicorn = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        assert eventually(lambda: _answers(port, gunicorn, log), timeout=30), log.read_text()
        yield gunicorn, port
    finally:
        if gunicorn.poll() is None:
            gunicorn.send_signal(signal.SIGTERM)
            try:
                gunicorn.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
                gunicorn.wait()


def _live_workers(port: int, timeout: float = 30.0) -> dict[int, Served]:
    """Request until every worker has answered, LIVE, serving v1; the latest answer of each."""
    seen: dict[int, Served] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < WORKERS or any(s.status != "LIVE" for s in seen.values()):
        assert time.monotonic() < deadline, f"workers seen: {seen}"
        for served in _serve_round(port):
            seen[served.pid] = served
    assert len(seen) == WORKERS, f"more workers than --workers {WORKERS}: {seen}"
    assert all(s.greeting == "v1" for s in seen.values()), seen
    return seen


def test_gunicorn_preload_workers_all_serve_a_change_within_a_second(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    store = ConfigStore(server.url)
    log = tmp_path / "gunicorn.log"
    try:
        store.set("greeting", "v1")
        with _gunicorn(server.url, log) as (gunicorn, port):
            workers = set(_live_workers(port))
            assert gunicorn.pid not in workers
            # The master keeps its listener and each worker follows with its own.
            assert eventually(lambda: len(pubsub_ids(redis_client)) == WORKERS + 1)

            written = time.monotonic()
            store.set("greeting", "v2")
            first_v2: dict[int, Served] = {}
            stale: list[Served] = []
            # Keep asking past the bound, so a worker that reverts or lags is caught too.
            deadline = written + 20
            while set(first_v2) != workers or time.monotonic() < written + FRESHNESS + 0.2:
                assert time.monotonic() < deadline, f"v2 seen from {sorted(first_v2)} only"
                for served in _serve_round(port):
                    assert served.pid in workers, f"an unknown worker answered: {served}"
                    if served.greeting == "v2":
                        first_v2.setdefault(served.pid, served)
                    elif served.sent >= written + FRESHNESS or served.pid in first_v2:
                        stale.append(served)
            assert not stale, f"stale answers {FRESHNESS}s after the change or after v2: {stale}"
            # When v2 reached each worker, as the worker itself recorded it.
            lags = {pid: s.arrived - written for pid, s in first_v2.items() if s.arrived}
            assert len(lags) == WORKERS, first_v2
            assert all(0 <= lag < FRESHNESS for lag in lags.values()), lags

            gunicorn.send_signal(signal.SIGTERM)
            assert gunicorn.wait(timeout=15) == 0, log.read_text()
        assert eventually(lambda: pubsub_ids(redis_client) == [])
    finally:
        store.close()
