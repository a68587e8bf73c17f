"""``hotconfig_flask.bridge`` under gunicorn's threaded workers (``-k gthread``), real server.

What a browser sees: the AI service's tokens in order, the stream ended by ``done``; a refused
channel; and what the operator sees: fifty browsers on one worker hold ONE subscription
connection, each gets the dashboard's refresh, and the bridge lets go of each that left. On a
replayable channel: after a reconnect with ``Last-Event-ID`` (or a ``last_event_id``
parameter), exactly the messages it missed; a ``recovery`` event for a trimmed or unknown
position; 400 for a malformed id; a refusal at replay. On SIGTERM, every open stream ends
with ``end`` and the workers exit without waiting out their graceful timeout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from hotconfig.bridge import ReplayPublisher
from hotconfig.testing import EmbeddedServer, free_port
from tests.bridging import DONE, TOKENS, stats, subscribers
from tests.integrations import resuming, stopping
from tests.integrations.fastapi.servers import ROOT, Served, serving
from tests.integrations.fastapi.sse_client import EventReader
from tests.waiting import eventually

pytestmark = pytest.mark.slow

BROWSERS = 50


@pytest.fixture
def site(server: EmbeddedServer, tmp_path: Path) -> Iterator[Served]:
    """One gthread worker with room for every browser; open streams are cut 1 s into a stop."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "tests.integrations.flask.bridge_app:app",
        "--worker-class", "gthread", "--threads", str(BROWSERS + 8), "--workers", "1",
        "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "1",
    ]  # fmt: skip
    with serving(command, port, tmp_path / "gunicorn.log", redis=server, cwd=ROOT) as served:
        yield served


def test_the_token_sequence_reaches_an_sse_client_in_order_and_the_stream_ends_on_done(
    site: Served, redis_client: redis.Redis
) -> None:
    with EventReader(site.url + "/bridge/sse/ai:stream:sess-abc") as reader:
        assert reader.status == 200
        assert reader.content_type.startswith("text/event-stream")
        assert eventually(lambda: subscribers(redis_client, "ai:stream:sess-abc") == 1)
        sent = [json.dumps(m) for m in (*TOKENS, DONE)]
        for message in sent:
            redis_client.publish("ai:stream:sess-abc", message)
        events = [reader.next() for _ in sent]
        assert [(e.event, e.data) for e in events] == [("message", s) for s in sent]
        assert reader.ended.wait(5), "the stream stayed open after done"
        assert reader.pending() == []
    assert eventually(lambda: stats(site)["subscribers"] == 0)


def test_a_refused_channel_gets_403_and_nothing_is_subscribed(
    site: Served, redis_client: redis.Redis
) -> None:
    response = httpx.get(site.url + "/bridge/sse/secret:payroll", timeout=5)
    assert (response.status_code, response.text) == (403, "forbidden")
    assert subscribers(redis_client, "secret:payroll") == 0
    assert stats(site)["subscribers"] == 0


def test_fifty_browsers_share_one_redis_connection_and_each_gets_the_refresh(
    site: Served, redis_client: redis.Redis
) -> None:
    channel = "dashboard:refresh:sales"
    url = site.url + "/bridge/sse/" + channel
    readers: list[EventReader] = []
    try:
        readers.extend(EventReader(url) for _ in range(BROWSERS))
        assert eventually(lambda: stats(site)["subscribers"] == BROWSERS, timeout=10)
        assert subscribers(redis_client, channel) == 1
        # The worker's bridge is the server's only subscribed connection, however many browsers.
        assert len(redis_client.client_list(_type="pubsub")) == 1
        refresh = json.dumps({"widgetId": "revenue", "dataVersion": 7})
        redis_client.publish(channel, refresh)
        assert [reader.next().data for reader in readers] == [refresh] * BROWSERS
    finally:
        with ThreadPoolExecutor(BROWSERS) as pool:  # each reader stops at its next keep-alive
            list(pool.map(EventReader.close, readers))
    # Each browser that left is noticed at its next keep-alive write, and let go.
    assert eventually(lambda: stats(site)["subscribers"] == 0, timeout=10)
    assert eventually(lambda: subscribers(redis_client, channel) == 0)


# The blueprint installs the stop handler when a worker imports the app; with --preload the
# master imports it, and the worker's own handlers come later: the hook installs it there.
@pytest.mark.parametrize(
    "options",
    [[], ["--preload", "-c", "python:tests.integrations.gunicorn_hooks"]],
    ids=["imported-per-worker", "preload-with-hook"],
)
def test_sigterm_ends_every_open_stream_and_the_workers_exit_at_once(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path, options: list[str]
) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "tests.integrations.flask.bridge_app:app", *options,
        "--worker-class", "gthread", "--threads", "8", "--workers", "2",
        "--bind", f"127.0.0.1:{port}", "--graceful-timeout", stopping.GRACEFUL_TIMEOUT,
    ]  # fmt: skip
    with serving(command, port, tmp_path / "gunicorn.log", redis=server, cwd=ROOT) as site:
        channels = ["dashboard:refresh:a", "dashboard:refresh:b", "dashboard:refresh:c"]
        stopping.sigterm_ends_open_streams(site, redis_client, channels)


# -- replayable channels: resuming by Last-Event-ID ----------------------------------------------


@pytest.fixture
def publisher(server: EmbeddedServer) -> Iterator[ReplayPublisher]:
    with ReplayPublisher(server.url) as publisher:
        yield publisher


def test_a_browser_that_reconnects_with_last_event_id_gets_exactly_the_messages_it_missed(
    site: Served, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    resuming.reconnect_gets_exactly_what_was_missed("f", site, publisher, redis_client)


def test_a_first_connection_resumes_from_the_query_parameter_and_the_header_wins_over_it(
    site: Served, publisher: ReplayPublisher
) -> None:
    resuming.query_parameter_resumes_and_the_header_wins("f", site, publisher)


def test_a_trimmed_or_unknown_position_gets_a_recovery_event_then_the_live_messages(
    site: Served, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    resuming.trimmed_or_unknown_position_gets_a_recovery_event("f", site, server, redis_client)


def test_a_malformed_last_event_id_answers_400_and_subscribes_nothing(
    site: Served, redis_client: redis.Redis
) -> None:
    resuming.malformed_id_answers_400("f", site, redis_client)


def test_a_channel_name_no_browser_may_ask_for_answers_400_before_authorize_sees_it(
    site: Served, redis_client: redis.Redis
) -> None:
    resuming.bad_channel_answers_400_before_authorize(site, redis_client)


def test_a_grant_revoked_before_the_replay_sees_nothing_stored_and_the_stream_ends(
    site: Served, publisher: ReplayPublisher
) -> None:
    resuming.revoked_grant_sees_nothing_stored("f", site, publisher)
