"""The one Pub/Sub session (hotconfig._redis.session), through a small subclass on a real server:
it opens, hands over what is published, takes commands written from another thread, proves
itself alive, stops within its bound, and comes back after the server does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from hotconfig._redis.connection import Target
from hotconfig._redis.liveness import LivenessError
from hotconfig._redis.session import Session, SessionOptions, await_subscribed
from hotconfig.testing.server import EmbeddedServer
from tests.conftest import ServerFactory
from tests.waiting import eventually

FAST = SessionOptions(
    socket_timeout=1.0,
    ping_interval=0.1,
    liveness_timeout=0.5,
    backoff_base=0.01,
    backoff_max=0.1,
    misconfigured_retry=0.1,
)


class Recorder(Session):
    """Subscribes ``channels`` and records what every hook sees (hooks run on its thread)."""

    def __init__(
        self, url: str, *channels: str, options: SessionOptions = FAST, probe: bool = False
    ) -> None:
        super().__init__(Target(url), options, "test-session", "test:probe:x")
        self.channels = channels
        self.messages: list[tuple[bytes, bytes]] = []
        self.replies: list[list[Any]] = []
        self.errors: list[tuple[BaseException, str | None]] = []
        self.opens = 0
        self.closes = 0
        self.drains = 0
        self.dues = 0
        self.on_message: Callable[[Recorder, bytes], object] = lambda session, data: None

    def connect(self) -> tuple[Any, Any]:
        return self.target.listener_clients(self.options.socket_timeout)

    def open(self, publisher: Any, pubsub: Any) -> None:
        channels = [*self.channels, *self.subscribe_probe()]
        pubsub.subscribe(*channels)
        await_subscribed(pubsub, len(channels), 2.0, lambda: self.stopping)

    def opened(self, publisher: Any) -> None:
        self.opens += 1

    def received(self, publisher: Any, reply: list[Any]) -> None:
        self.replies.append(reply)
        if reply[0] == b"message":
            self.messages.append((reply[1], reply[2]))
            self.on_message(self, reply[2])

    def due(self, publisher: Any, connection: Any) -> float:
        self.dues += 1
        return self.period

    def drained(self) -> None:
        self.drains += 1

    def failed(self, error: BaseException, hint: str | None) -> None:
        self.errors.append((error, hint))

    def closed(self) -> None:
        self.closes += 1


@pytest.fixture
def started(server: EmbeddedServer) -> Iterator[Callable[..., Recorder]]:
    """Start a :class:`Recorder` on ``server``, live; every one stopped after the test."""
    made: list[Recorder] = []

    def start(*channels: str, url: str | None = None, **kwargs: Any) -> Recorder:
        session = Recorder(url or server.url, *channels, **kwargs)
        made.append(session)
        session.start()
        return session

    yield start
    for session in made:
        session.stop(5)


def live(session: Recorder, opens: int = 1) -> bool:
    """Whether ``session`` opened ``opens`` times within the usual wait."""
    return eventually(lambda: session.opens >= opens)


def pubsub_clients(client: redis.Redis) -> int:
    return len(client.client_list(_type="pubsub"))


def test_published_messages_are_handed_over_in_order(
    started: Callable[..., Recorder], redis_client: redis.Redis
) -> None:
    session = started("orders:eu", "orders:us")
    assert live(session)
    sent = [(b"orders:eu" if n % 2 else b"orders:us", b"m%d" % n) for n in range(50)]
    for channel, data in sent:
        redis_client.publish(channel, data)
    assert eventually(lambda: len(session.messages) == 50)
    assert session.messages == sent
    assert session.drains >= 1
    # PONGs of the heartbeat are the session's own business: never handed over.
    time.sleep(3 * FAST.ping_interval)
    assert {reply[0] for reply in session.replies} == {b"message"}


def test_the_probe_s_echo_is_not_handed_over(
    started: Callable[..., Recorder], redis_client: redis.Redis
) -> None:
    options = SessionOptions(ping_interval=0.1, liveness_timeout=0.5, probe_interval=0.05)
    session = started("orders:eu", options=options)
    assert live(session)
    assert eventually(lambda: redis_client.pubsub_numsub("test:probe:x")[0][1] == 1)
    time.sleep(0.3)  # several probes published and echoed
    redis_client.publish("orders:eu", "real")
    assert eventually(lambda: session.messages == [(b"orders:eu", b"real")])
    assert session.errors == []


def test_a_subscribe_written_from_another_thread_takes_effect_at_once(
    started: Callable[..., Recorder], redis_client: redis.Redis
) -> None:
    session = started("first")
    assert live(session)
    assert session.send("SUBSCRIBE", "late:a", "late:b")
    assert eventually(
        lambda: (
            [r[1] for r in session.replies if r[0] == b"subscribe"]
            == [
                b"late:a",
                b"late:b",
            ]
        )
    )
    redis_client.publish("late:b", "hello")
    assert eventually(lambda: session.messages == [(b"late:b", b"hello")])
    assert session.send("UNSUBSCRIBE", "late:b")
    assert eventually(lambda: any(r[0] == b"unsubscribe" for r in session.replies))
    assert redis_client.pubsub_numsub("late:b") == [(b"late:b", 0)]


def test_send_before_the_session_opened_says_it_wrote_nothing(server: EmbeddedServer) -> None:
    session = Recorder(server.url, "never")
    assert not session.send("SUBSCRIBE", "x")  # not started: no connection yet


def test_stop_ends_the_thread_and_closes_the_connection(
    started: Callable[..., Recorder], redis_client: redis.Redis
) -> None:
    session = started("orders:eu")
    assert live(session)
    assert pubsub_clients(redis_client) == 1
    assert session.stop(5)
    assert not session.thread.is_alive()
    assert session.stopping
    assert session.closes == 1
    assert session.errors == []  # a stop is no failure
    assert eventually(lambda: pubsub_clients(redis_client) == 0)
    assert not session.send("SUBSCRIBE", "x")


def test_stop_from_a_hook_returns_true_and_the_thread_ends_after_it(
    started: Callable[..., Recorder], redis_client: redis.Redis
) -> None:
    answers: list[bool] = []
    session = started("orders:eu")
    session.on_message = lambda s, data: answers.append(s.stop(5))
    assert live(session)
    redis_client.publish("orders:eu", "stop now")
    assert eventually(lambda: answers == [True])
    session.thread.join(5)
    assert not session.thread.is_alive()
    assert eventually(lambda: pubsub_clients(redis_client) == 0)


def test_stop_closes_the_sockets_even_while_a_hook_is_busy_and_abandon_does_not(
    started: Callable[..., Recorder], redis_client: redis.Redis
) -> None:
    release = threading.Event()
    busy, stopping = started("busy"), started("abandoned")
    for session in (busy, stopping):
        session.on_message = lambda s, data: release.wait(10)
        assert live(session)
    redis_client.publish("busy", "block")
    redis_client.publish("abandoned", "block")
    assert eventually(lambda: busy.messages and stopping.messages)
    stopping.abandon()  # returns at once; the thread is still inside its hook
    assert stopping.stopping
    assert not busy.stop(0.2)  # the hook holds the thread past the bound ...
    # ... but its socket is closed; the abandoned session's is untouched.
    assert pubsub_clients(redis_client) == 1
    assert redis_client.pubsub_numsub("abandoned") == [(b"abandoned", 1)]
    release.set()
    for session in (busy, stopping):  # the hooks return: both threads end by themselves
        session.thread.join(5)
        assert not session.thread.is_alive()
    assert eventually(lambda: pubsub_clients(redis_client) == 0)


def test_periodic_work_comes_due_every_period(started: Callable[..., Recorder]) -> None:
    session = started("orders:eu")
    session.period = 0.05
    assert live(session)
    assert eventually(lambda: session.dues >= 5)


@pytest.mark.faults
def test_a_server_that_goes_away_fails_the_session_and_it_comes_back_after_a_restart(
    started: Callable[..., Recorder], server: EmbeddedServer
) -> None:
    session = started("orders:eu")
    assert live(session)
    server.kill()
    assert eventually(lambda: session.errors)
    error, hint = session.errors[0]
    assert isinstance(error, (redis.ConnectionError, LivenessError, OSError))
    assert hint is None  # a server that is down: nothing for the user to fix
    server.start()
    assert eventually(lambda: session.opens == 2, timeout=10)
    with server.client() as client:
        client.publish("orders:eu", "after")
    assert eventually(lambda: session.messages == [(b"orders:eu", b"after")])
    assert session.closes >= 1


@pytest.mark.faults
def test_a_frozen_server_is_found_dead_by_the_heartbeat(
    started: Callable[..., Recorder], server: EmbeddedServer
) -> None:
    session = started("orders:eu")
    assert live(session)
    server.pause()
    try:
        assert eventually(lambda: session.errors, timeout=5)
        assert isinstance(session.errors[0][0], (LivenessError, redis.TimeoutError))
    finally:
        server.resume()
    assert eventually(lambda: session.opens >= 2, timeout=10)


def test_a_server_that_refuses_the_client_is_told_with_what_to_fix(
    started: Callable[..., Recorder], server_factory: ServerFactory
) -> None:
    guarded = server_factory(password="right")
    session = started("x", url=f"redis://:wrong@{guarded.host}:{guarded.port}/0")
    assert eventually(lambda: len(session.errors) >= 2)  # asked again, at its slow pace
    error, hint = session.errors[0]
    assert isinstance(error, redis.AuthenticationError)
    assert hint is not None
    assert "password" in hint
    assert session.opens == 0


def test_await_subscribed_returns_once_every_subscription_is_acknowledged(
    redis_client: redis.Redis,
) -> None:
    pubsub = redis_client.pubsub()
    try:
        pubsub.subscribe("a", "b", "c")
        started = time.monotonic()
        await_subscribed(pubsub, 3, timeout=5)
        assert time.monotonic() - started < 5
        assert redis_client.pubsub_numsub("a", "b", "c") == [(b"a", 1), (b"b", 1), (b"c", 1)]
    finally:
        pubsub.close()


def test_await_subscribed_raises_when_no_acknowledgement_can_come(
    redis_client: redis.Redis,
) -> None:
    pubsub = redis_client.pubsub()
    try:
        pubsub.subscribe("only-one")
        started = time.monotonic()
        with pytest.raises(LivenessError, match=r"within 0\.3s"):
            await_subscribed(pubsub, 2, timeout=0.3)
        assert time.monotonic() - started < 3
    finally:
        pubsub.close()


def test_await_subscribed_returns_early_when_told_to_stop(redis_client: redis.Redis) -> None:
    pubsub = redis_client.pubsub()
    try:
        pubsub.subscribe("a")
        asked = threading.Event()
        threading.Timer(0.1, asked.set).start()
        started = time.monotonic()
        await_subscribed(pubsub, 5, timeout=30, stopping=asked.is_set)  # no error
        assert time.monotonic() - started < 10
    finally:
        pubsub.close()
