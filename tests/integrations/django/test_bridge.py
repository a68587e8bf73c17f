"""``hotconfig_django.bridge`` in real uvicorn (ASGI) and gunicorn (WSGI) processes.

What a browser sees: the AI service's tokens over SSE and over a WebSocket, in order and ended
by ``done``; a refused channel (403, nothing subscribed); a browser that leaves, let go at
once; under WSGI (gunicorn's threaded workers) the same stream; and on SIGTERM, under
uvicorn and under gunicorn, every open stream ends with ``end`` and the server exits. On a
replayable channel: after a reconnect with ``Last-Event-ID`` (or a ``last_event_id``
parameter), exactly the messages it missed; a ``recovery`` event for a trimmed or unknown
position; 400 for a malformed id; a refusal at replay; a WebSocket resuming the same way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import websocket

from hotconfig.bridge import ReplayPublisher
from hotconfig.testing import EmbeddedServer, free_port
from tests.bridging import DONE, TOKENS, publish, stats, subscribers
from tests.integrations import resuming, stopping
from tests.integrations.fastapi.servers import ROOT, Served, serving
from tests.integrations.fastapi.sse_client import EventReader
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def site(server: EmbeddedServer, tmp_path: Path) -> Iterator[Served]:
    """The bridge's test project under uvicorn; streams still open at the end are cut in 1 s."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "tests.integrations.django.bridge_asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--timeout-graceful-shutdown", "1",
    ]  # fmt: skip
    env = {"DJANGO_SETTINGS_MODULE": "tests.integrations.django.bridge_settings"}
    with serving(command, port, tmp_path / "uvicorn.log", redis=server, env=env, cwd=ROOT) as s:
        yield s


@pytest.mark.parametrize("served", ["site", "wsgi_site"])  # ASGI under uvicorn, WSGI threads
def test_the_token_sequence_reaches_an_sse_client_in_order_and_the_stream_ends_on_done(
    served: str, request: pytest.FixtureRequest, redis_client: redis.Redis
) -> None:
    site: Served = request.getfixturevalue(served)
    channel = f"ai:stream:sess-{served}"
    with EventReader(f"{site.url}/bridge/sse/{channel}") as reader:
        assert reader.status == 200
        assert reader.content_type.startswith("text/event-stream")
        assert eventually(lambda: subscribers(redis_client, channel) == 1)
        sent = publish(redis_client, channel, *TOKENS, DONE)
        events = [reader.next() for _ in sent]
        assert [(e.event, e.data) for e in events] == [("message", s) for s in sent]
        assert reader.ended.wait(5), "the stream stayed open after done"
        assert reader.pending() == []
    assert eventually(lambda: subscribers(redis_client, channel) == 0)


def test_the_token_sequence_reaches_a_websocket_client_and_it_is_closed_on_done(
    site: Served, redis_client: redis.Redis
) -> None:
    url = site.url.replace("http", "ws") + "/bridge/ws/ai:stream:sess-ws"
    ws = websocket.create_connection(url, timeout=5)
    try:
        assert eventually(lambda: subscribers(redis_client, "ai:stream:sess-ws") == 1)
        sent = publish(redis_client, "ai:stream:sess-ws", TOKENS[0], TOKENS[2], DONE)
        gap = {"event": "gap", "channel": "ai:stream:sess-ws", "from": 1, "to": 1}
        assert [ws.recv() for _ in range(4)] == [sent[0], json.dumps(gap), *sent[1:]]
        opcode, payload = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(payload[:2], "big") == 1000
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]  # close() is a no-op once closed


def test_a_refused_channel_gets_403_over_sse_and_over_a_websocket(
    site: Served, redis_client: redis.Redis
) -> None:
    response = httpx.get(site.url + "/bridge/sse/secret:payroll", timeout=5)
    assert (response.status_code, response.text) == (403, "forbidden")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            site.url.replace("http", "ws") + "/bridge/ws/secret:payroll", timeout=5
        )
    assert refused.value.status_code == 403
    assert subscribers(redis_client, "secret:payroll") == 0
    # Django itself still answers what the wrapper hands on.
    assert httpx.get(site.url + "/health", timeout=5).text == "ok"


@pytest.mark.parametrize("served", ["site", "wsgi_site"])  # ASGI under uvicorn, WSGI threads
def test_a_channel_name_no_browser_may_ask_for_answers_400_before_authorize_sees_it(
    served: str, request: pytest.FixtureRequest, redis_client: redis.Redis
) -> None:
    site: Served = request.getfixturevalue(served)
    resuming.bad_channel_answers_400_before_authorize(site, redis_client)
    if served == "site":  # the WebSocket wrapper: refused in the handshake, nothing subscribed
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                site.url.replace("http", "ws") + "/bridge/ws/chat:a%00b", timeout=5
            )
        assert refused.value.status_code == 400  # uvicorn lets the app answer the handshake
        assert b"control characters" in (refused.value.resp_body or b"")
        assert subscribers(redis_client, "chat:a\x00b") == 0


def test_a_browser_that_leaves_is_let_go_and_its_channel_unsubscribed(
    site: Served, redis_client: redis.Redis
) -> None:
    channel = "dashboard:refresh:sales"
    with EventReader(site.url + "/bridge/sse/" + channel) as reader:
        assert eventually(lambda: subscribers(redis_client, channel) == 1)
        refresh = json.dumps({"widgetId": "revenue", "dataVersion": 2})
        redis_client.publish(channel, refresh)
        assert reader.next().data == refresh
    # Django cancels the response when the client disconnects; the subscription ends with it.
    assert eventually(lambda: subscribers(redis_client, channel) == 0)


def test_sigterm_under_uvicorn_ends_every_open_stream_and_the_server_exits_at_once(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # No --timeout-graceful-shutdown: left alone, uvicorn waits for open streams forever.
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "tests.integrations.django.bridge_asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    env = {"DJANGO_SETTINGS_MODULE": "tests.integrations.django.bridge_settings"}
    with serving(command, port, tmp_path / "uvicorn.log", redis=server, env=env, cwd=ROOT) as s:
        channels = ["dashboard:refresh:a", "dashboard:refresh:b"]
        stopping.sigterm_ends_open_streams(s, redis_client, channels)


@pytest.fixture
def wsgi_site(server: EmbeddedServer, tmp_path: Path) -> Iterator[Served]:
    """The same project under WSGI: gunicorn's threaded workers, its default graceful timeout,
    and the hook that installs the stop handler (the URLs load on a request thread)."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "tests.integrations.django.bridge_wsgi:application",
        "-c", "python:tests.integrations.gunicorn_hooks",
        "--worker-class", "gthread", "--threads", "8", "--workers", "2",
        "--bind", f"127.0.0.1:{port}", "--graceful-timeout", stopping.GRACEFUL_TIMEOUT,
    ]  # fmt: skip
    env = {"DJANGO_SETTINGS_MODULE": "tests.integrations.django.bridge_settings"}
    with serving(command, port, tmp_path / "gunicorn.log", redis=server, env=env, cwd=ROOT) as s:
        yield s


def test_sigterm_under_gunicorn_threads_ends_every_open_stream_and_the_workers_exit_at_once(
    wsgi_site: Served, redis_client: redis.Redis
) -> None:
    channels = ["dashboard:refresh:a", "dashboard:refresh:b", "dashboard:refresh:c"]
    stopping.sigterm_ends_open_streams(wsgi_site, redis_client, channels)


# -- replayable channels: resuming by Last-Event-ID ----------------------------------------------


@pytest.fixture
def publisher(server: EmbeddedServer) -> Iterator[ReplayPublisher]:
    with ReplayPublisher(server.url) as publisher:
        yield publisher


def test_a_browser_that_reconnects_with_last_event_id_gets_exactly_the_messages_it_missed(
    site: Served, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    resuming.reconnect_gets_exactly_what_was_missed("d", site, publisher, redis_client)


def test_a_first_connection_resumes_from_the_query_parameter_and_the_header_wins_over_it(
    site: Served, publisher: ReplayPublisher
) -> None:
    resuming.query_parameter_resumes_and_the_header_wins("d", site, publisher)


def test_a_trimmed_or_unknown_position_gets_a_recovery_event_then_the_live_messages(
    site: Served, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    resuming.trimmed_or_unknown_position_gets_a_recovery_event("d", site, server, redis_client)


def test_a_malformed_last_event_id_answers_400_and_subscribes_nothing(
    site: Served, redis_client: redis.Redis
) -> None:
    resuming.malformed_id_answers_400("d", site, redis_client)


def test_a_grant_revoked_before_the_replay_sees_nothing_stored_and_the_stream_ends(
    site: Served, publisher: ReplayPublisher
) -> None:
    resuming.revoked_grant_sees_nothing_stored("d", site, publisher)


def test_a_websocket_resumes_from_the_parameter_and_is_closed_when_refused_at_replay(
    site: Served, publisher: ReplayPublisher
) -> None:
    base = site.url.replace("http", "ws") + "/bridge/ws/"
    ids = [publisher.publish("chat:d6", f"m{n}") for n in range(4)]
    ws = websocket.create_connection(base + f"chat:d6?last_event_id={ids[1]}", timeout=5)
    try:
        assert [ws.recv() for _ in range(2)] == ["m2", "m3"]  # as published, no envelope
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(base + "chat:d6?last_event_id=nonsense", timeout=5)
    # Refused in the handshake, nothing subscribed: uvicorn lets the app answer it, with why.
    assert refused.value.status_code == 400
    assert b"not an event id of a replayable channel" in (refused.value.resp_body or b"")
    publisher.publish("revocable:d6", "private")
    ws = websocket.create_connection(base + "revocable:d6?last_event_id=:0", timeout=5)
    try:
        notice = json.loads(ws.recv())
        assert (notice["event"], notice["reason"]) == ("recovery", "forbidden")
        opcode, payload = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(payload[:2], "big") == 1008
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]
    assert stats(site)["replayed"] == 2
