"""What the channel bridge's tests share: the AI Service's token sequence, and Redis helpers.

The sequence is the source document's ``ai:stream:{sessionId}`` traffic: tokens with an
``index``, then a terminal ``done`` message carrying the SQL and its data.
"""

from __future__ import annotations

import json
from typing import Any

import redis

__all__ = ["DONE", "TOKENS", "publish", "subscribers"]

TOKENS = [
    {"token": "Revenue", "index": 0, "type": "text"},
    {"token": " grew", "index": 1, "type": "text"},
    {"token": " 12%", "index": 2, "type": "text"},
]
DONE = {"done": True, "sql": "SELECT region, sum(revenue) FROM sales", "data": [["EU", 12]]}


def publish(client: redis.Redis, channel: str, *messages: Any) -> list[str]:
    """PUBLISH each message (a str as it is, anything else as JSON); return what was sent."""
    sent = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    for message in sent:
        client.publish(channel, message)
    return sent


def subscribers(client: redis.Redis, channel: str) -> int:
    """How many connections Redis counts as subscribed to ``channel`` (PUBSUB NUMSUB)."""
    return int(dict(client.pubsub_numsub(channel))[channel.encode()])
