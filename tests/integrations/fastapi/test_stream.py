"""``GET /stream`` and ``GET /health`` served by a real uvicorn process on a real server.

What a browser and a load balancer see: the current values first, then each change with its
version as the event id, only allowed keys, a resume after a reconnect, a slow reader cut off
without slowing a fast one, 503 while Redis is frozen, and streams that end when the server
is told to stop.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from tests.integrations.fastapi.servers import Served, uvicorn_app
from tests.integrations.fastapi.sse_client import EventReader
from tests.waiting import eventually


@pytest.fixture
def store(server: EmbeddedServer) -> Iterator[ConfigStore]:
    with ConfigStore(server.url) as store:
        yield store


@pytest.fixture
def app(server: EmbeddedServer, tmp_path: Path) -> Iterator[Served]:
    with uvicorn_app(server, tmp_path) as served:
        yield served


_http = httpx.Client(timeout=5)  # one client: each new one loads a TLS context (~30 ms)


@pytest.fixture(scope="module", autouse=True)
def _close_http_client() -> Iterator[None]:
    yield
    _http.close()


def health(app: Served) -> httpx.Response:
    return _http.get(app.url + "/health")


def test_a_stream_starts_with_the_allowed_values_then_sends_each_change_with_its_version(
    server: EmbeddedServer, store: ConfigStore, tmp_path: Path
) -> None:
    store.set("ui.banner", "Welcome")
    store.set("db.password", "hunter2")  # matched by the wildcard "db.*" below: still never sent
    store.set("internal.limit", 3)  # not allowed at all
    with (
        uvicorn_app(server, tmp_path, env={"STREAM_KEYS": "ui.*,db.*"}) as app,
        EventReader(app.url + "/stream") as reader,
    ):
        assert reader.status == 200
        assert reader.content_type.startswith("text/event-stream")
        first = reader.next()
        assert first.event == "reset"
        assert first.json() == {"version": 3, "values": {"ui.banner": "Welcome"}}
        assert first.id == "3"

        version = store.set("ui.banner", "Hello")
        store.set("db.password", "hunter3")
        store.set("internal.limit", 4)
        # Each event's id is the version its value is current at: the write's own, or a later
        # one when the listener applied a burst of writes in one step.
        change = reader.next()
        assert change.event == "change"
        assert change.json() == {"key": "ui.banner", "value": "Hello", "version": change.version}
        assert change.version >= version
        deleted = store.delete("ui.banner")
        gone = reader.next()
        assert (gone.event, gone.id) == ("change", str(deleted))
        assert gone.json() == {"key": "ui.banner", "deleted": True, "version": deleted}
        # Idle streams carry keep-alive comments; nothing else came (no secret, no other key).
        assert eventually(lambda: reader.comments >= 1, timeout=5)
        assert reader.pending() == []


def test_a_reconnect_with_last_event_id_gets_what_changed_since_or_a_reset(
    app: Served, store: ConfigStore
) -> None:
    store.set("ui.banner", "one")
    with EventReader(app.url + "/stream") as reader:
        seen = reader.until(
            lambda e: (
                e.event == "change"
                or e.json()["values"] == {"ui.banner": "one", "greeting": "hello"}
            )
        )
        last_id = seen[-1].id
    assert last_id is not None

    # While the browser is away: two allowed keys change (one twice), one key not allowed.
    store.set("ui.banner", "two")
    store.set("ui.color", "red")
    store.set("ui.banner", "three")
    final = store.set("other.key", 1)
    assert eventually(lambda: health(app).json()["version"] == final)

    with EventReader(app.url + "/stream", last_event_id=last_id) as reader:
        caught_up: dict[str, object] = {}
        while len(caught_up) < 2:
            event = reader.next()
            assert event.event == "change", event  # no reset: this process knows what changed
            assert int(last_id) <= event.version <= final
            caught_up[event.json()["key"]] = event.json()["value"]
        # The current values, once each; not the history (ui.banner "two" is gone for good).
        assert caught_up == {"ui.color": "red", "ui.banner": "three"}
        assert eventually(lambda: reader.comments >= 1, timeout=5)
        assert reader.pending() == []

    # An id this process cannot account for (before it started following) gets a reset.
    with EventReader(app.url + "/stream", last_event_id="0") as reader:
        reset = reader.next()
        assert reset.event == "reset"
        assert reset.json()["values"] == {
            "ui.banner": "three",
            "ui.color": "red",
            "greeting": "hello",
        }
    streams = health(app).json()["streams"]
    assert (streams["resumed"], streams["reset"]) == (1, 2)


def test_a_slow_client_is_disconnected_at_its_bound_while_a_fast_one_keeps_up(
    server: EmbeddedServer, store: ConfigStore, tmp_path: Path
) -> None:
    bound = 256 * 1024
    env = {"STREAM_KEYS": "big.*", "STREAM_MAX_BUFFER": str(bound)}
    with uvicorn_app(server, tmp_path, env=env) as app:
        # A browser tab that stopped reading: a tiny receive window, and it never reads.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        slow.connect(("127.0.0.1", app.port))
        slow.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        with slow, EventReader(app.url + "/stream") as fast:
            assert fast.next().event == "reset"
            assert eventually(lambda: health(app).json()["streams"]["open"] == 2)
            blob = "x" * 64 * 1024
            written = 0
            while health(app).json()["streams"]["dropped_slow"] == 0:
                assert written < 400, "the slow client was never disconnected"
                sent = time.monotonic()
                version = store.set(f"big.k{written}", blob)
                event = fast.next(timeout=1.0)  # each change reaches the fast one at once
                assert (event.id, event.arrived - sent < 1.0) == (str(version), True)
                written += 1
            # The slow one was cut off: what it has not read ends, then the connection does.
            slow.settimeout(10)
            while slow.recv(1 << 20):
                pass
            # The fast one is still served, in order.
            version = store.set("big.after", "still here")
            assert fast.until(lambda e: e.id == str(version))[-1].json()["value"] == "still here"
            streams = health(app).json()["streams"]
            assert (streams["open"], streams["dropped_slow"]) == (1, 1)


def test_health_stays_ready_while_redis_is_frozen_and_says_so_in_its_body(
    app: Served, server: EmbeddedServer, store: ConfigStore
) -> None:
    version = store.set("greeting", "hi")
    assert eventually(lambda: health(app).json()["version"] == version)
    response = health(app)
    assert response.status_code == 200
    body = response.json()
    assert (body["ready"], body["status"], body["lag"]) == (True, "LIVE", 0)
    assert body["counts"]["applied"] == 1
    assert "url" not in response.text
    assert str(server.port) not in response.text  # nothing of where Redis is

    server.pause()
    try:
        # A Redis blip must not take every worker out of the load balancer: the last good
        # values are still served, and the body says the process is in an outage.
        assert eventually(lambda: health(app).json()["status"] == "INTERRUPTED", timeout=10)
        frozen = health(app)
        assert frozen.status_code == 200
        body = frozen.json()
        assert (body["ready"], body["lag"], body["version"]) == (True, None, version)
        assert body["outage_s"] >= 0
    finally:
        server.resume()
    assert eventually(lambda: health(app).json()["status"] == "LIVE", timeout=15)


def test_sigterm_ends_open_streams_and_the_server_exits_promptly(
    app: Served, store: ConfigStore
) -> None:
    readers = [EventReader(app.url + "/stream") for _ in range(3)]
    try:
        for reader in readers:
            assert reader.next().event == "reset"
        stopping = time.monotonic()
        app.process.terminate()
        for reader in readers:
            end = reader.until(lambda e: e.event == "end", timeout=5)[-1]
            assert end.json() == {"reason": "shutdown"}
            assert reader.ended.wait(5)
        app.process.wait(timeout=5)
        # Without the streams ending, uvicorn would wait for them forever.
        assert time.monotonic() - stopping < 3.0
    finally:
        for reader in readers:
            reader.close()
