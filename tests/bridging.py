"""What the channel bridge's tests share: the AI Service's token sequence, and helpers.

The sequence is the source document's ``ai:stream:{sessionId}`` traffic: tokens with an
``index``, then a terminal ``done`` message carrying the SQL and its data. The helpers run a
subscriber's event loop (:func:`run`, :func:`subscribed`), ask Redis who is subscribed
(:func:`subscribers`, :func:`wait_subscribed`) and ask a served test app for its bridge's
counters (:func:`stats`, ``GET /bridge-stats``).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import redis

from hotconfig.bridge import Subscription
from tests.waiting import eventually

__all__ = [
    "DONE",
    "TOKENS",
    "publish",
    "run",
    "stats",
    "subscribed",
    "subscribers",
    "wait_subscribed",
]

T = TypeVar("T")

TOKENS = [
    {"token": "Revenue", "index": 0, "type": "text"},
    {"token": " grew", "index": 1, "type": "text"},
    {"token": " 12%", "index": 2, "type": "text"},
]
DONE = {"done": True, "sql": "SELECT region, sum(revenue) FROM sales", "data": [["EU", 12]]}


class Site(Protocol):
    """A served test app: where it answers."""

    @property
    def url(self) -> str: ...


def publish(client: redis.Redis, channel: str, *messages: Any) -> list[str]:
    """PUBLISH each message (a str as it is, anything else as JSON); return what was sent."""
    sent = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    for message in sent:
        client.publish(channel, message)
    return sent


def subscribers(client: redis.Redis, channel: str) -> int:
    """How many connections Redis counts as subscribed to ``channel`` (PUBSUB NUMSUB)."""
    return int(dict(client.pubsub_numsub(channel))[channel.encode()])


def wait_subscribed(client: redis.Redis, channel: str, count: int = 1) -> None:
    """Until at least ``count`` connections follow ``channel``: a bridge subscribes once per
    channel, however many browsers follow it."""
    assert eventually(lambda: subscribers(client, channel) >= count), f"{channel} not followed"


def stats(site: Site) -> dict[str, Any]:
    """The counters of the served app's bridge (its ``GET /bridge-stats``)."""
    # The standard library, not httpx: the core and fault suites import this module, and run
    # on the lowest dependency floors too, where no HTTP client is installed.
    with urllib.request.urlopen(site.url + "/bridge-stats", timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def run(main: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Run ``main()`` on an event loop of its own, as a web app's would be, bounded in time."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await main()

    return asyncio.run(bounded())


async def subscribed(subscription: Subscription) -> Subscription:
    """``subscription`` once Redis acknowledged it (within 5 s)."""
    async with asyncio.timeout(5):
        await subscription.subscribed.wait()
    return subscription
