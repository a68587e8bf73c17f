"""The bridge's WebSocket forwarder as a raw ASGI app, over a real bridge and server.

The integration tests drive it through real servers and a real WebSocket client (the token
stream, a 403, a resume, a stalled client); here a hand-written ``receive``/``send`` pair makes
each case exact: what ``authorize`` is given, which connections pass to the wrapped app, the
close codes, and a client that leaves or whose connection breaks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import pytest
import redis

from hotconfig.bridge import Bridge, Delivery, Replayable, ReplayPublisher, Sequenced
from hotconfig.bridge.serving import Handshake, forward, websocket_app
from hotconfig.bridge.serving._websocket import Scope
from hotconfig.testing import EmbeddedServer
from tests.bridging import DONE, TOKENS, publish, run, subscribers
from tests.waiting import eventually

PREFIX = "/bridge/ws/"


class Client:
    """One WebSocket connection as the ASGI server hands it to the app."""

    def __init__(self, *, connects: bool = True, broken: bool = False) -> None:
        self.sent: list[Mapping[str, Any]] = []
        self.incoming: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self.incoming.put_nowait(
            {"type": "websocket.connect" if connects else "websocket.disconnect"}
        )
        self._broken = broken

    async def receive(self) -> MutableMapping[str, Any]:
        return await self.incoming.get()

    async def send(self, message: Mapping[str, Any]) -> None:
        if self._broken and message["type"] == "websocket.send":
            raise ConnectionResetError("the peer reset the connection")
        self.sent.append(message)

    def leave(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect"})

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent if m["type"] == "websocket.send"]

    @property
    def closed(self) -> Mapping[str, Any] | None:
        return next((m for m in self.sent if m["type"] == "websocket.close"), None)

    async def wait_accepted(self) -> None:
        async with asyncio.timeout(5):
            while not self.sent:
                await asyncio.sleep(0.005)
        assert self.sent[0] == {"type": "websocket.accept"}


def scope(path: str, headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b"") -> Scope:
    return {"type": "websocket", "path": path, "headers": headers or [], "query_string": query}


class Asked:
    """An ``authorize`` that records what it was asked and answers ``answer``."""

    def __init__(self, answer: object = True) -> None:
        self.answer = answer
        self.asked: list[tuple[Handshake, str]] = []

    async def __call__(self, handshake: Handshake, channel: str) -> bool:
        self.asked.append((handshake, channel))
        return self.answer  # type: ignore[return-value]  # what a careless authorize returns


class Wrapped:
    """The app behind the forwarder: what reached it."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.scopes.append(scope)


CLASSES: dict[str, Delivery] = {"ai:stream:*": Sequenced(idle_timeout=5), "chat:*": Replayable()}


@pytest.fixture
def bridge(server: EmbeddedServer) -> Iterator[Bridge]:
    with Bridge(server.url, classes=CLASSES) as opened:
        yield opened


def test_the_handshake_authorize_sees_has_lowercase_headers_cookies_and_first_query_values() -> (
    None
):
    handshake = Handshake.from_scope(
        scope(
            "/bridge/ws/chat:1",
            headers=[
                (b"X-Tenant", b"acme"),
                (b"x-tenant", b"other"),
                (b"Cookie", b"session=abc"),
                (b"cookie", b"theme=dark"),
            ],
            query=b"token=t1&token=t2&mode=live",
        )
    )
    assert handshake.path == "/bridge/ws/chat:1"
    assert handshake.headers["x-tenant"] == "acme, other"  # repeated headers join as HTTP says
    assert handshake.cookies == {"session": "abc", "theme": "dark"}
    assert handshake.query == {"token": "t1", "mode": "live"}


def test_unreadable_cookies_give_authorize_none_rather_than_failing_the_handshake() -> None:
    handshake = Handshake.from_scope(scope("/x", headers=[(b"cookie", b'a="unterminated')]))
    assert handshake.cookies == {}
    assert handshake.headers["cookie"] == 'a="unterminated'


def test_the_forwarder_refuses_to_be_built_without_authorize_or_with_a_bad_prefix(
    bridge: Bridge,
) -> None:
    with pytest.raises(TypeError, match="authorize"):
        websocket_app(Wrapped(), bridge, authorize=None, prefix=PREFIX)  # type: ignore[arg-type]
    for prefix in ("bridge/ws/", "/bridge/ws", ""):
        with pytest.raises(ValueError, match="prefix must start and end with '/'"):
            websocket_app(Wrapped(), bridge, authorize=Asked(), prefix=prefix)


def test_http_lifespan_and_other_websockets_go_to_the_wrapped_app(bridge: Bridge) -> None:
    wrapped, asked = Wrapped(), Asked()
    app = websocket_app(wrapped, bridge, authorize=asked, prefix=PREFIX)
    scopes: list[Scope] = [
        {"type": "http", "path": PREFIX + "chat:1"},
        {"type": "lifespan"},
        scope("/elsewhere/ws/chat:1"),
        scope("/bridge/wsx"),
    ]

    async def main() -> None:
        for each in scopes:
            client = Client()
            await app(each, client.receive, client.send)
            assert client.sent == []

    run(main)
    assert wrapped.scopes == scopes
    assert asked.asked == []
    assert bridge.stats.subscribers == 0


@pytest.mark.parametrize("answer", [False, 1, "yes", None])
def test_anything_but_true_from_authorize_refuses_before_accepting(
    bridge: Bridge, answer: object
) -> None:
    asked = Asked(answer)
    app = websocket_app(Wrapped(), bridge, authorize=asked, prefix=PREFIX)
    client = Client()
    run(lambda: app(scope(PREFIX + "ai%3Astream%3As%201"), client.receive, client.send))
    assert client.sent == [{"type": "websocket.close", "code": 1008}]
    assert [channel for _, channel in asked.asked] == ["ai:stream:s 1"]  # the path, unquoted
    assert bridge.stats.subscribers == 0


MALFORMED = {
    "type": "websocket.close",
    "code": 1008,
    "reason": "malformed channel name or last_event_id",
}


@pytest.mark.parametrize(
    "path", ["", "secret:a%00b", "secret:a%0D%0Ab", "secret:%1B[2J", "secret:" + "x" * 1020]
)
def test_a_channel_no_browser_may_ask_for_is_refused_before_authorize_sees_it(
    bridge: Bridge, redis_client: redis.Redis, path: str
) -> None:
    asked = Asked()
    app = websocket_app(Wrapped(), bridge, authorize=asked, prefix=PREFIX)
    client = Client()
    run(lambda: app(scope(PREFIX + path), client.receive, client.send))
    assert client.sent == [MALFORMED]
    assert asked.asked == []
    assert bridge.stats.subscribers == 0


def test_where_the_server_lets_the_app_answer_a_handshake_a_bad_channel_gets_400_and_why(
    bridge: Bridge,
) -> None:
    asked = Asked()
    app = websocket_app(Wrapped(), bridge, authorize=asked, prefix=PREFIX)
    client = Client()
    denial = {**scope(PREFIX + "secret:a%00b"), "extensions": {"websocket.http.response": {}}}
    run(lambda: app(denial, client.receive, client.send))
    start, body = client.sent
    assert (start["type"], start["status"]) == ("websocket.http.response.start", 400)
    assert (b"content-type", b"text/plain; charset=utf-8") in start["headers"]
    assert body["type"] == "websocket.http.response.body"
    assert "may not hold control characters" in body["body"].decode()
    assert asked.asked == []


def test_a_client_gone_before_its_handshake_is_answered_gets_nothing(bridge: Bridge) -> None:
    asked = Asked()
    app = websocket_app(Wrapped(), bridge, authorize=asked, prefix=PREFIX)
    client = Client(connects=False)
    run(lambda: app(scope(PREFIX + "chat:1"), client.receive, client.send))
    assert (client.sent, asked.asked) == ([], [])


def test_a_malformed_position_is_refused_before_accepting_and_subscribes_nothing(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    app = websocket_app(Wrapped(), bridge, authorize=Asked(), prefix=PREFIX)
    client = Client()
    refused = scope(PREFIX + "chat:1", headers=[(b"last-event-id", b"nonsense")])
    run(lambda: app(refused, client.receive, client.send))
    assert client.sent == [MALFORMED]
    assert subscribers(redis_client, "chat:1") == 0


def test_a_header_position_resumes_and_wins_over_the_query_parameter(
    bridge: Bridge, server: EmbeddedServer
) -> None:
    with ReplayPublisher(server.url) as publisher:
        ids = [publisher.publish("chat:2", f"m{n}") for n in range(4)]
    app = websocket_app(Wrapped(), bridge, authorize=Asked(), prefix=PREFIX)
    client = Client()
    resuming = scope(
        PREFIX + "chat:2",
        headers=[(b"Last-Event-ID", ids[2].encode())],
        query=f"last_event_id={ids[0]}".encode(),
    )

    async def main() -> list[str]:
        serving = asyncio.ensure_future(app(resuming, client.receive, client.send))
        await client.wait_accepted()
        async with asyncio.timeout(5):
            while not client.texts:
                await asyncio.sleep(0.005)
        client.leave()
        await serving
        return client.texts

    assert run(main) == ["m3"]


def test_a_stream_is_forwarded_as_text_frames_and_closed_normally_after_its_done(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    asked = Asked()
    app = websocket_app(Wrapped(), bridge, authorize=asked, prefix=PREFIX)
    client = Client()

    async def main() -> None:
        serving = asyncio.ensure_future(
            app(scope(PREFIX + "ai:stream:w"), client.receive, client.send)
        )
        await client.wait_accepted()
        await asyncio.to_thread(
            lambda: eventually(lambda: subscribers(redis_client, "ai:stream:w") == 1)
        )
        publish(redis_client, "ai:stream:w", TOKENS[0], TOKENS[2], DONE)
        await serving

    run(main)
    gap = {"event": "gap", "channel": "ai:stream:w", "from": 1, "to": 1}
    assert client.texts == [
        json.dumps(TOKENS[0]),
        json.dumps(gap),
        json.dumps(TOKENS[2]),
        json.dumps(DONE),
    ]
    assert client.closed == {"type": "websocket.close", "code": 1000}
    assert len(asked.asked) == 1  # not asked again: nothing was replayed
    assert bridge.stats.subscribers == 0


def test_closing_the_bridge_closes_every_websocket_as_going_away(bridge: Bridge) -> None:
    app = websocket_app(Wrapped(), bridge, authorize=Asked(), prefix=PREFIX)
    clients = [Client(), Client()]

    async def main() -> None:
        serving = [
            asyncio.ensure_future(app(scope(PREFIX + f"orders:{n}"), c.receive, c.send))
            for n, c in enumerate(clients)
        ]
        for client in clients:
            await client.wait_accepted()
        await asyncio.to_thread(bridge.close)
        await asyncio.gather(*serving)

    run(main)
    assert [client.closed for client in clients] == [{"type": "websocket.close", "code": 1001}] * 2


def test_a_client_that_leaves_is_unsubscribed_and_sent_no_close(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    client = Client()

    async def main() -> None:
        subscription = bridge.subscribe("orders:left")
        forwarding = asyncio.create_task(forward(subscription, client.receive, client.send))
        client.incoming.get_nowait()  # forward() is for a WebSocket already accepted
        client.leave()
        await forwarding

    run(main)
    assert client.sent == []
    assert eventually(lambda: subscribers(redis_client, "orders:left") == 0)
    assert bridge.stats.subscribers == 0


def test_a_connection_that_breaks_mid_stream_ends_the_forwarding_quietly(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    client = Client(broken=True)

    async def main() -> None:
        subscription = bridge.subscribe("orders:broken")
        client.incoming.get_nowait()
        forwarding = asyncio.create_task(forward(subscription, client.receive, client.send))
        async with asyncio.timeout(5):
            await subscription.subscribed.wait()
        publish(redis_client, "orders:broken", "first")
        await forwarding  # returns: the error is the client's leaving, not the app's

    run(main)
    assert client.sent == []
    assert bridge.stats.subscribers == 0
