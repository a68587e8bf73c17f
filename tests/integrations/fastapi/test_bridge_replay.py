"""Replayable channels through ``hotconfig_fastapi.bridge_router`` served by a real uvicorn.

What a browser sees: SSE events with ids; after it reconnects with ``Last-Event-ID`` (or a
``last_event_id`` parameter), exactly the messages it missed; a stream that stays open while
the bridge's Redis connection is killed, each message exactly once; a ``recovery`` event when
the history was trimmed; a refusal at replay; a WebSocket resuming from an id; a long backlog
paced by the browser, and a stalled browser still dropped at its bound.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import websocket

from hotconfig.bridge import Position, Replayable, ReplayPublisher
from hotconfig.testing import EmbeddedServer
from tests.bridging import stats, wait_subscribed
from tests.integrations import resuming
from tests.integrations.fastapi.servers import Served, uvicorn_app
from tests.integrations.fastapi.sse_client import Event, EventReader
from tests.waiting import eventually

BRIDGE_APP = "tests.integrations.fastapi.bridge_app:app"


@pytest.fixture
def app(server: EmbeddedServer, tmp_path: Path) -> Iterator[Served]:
    with uvicorn_app(server, tmp_path, app=BRIDGE_APP) as served:
        yield served


@pytest.fixture
def publisher(server: EmbeddedServer) -> Iterator[ReplayPublisher]:
    with ReplayPublisher(server.url) as publisher:
        yield publisher


def offsets(events: list[Event]) -> list[int]:
    return [Position.parse(e.id or "").offset for e in events]


def test_a_browser_that_reconnects_with_last_event_id_gets_exactly_the_messages_it_missed(
    app: Served, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    url = app.url + "/bridge/sse/chat:s1"
    ids = [publisher.publish("chat:s1", json.dumps({"n": n})) for n in range(3)]
    with EventReader(url, last_event_id=":0") as reader:  # ":0": all that the history holds
        seen = [reader.next() for _ in ids]
    assert [(e.event, e.id) for e in seen] == [("message", i) for i in ids]
    assert [e.json() for e in seen] == [{"n": n} for n in range(3)]
    missed = [publisher.publish("chat:s1", json.dumps({"n": n})) for n in range(3, 7)]
    with EventReader(url, last_event_id=seen[-1].id) as reader:
        wait_subscribed(redis_client, "chat:s1")
        publisher.publish("chat:s1", json.dumps({"n": 7}))
        events = reader.until(lambda e: e.json() == {"n": 7})
        assert reader.pending() == []
    assert [e.json()["n"] for e in events] == [3, 4, 5, 6, 7]
    assert [e.id for e in events[:4]] == missed
    assert offsets(events) == [4, 5, 6, 7, 8]
    assert stats(app)["replayed"] >= 4


def test_a_first_connection_resumes_from_the_query_parameter_and_the_header_wins_over_it(
    app: Served, publisher: ReplayPublisher
) -> None:
    ids = [publisher.publish("chat:s2", f"m{n}") for n in range(5)]
    with EventReader(app.url + f"/bridge/sse/chat:s2?last_event_id={ids[1]}") as reader:
        assert [e.data for e in reader.until(lambda e: e.id == ids[-1])] == ["m2", "m3", "m4"]
    query = f"/bridge/sse/chat:s2?last_event_id={ids[0]}"
    with EventReader(app.url + query, last_event_id=ids[3]) as reader:
        assert [e.data for e in reader.until(lambda e: e.id == ids[-1])] == ["m4"]


def test_the_stream_stays_open_while_the_bridges_connection_is_killed_and_misses_nothing(
    app: Served, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    # ":0" on a channel with no history yet: every message from its first one.
    with EventReader(app.url + "/bridge/sse/chat:s3", last_event_id=":0") as reader:
        wait_subscribed(redis_client, "chat:s3")
        publisher.publish("chat:s3", "before")
        assert reader.next().data == "before"
        # Refused SUBSCRIBE for a while, the bridge is surely away while these are published.
        redis_client.acl_setuser("default", enabled=True, reset=False, commands=["-subscribe"])
        redis_client.client_kill_filter(_type="pubsub")
        sent = [publisher.publish("chat:s3", f"while away {n}") for n in range(10)]
        redis_client.acl_setuser("default", enabled=True, reset=False, commands=["+subscribe"])
        sent.append(publisher.publish("chat:s3", "after"))
        events = reader.until(lambda e: e.data == "after", timeout=10)
        assert reader.pending() == []
    assert [e.data for e in events] == [*(f"while away {n}" for n in range(10)), "after"]
    assert [e.id for e in events] == sent
    assert stats(app)["reconnects"] >= 1


def test_a_browser_whose_position_was_trimmed_gets_a_recovery_event_then_the_live_messages(
    app: Served, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    with ReplayPublisher(server.url, history=Replayable(maxlen=10)) as publisher:
        first = publisher.publish("chat:s4", "first")
        for n in range(300):
            publisher.publish("chat:s4", f"m{n}")
        with EventReader(app.url + "/bridge/sse/chat:s4", last_event_id=first) as reader:
            notice = reader.next()
            wait_subscribed(redis_client, "chat:s4")
            live = publisher.publish("chat:s4", "live")
            assert (reader.next().data, reader.pending()) == ("live", [])
    assert notice.event == "recovery"
    data: dict[str, Any] = notice.json()
    assert (data["recovered"], data["reason"], data["offset"]) == (False, "trimmed", 301)
    assert notice.id == f"{Position.parse(first).epoch}:301"
    assert Position.parse(live).offset == 302


def test_a_grant_revoked_before_the_replay_sees_nothing_stored_and_the_stream_ends(
    app: Served, publisher: ReplayPublisher
) -> None:
    ids = [publisher.publish("revocable:s5", f"private {n}") for n in range(3)]
    with EventReader(app.url + "/bridge/sse/revocable:s5", last_event_id=ids[0]) as reader:
        assert reader.status == 200  # allowed when it subscribed
        notice = reader.next()
        assert reader.ended.wait(5), "the stream stayed open after the refusal"
        assert reader.pending() == []
    assert (notice.event, notice.json()["reason"]) == ("recovery", "forbidden")
    assert stats(app)["replayed"] == 0


def test_a_malformed_last_event_id_answers_400_and_a_websocket_resumes_from_the_parameter(
    app: Served, publisher: ReplayPublisher
) -> None:
    response = httpx.get(
        app.url + "/bridge/sse/chat:s6", headers={"last-event-id": "nonsense"}, timeout=5
    )
    assert response.status_code == 400
    assert "event id" in response.text
    ids = [publisher.publish("chat:s6", f"m{n}") for n in range(4)]
    ws = websocket.create_connection(
        app.url.replace("http", "ws") + f"/bridge/ws/chat:s6?last_event_id={ids[1]}", timeout=5
    )
    try:
        assert [ws.recv() for _ in range(2)] == ["m2", "m3"]  # as published, no envelope
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]


def test_a_hostile_last_event_id_answers_400_and_subscribes_nothing(
    app: Served, redis_client: redis.Redis
) -> None:
    resuming.malformed_id_answers_400("sx", app, redis_client)


def test_a_long_backlog_reaches_the_browser_whole_and_in_order(
    app: Served, publisher: ReplayPublisher
) -> None:
    blob = "x" * 4096
    for n in range(600):  # 2.4 MB, over the 1 MiB that each browser may have waiting
        publisher.publish("chat:s7", f"{n} {blob}")
    with EventReader(app.url + "/bridge/sse/chat:s7", last_event_id=":0") as reader:
        events = [reader.next() for _ in range(600)]
    assert [e.data for e in events] == [f"{n} {blob}" for n in range(600)]
    assert stats(app)["dropped_slow"] == 0


def test_a_stalled_browser_on_a_replayable_channel_is_still_dropped_at_its_bound(
    server: EmbeddedServer, publisher: ReplayPublisher, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = {"BRIDGE_MAX_BUFFER": str(512 * 1024)}
    channel = "chat:stall"
    with uvicorn_app(server, tmp_path, app=BRIDGE_APP, env=env) as app:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
        stalled.connect(("127.0.0.1", app.port))
        stalled.sendall(f"GET /bridge/sse/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        fast_reader = EventReader(app.url + f"/bridge/sse/{channel}", last_event_id=":0")
        with stalled, fast_reader as fast:
            assert eventually(lambda: stats(app)["subscribers"] == 2)
            wait_subscribed(redis_client, channel)
            blob = "x" * 200 * 1024
            written = 0
            while stats(app)["dropped_slow"] == 0:
                assert written < 400, "the stalled client was never disconnected"
                publisher.publish(channel, f"{written} {blob}")
                assert fast.next(timeout=2.0).data == f"{written} {blob}"
                written += 1
            assert eventually(lambda: stats(app)["subscribers"] == 1)
