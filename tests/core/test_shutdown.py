"""The stop handler every event stream watches (bridge/serving/_shutdown.py), with real signals.

A recording handler stands in for the server's (uvicorn's ``handle_exit``, gunicorn's): the
process sends itself SIGTERM, and each watched stream hears of it on its own loop while the
server's handler still runs. The servers themselves are in the integration tests
(``tests/integrations/stopping.py``).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from hotconfig.bridge.serving._shutdown import _Watchers

Seen = list[object]


@pytest.fixture
def server_handler() -> Iterator[Seen]:
    """A Python handler for SIGTERM, as a server installs; the handlers are put back after."""
    seen: Seen = []

    def handle_exit(signum: int, frame: FrameType | None) -> None:
        seen.append(signal.Signals(signum).name)

    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, handle_exit)
    try:
        yield seen
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _watched(watchers: _Watchers, seen: Seen, then: Callable[[], None]) -> None:
    """Watch on a loop of its own, run ``then()``, and wait there until the watcher ran."""

    async def scenario() -> None:
        heard = asyncio.Event()

        def stop_stream() -> None:
            seen.append("stream ended")
            heard.set()

        watchers.add(asyncio.get_running_loop(), stop_stream)
        then()
        await asyncio.wait_for(heard.wait(), 5)

    asyncio.run(scenario())


def test_sigterm_ends_each_watched_stream_on_its_loop_and_the_servers_handler_still_runs(
    server_handler: Seen,
) -> None:
    watchers = _Watchers()
    assert watchers.install()
    _watched(watchers, server_handler, lambda: signal.raise_signal(signal.SIGTERM))
    # The server's handler ran inside the signal handler; the stream ended on its loop after.
    assert server_handler == ["SIGTERM", "stream ended"]
    assert watchers.install()  # idempotent: the handler is not chained to itself
    signal.raise_signal(signal.SIGTERM)
    assert server_handler[2:] == ["SIGTERM"]


def test_a_stream_that_opens_after_the_signal_ends_at_once(server_handler: Seen) -> None:
    watchers = _Watchers()
    assert watchers.install()
    signal.raise_signal(signal.SIGTERM)
    _watched(watchers, server_handler, lambda: None)
    assert server_handler == ["SIGTERM", "stream ended"]


def test_a_stream_that_stopped_watching_is_left_alone(server_handler: Seen) -> None:
    watchers = _Watchers()
    assert watchers.install()
    loop = asyncio.new_event_loop()
    try:
        unwatch = watchers.add(loop, lambda: server_handler.append("stream"))
        unwatch()
        signal.raise_signal(signal.SIGTERM)
        loop.run_until_complete(asyncio.sleep(0))  # what was scheduled there runs now
    finally:
        loop.close()
    assert server_handler == ["SIGTERM"]


def test_nothing_is_installed_off_the_main_thread_or_in_front_of_the_default_action(
    server_handler: Seen,
) -> None:
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(_Watchers().install()))
    thread.start()
    thread.join()
    assert answers == [False]
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    assert not _Watchers().install()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
