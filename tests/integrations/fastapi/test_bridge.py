"""``hotconfig_fastapi.bridge_router`` served by a real uvicorn process on a real server.

What a browser sees: the AI service's tokens over SSE and over a WebSocket, in order and ended
by ``done``; a gap event; the idle end of a stream whose ``done`` was lost; a refusal; many
browsers on one Redis connection; a stalled browser cut off while another keeps receiving;
and a stream that carries on after Redis was killed and started again.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import websocket

from hotconfig.testing import EmbeddedServer
from tests.bridging import DONE, TOKENS, publish, stats, subscribers, wait_subscribed
from tests.integrations import resuming
from tests.integrations.fastapi.servers import Served, uvicorn_app
from tests.integrations.fastapi.sse_client import EventReader
from tests.waiting import eventually

BRIDGE_APP = "tests.integrations.fastapi.bridge_app:app"


@pytest.fixture
def app(server: EmbeddedServer, tmp_path: Path) -> Iterator[Served]:
    with uvicorn_app(server, tmp_path, app=BRIDGE_APP, env={"BRIDGE_IDLE": "1"}) as served:
        yield served


def test_the_token_sequence_reaches_an_sse_client_in_order_and_the_stream_closes_on_done(
    app: Served, redis_client: redis.Redis
) -> None:
    with EventReader(app.url + "/bridge/sse/ai:stream:sess-abc") as reader:
        assert reader.status == 200
        assert reader.content_type.startswith("text/event-stream")
        wait_subscribed(redis_client, "ai:stream:sess-abc")
        sent = publish(redis_client, "ai:stream:sess-abc", *TOKENS, DONE)
        events = [reader.next() for _ in sent]
        assert [(e.event, e.data) for e in events] == [("message", s) for s in sent]
        assert reader.ended.wait(5), "the stream stayed open after done"
        assert reader.pending() == []


def test_the_token_sequence_reaches_a_websocket_client_and_it_is_closed_on_done(
    app: Served, redis_client: redis.Redis
) -> None:
    ws = websocket.create_connection(
        app.url.replace("http", "ws") + "/bridge/ws/ai:stream:sess-ws", timeout=5
    )
    try:
        wait_subscribed(redis_client, "ai:stream:sess-ws")
        sent = publish(redis_client, "ai:stream:sess-ws", *TOKENS, DONE)
        assert [ws.recv() for _ in sent] == sent
        opcode, payload = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(payload[:2], "big") == 1000
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]  # close() is a no-op once closed


def test_a_dropped_index_shows_as_a_gap_event(app: Served, redis_client: redis.Redis) -> None:
    with EventReader(app.url + "/bridge/sse/ai:stream:sess-gap") as reader:
        wait_subscribed(redis_client, "ai:stream:sess-gap")
        publish(redis_client, "ai:stream:sess-gap", TOKENS[0], TOKENS[2], DONE)
        events = reader.until(lambda e: e.data == json.dumps(DONE))
        assert [e.event for e in events] == ["message", "gap", "message", "message"]
        assert events[1].json() == {"channel": "ai:stream:sess-gap", "from": 1, "to": 1}
        assert reader.ended.wait(5)
    assert stats(app)["gaps"] == 1


def test_a_websocket_client_gets_a_gap_notice_as_a_json_frame(
    app: Served, redis_client: redis.Redis
) -> None:
    ws = websocket.create_connection(
        app.url.replace("http", "ws") + "/bridge/ws/ai:stream:sess-wsgap", timeout=5
    )
    try:
        wait_subscribed(redis_client, "ai:stream:sess-wsgap")
        sent = publish(redis_client, "ai:stream:sess-wsgap", TOKENS[0], TOKENS[2], DONE)
        frames = [ws.recv() for _ in range(4)]
        gap = {"event": "gap", "channel": "ai:stream:sess-wsgap", "from": 1, "to": 1}
        assert frames == [sent[0], json.dumps(gap), sent[1], sent[2]]
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]


def test_a_stream_whose_done_was_lost_ends_by_the_idle_timeout(
    app: Served, redis_client: redis.Redis
) -> None:
    with EventReader(app.url + "/bridge/sse/ai:stream:sess-lost") as reader:
        wait_subscribed(redis_client, "ai:stream:sess-lost")
        publish(redis_client, "ai:stream:sess-lost", *TOKENS)
        events = reader.until(lambda e: e.event != "message", timeout=5)
        assert [e.event for e in events] == ["message"] * 3 + ["idle"]
        assert events[-1].json()["next"] == 3
        assert reader.ended.wait(5), "the stream stayed open after its idle timeout"


def test_a_refused_channel_gets_403_over_sse_and_over_a_websocket(
    app: Served, redis_client: redis.Redis
) -> None:
    response = httpx.get(app.url + "/bridge/sse/secret:payroll", timeout=5)
    assert response.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            app.url.replace("http", "ws") + "/bridge/ws/secret:payroll", timeout=5
        )
    assert refused.value.status_code == 403
    assert dict(redis_client.pubsub_numsub("secret:payroll"))[b"secret:payroll"] == 0


async def _sse_client(port: int, path: str, marker: str, arrived: list[float]) -> None:
    """A minimal SSE reader on a raw socket: records when the event with ``marker`` came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data: ") and marker.encode() in line:
                arrived.append(time.monotonic())
                return
    finally:
        writer.close()


def test_many_sse_clients_share_one_redis_connection_and_all_see_a_refresh_within_a_second(
    app: Served, redis_client: redis.Redis
) -> None:
    # 1,000 browsers (the bar) where the open-files limit allows both ends of each.
    clients = 1000 if resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2500 else 200
    channel = "dashboard:refresh:d-1"
    message = json.dumps({"widgetId": "w-1", "dataVersion": 42})

    async def main() -> tuple[float, list[float]]:
        arrived: list[float] = []
        tasks = [
            asyncio.create_task(
                _sse_client(app.port, f"/bridge/sse/{channel}", '"dataVersion": 42', arrived)
            )
            for _ in range(clients)
        ]
        async with asyncio.timeout(20):
            while stats(app)["subscribers"] < clients:
                await asyncio.sleep(0.05)
        assert len(redis_client.client_list(_type="pubsub")) == 1
        wait_subscribed(redis_client, channel)
        published = time.monotonic()
        redis_client.publish(channel, message)
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks)
        return published, arrived

    published, arrived = asyncio.run(main())
    assert len(arrived) == clients
    assert max(arrived) - published < 1.0


def test_a_stalled_client_is_disconnected_at_its_bound_while_another_keeps_receiving(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = {"BRIDGE_MAX_BUFFER": str(512 * 1024)}
    channel = "orders:eu"
    with uvicorn_app(server, tmp_path, app=BRIDGE_APP, env=env) as app:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
        stalled.connect(("127.0.0.1", app.port))
        stalled.sendall(f"GET /bridge/sse/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        with stalled, EventReader(app.url + f"/bridge/sse/{channel}") as fast:
            assert eventually(lambda: stats(app)["subscribers"] == 2)
            wait_subscribed(redis_client, channel)
            blob = "x" * 200 * 1024
            written = 0
            while stats(app)["dropped_slow"] == 0:
                assert written < 400, "the stalled client was never disconnected"
                publish(redis_client, channel, f"{written} {blob}")
                assert fast.next(timeout=1.0).data == f"{written} {blob}"
                written += 1
            stalled.settimeout(10)
            while stalled.recv(1 << 20):  # what it had not read ends, then the connection
                pass
            publish(redis_client, channel, "still here")
            assert fast.until(lambda e: e.data == "still here")[-1].event == "message"
            assert stats(app)["subscribers"] == 1


def test_a_stalled_websocket_client_is_dropped_at_its_bound_while_another_keeps_receiving(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = {"BRIDGE_MAX_BUFFER": str(512 * 1024)}
    channel = "orders:ws"
    with uvicorn_app(server, tmp_path, app=BRIDGE_APP, env=env) as app:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
        stalled.connect(("127.0.0.1", app.port))
        stalled.sendall(
            f"GET /bridge/ws/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        with stalled, EventReader(app.url + f"/bridge/sse/{channel}") as fast:
            assert eventually(lambda: stats(app)["subscribers"] == 2)
            wait_subscribed(redis_client, channel)
            blob = "x" * 200 * 1024
            written = 0
            while stats(app)["dropped_slow"] == 0:
                assert written < 400, "the stalled client was never dropped"
                publish(redis_client, channel, f"{written} {blob}")
                assert fast.next(timeout=1.0).data == f"{written} {blob}"
                written += 1
            assert eventually(lambda: stats(app)["subscribers"] == 1)
            publish(redis_client, channel, "still here")
            assert fast.until(lambda e: e.data == "still here")[-1].event == "message"


@pytest.mark.faults
def test_after_redis_is_killed_and_restarted_mid_stream_later_messages_arrive(
    app: Served, server: EmbeddedServer
) -> None:
    client = server.client()
    with EventReader(app.url + "/bridge/sse/ai:stream:sess-fault") as reader:
        wait_subscribed(client, "ai:stream:sess-fault")
        publish(client, "ai:stream:sess-fault", TOKENS[0])
        assert reader.next().json() == TOKENS[0]
        client.close()
        server.kill()
        server.start()
        client = server.client()
        wait_subscribed(client, "ai:stream:sess-fault")
        # What was published while Redis was down is lost (Pub/Sub): index 1 shows as a gap.
        publish(client, "ai:stream:sess-fault", TOKENS[2], DONE)
        events = reader.until(lambda e: e.data == json.dumps(DONE), timeout=5)
        assert [e.event for e in events] == ["gap", "message", "message"]
        assert reader.ended.wait(5)
    client.close()
    assert stats(app)["reconnects"] >= 1


def test_a_channel_name_no_browser_may_ask_for_answers_400_before_authorize_sees_it(
    app: Served, redis_client: redis.Redis
) -> None:
    resuming.bad_channel_answers_400_before_authorize(app, redis_client)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            app.url.replace("http", "ws") + "/bridge/ws/chat:a%00b", timeout=5
        )
    assert refused.value.status_code == 400  # uvicorn lets the app answer the handshake
    assert b"control characters" in (refused.value.resp_body or b"")
    assert subscribers(redis_client, "chat:a\x00b") == 0
