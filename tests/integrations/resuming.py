"""Resuming a replayable channel by ``Last-Event-ID``, the same for every SSE adapter.

Each function is one scenario against a served app whose bridge makes ``chat:*`` replayable and
asks ``authorize`` again at replay for ``revocable:*`` (refusing it then); ``tag`` keeps each
adapter's channels apart. The Django and Flask tests call them under their real servers.
"""

from __future__ import annotations

import httpx
import redis

from hotconfig.bridge import Position, Replayable, ReplayPublisher
from hotconfig.testing import EmbeddedServer
from tests.bridging import stats, subscribers, wait_subscribed
from tests.integrations.fastapi.servers import Served
from tests.integrations.fastapi.sse_client import EventReader
from tests.waiting import eventually

__all__ = [
    "bad_channel_answers_400_before_authorize",
    "malformed_id_answers_400",
    "query_parameter_resumes_and_the_header_wins",
    "reconnect_gets_exactly_what_was_missed",
    "revoked_grant_sees_nothing_stored",
    "trimmed_or_unknown_position_gets_a_recovery_event",
]


def reconnect_gets_exactly_what_was_missed(
    tag: str, site: Served, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    url = site.url + f"/bridge/sse/chat:{tag}1"
    with EventReader(url) as reader:  # a first visit, from now
        wait_subscribed(redis_client, f"chat:{tag}1")
        assert eventually(lambda: stats(site)["subscribers"] == 1)
        ids = [publisher.publish(f"chat:{tag}1", f"m{n}") for n in range(3)]
        seen = [reader.next() for _ in ids]
    assert [(e.event, e.data, e.id) for e in seen] == [
        ("message", f"m{n}", i) for n, i in enumerate(ids)
    ]
    missed = [publisher.publish(f"chat:{tag}1", f"m{n}") for n in range(3, 7)]
    with EventReader(url, last_event_id=seen[-1].id) as reader:  # as EventSource reconnects
        wait_subscribed(redis_client, f"chat:{tag}1")
        # The catch-up first, so that "live" comes live (published after the history was read).
        events = [reader.next() for _ in missed]
        live = publisher.publish(f"chat:{tag}1", "live")
        events += reader.until(lambda e: e.data == "live")
        assert reader.pending() == []
    assert [e.data for e in events] == ["m3", "m4", "m5", "m6", "live"]
    assert [e.id for e in events] == [*missed, live]
    assert stats(site)["replayed"] == 4


def query_parameter_resumes_and_the_header_wins(
    tag: str, site: Served, publisher: ReplayPublisher
) -> None:
    ids = [publisher.publish(f"chat:{tag}2", f"m{n}") for n in range(5)]
    with EventReader(site.url + f"/bridge/sse/chat:{tag}2?last_event_id={ids[1]}") as reader:
        assert [e.data for e in reader.until(lambda e: e.id == ids[-1])] == ["m2", "m3", "m4"]
    query = f"/bridge/sse/chat:{tag}2?last_event_id={ids[0]}"
    with EventReader(site.url + query, last_event_id=ids[3]) as reader:
        assert [e.data for e in reader.until(lambda e: e.id == ids[-1])] == ["m4"]


def trimmed_or_unknown_position_gets_a_recovery_event(
    tag: str, site: Served, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    with ReplayPublisher(server.url, history=Replayable(maxlen=10)) as publisher:
        first = publisher.publish(f"chat:{tag}3", "first")
        for n in range(300):
            publisher.publish(f"chat:{tag}3", f"m{n}")
        epoch = Position.parse(first).epoch
        for position, reason in ((first, "trimmed"), (f"{epoch}:9999", "unknown")):
            with EventReader(
                site.url + f"/bridge/sse/chat:{tag}3", last_event_id=position
            ) as reader:
                notice = reader.next()
                wait_subscribed(redis_client, f"chat:{tag}3")
                live = publisher.publish(f"chat:{tag}3", "live")
                assert (reader.next().data, reader.pending()) == ("live", [])
            now = f"{epoch}:{Position.parse(live).offset - 1}"  # where the browser stands
            assert (notice.event, notice.id) == ("recovery", now)
            data = notice.json()
            assert (data["channel"], data["recovered"], data["reason"]) == (
                f"chat:{tag}3",
                False,
                reason,
            )


def malformed_id_answers_400(tag: str, site: Served, redis_client: redis.Redis) -> None:
    url = site.url + f"/bridge/sse/chat:{tag}4"
    hostile: tuple[tuple[dict[str, str], str], ...] = (
        ({"last-event-id": "nonsense"}, ""),
        ({}, "?last_event_id=x:1:y"),
        ({"last-event-id": "abc:18446744073709551615"}, ""),  # out of range: was 200, then nothing
        ({}, "?last_event_id=" + "a" * 300 + ":1"),  # longer than an id
        ({}, "?last_event_id=abc:%D9%A1%D9%A2"),  # digits, but not ASCII ones
    )
    for headers, query in hostile:
        response = httpx.get(url + query, headers=headers, timeout=5)
        assert response.status_code == 400, (headers, query)
        assert "not an event id of a replayable channel" in response.text
    assert subscribers(redis_client, f"chat:{tag}4") == 0
    assert stats(site)["subscribers"] == 0


def revoked_grant_sees_nothing_stored(tag: str, site: Served, publisher: ReplayPublisher) -> None:
    ids = [publisher.publish(f"revocable:{tag}5", f"private {n}") for n in range(3)]
    with EventReader(site.url + f"/bridge/sse/revocable:{tag}5", last_event_id=ids[0]) as reader:
        assert reader.status == 200  # allowed when it subscribed
        notice = reader.next()
        assert reader.ended.wait(5), "the stream stayed open after the refusal"
        assert reader.pending() == []
    assert (notice.event, notice.json()["reason"]) == ("recovery", "forbidden")
    assert stats(site)["replayed"] == 0


def bad_channel_answers_400_before_authorize(site: Served, redis_client: redis.Redis) -> None:
    """A ``secret:`` channel is refused by every test app's ``authorize`` (403): a 400 says the
    name was refused before ``authorize`` saw it."""
    for path, says in (
        ("secret:a%00b", "may not hold control characters"),
        ("secret:a%0Db", "may not hold control characters"),
        ("secret:" + "x" * 1100, "at most 1024 bytes"),
    ):
        response = httpx.get(site.url + "/bridge/sse/" + path, timeout=5)
        assert (response.status_code, response.headers["content-type"][:10]) == (400, "text/plain")
        assert says in response.text
    assert stats(site)["subscribers"] == 0
    assert subscribers(redis_client, "secret:a\x00b") == 0
