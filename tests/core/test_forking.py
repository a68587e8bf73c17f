"""The one fork and exit mechanism (hotconfig._redis.forking), with objects of the test's own
tracked at each stage and a real ``os.fork()``: the child runs their hooks in stage order, a
writer lock is held across the fork and released on both sides, and at exit they close in the
reverse order. Real clients and bridges across a fork are tests/faults/test_fork.py."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from hotconfig._redis import forking
from hotconfig._redis.forking import Stage, track, untrack

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python 3.12+ warns on fork() in a process with threads; forking such a process is the point.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

ran: list[str] = []  # what the hooks did, in this process (the child's own copy after a fork)


class Tracked:
    """A tracked object that says when its hooks run."""

    def __init__(self, name: str, lock: threading.RLock | None = None) -> None:
        self.name, self.lock = name, lock

    def _fork_lock(self) -> threading.RLock | None:
        return self.lock

    def _after_fork_in_child(self) -> None:
        ran.append(self.name)
        if self.name == "broken":
            raise RuntimeError("could not start afresh")

    def close(self) -> None:
        ran.append(f"closed {self.name}")


def in_child(report: Callable[[], Any]) -> Any:
    """Fork; the child sends ``report()`` (JSON) through a pipe and leaves with ``os._exit``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            os.write(write, json.dumps(report()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as pipe:
            answer = pipe.read()
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed"
    return json.loads(answer)


@pytest.fixture(autouse=True)
def fresh() -> None:
    ran.clear()


def test_the_child_runs_the_hooks_in_stage_order_whatever_the_order_tracked() -> None:
    objects = [
        (Tracked("serving"), Stage.SERVING),
        (Tracked("bridge"), Stage.BRIDGES),
        (Tracked("client-1"), Stage.CLIENTS),
        (Tracked("reporter"), Stage.REPORTERS),
        (Tracked("client-2"), Stage.CLIENTS),
    ]
    for owner, stage in objects:
        track(owner, stage)
    try:
        order = in_child(lambda: [name for name in ran if not name.startswith("closed")])
    finally:
        for owner, _ in objects:
            untrack(owner)
    assert sorted(order[:2]) == ["client-1", "client-2"]
    assert order[2:] == ["reporter", "bridge", "serving"]
    assert ran == []  # the parent runs no hook of the child's


def test_a_hook_that_fails_is_logged_and_the_later_ones_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, bridge = Tracked("broken"), Tracked("bridge")
    track(broken, Stage.CLIENTS)
    track(bridge, Stage.BRIDGES)
    try:

        def report() -> list[Any]:
            messages = [r.getMessage() for r in caplog.records if r.name == "hotconfig.forking"]
            return [ran, messages]

        order, logged = in_child(report)
    finally:
        untrack(broken)
        untrack(bridge)
    assert order == ["broken", "bridge"]
    assert any("could not start afresh after fork" in m and "(clients)" in m for m in logged)


def test_an_untracked_object_is_left_alone_in_the_child() -> None:
    kept, dropped = Tracked("kept"), Tracked("dropped")
    track(kept, Stage.CLIENTS)
    track(dropped, Stage.BRIDGES)
    untrack(dropped)
    untrack(dropped)  # twice: harmless
    try:
        assert in_child(lambda: ran) == ["kept"]
    finally:
        untrack(kept)


def test_tracking_does_not_keep_an_object_alive() -> None:
    owner = Tracked("short-lived")
    track(owner, Stage.SERVING)
    gone = weakref.ref(owner)
    del owner
    gc.collect()
    assert gone() is None
    assert in_child(lambda: ran) == []


def not_held(lock: threading.RLock) -> bool:
    """Whether another thread can take ``lock`` now (an RLock is its owner's to re-enter)."""
    free: list[bool] = []

    def attempt() -> None:
        got = lock.acquire(blocking=False)
        if got:
            lock.release()
        free.append(got)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return free == [True]


def test_the_writer_lock_is_held_across_the_fork_and_released_on_both_sides() -> None:
    lock = threading.RLock()
    state = {"value": "whole"}
    owner = Tracked("writer", lock)
    track(owner, Stage.CLIENTS)
    holding = threading.Event()

    def apply() -> None:  # a change applied under the writer lock, slowly
        with lock:
            state["value"] = "half-applied"
            holding.set()
            time.sleep(0.3)
            state["value"] = "applied"

    writer = threading.Thread(target=apply)
    writer.start()
    try:
        assert holding.wait(5)
        # fork() waits for the lock: the child never sees a state caught mid-apply.
        seen = in_child(lambda: [state["value"], not_held(lock)])
    finally:
        writer.join()
        untrack(owner)
    assert seen == ["applied", True]
    assert not_held(lock)


def test_a_lock_held_for_too_long_delays_the_fork_only_a_bounded_time() -> None:
    lock = threading.RLock()
    owner = Tracked("stuck", lock)
    track(owner, Stage.REPORTERS)
    release, holding = threading.Event(), threading.Event()

    def stuck() -> None:
        with lock:
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=stuck)
    thread.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        assert in_child(lambda: ran) == ["stuck"]
        assert time.monotonic() - started < 10  # forked anyway, after the bounded wait
    finally:
        release.set()
        thread.join()
        untrack(owner)
    assert not_held(lock)


def test_an_object_without_a_lock_is_followed_on_all_the_same() -> None:
    owner = Tracked("lockless", None)
    track(owner, Stage.BRIDGES)
    try:
        assert in_child(lambda: ran) == ["lockless"]
    finally:
        untrack(owner)
    assert forking._held == []  # nothing left held in the parent


EXIT_ORDER = """
from hotconfig._redis.forking import Stage, track

class Tracked:
    def __init__(self, name, fail=False):
        self.name, self.fail = name, fail
    def _fork_lock(self):
        return None
    def _after_fork_in_child(self):
        pass
    def close(self):
        print("closed", self.name, flush=True)
        if self.fail:
            raise RuntimeError("cannot close")

kept = [
    (Tracked("client"), Stage.CLIENTS),
    (Tracked("serving"), Stage.SERVING),
    (Tracked("reporter", fail=True), Stage.REPORTERS),
    (Tracked("bridge"), Stage.BRIDGES),
]
for owner, stage in kept:
    track(owner, stage)
print("exiting", flush=True)
"""


def test_at_exit_objects_close_in_the_reverse_stage_order_even_past_a_failure() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_ORDER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "exiting",
        "closed serving",
        "closed bridge",
        "closed reporter",
        "closed client",
    ]
    assert "could not close at exit" in done.stderr
    assert "(reporters)" in done.stderr
