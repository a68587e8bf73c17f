"""Publish an AI answer on ``ai:stream:{session}``, token by token, as the AI service does.

python docs/examples/bridge/publisher.py sess-abc [--url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import json
import time

import redis

TOKENS = ["Revenue", " grew", " 12%", " in", " the", " EU", "."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("session")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds between tokens")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.url)
    channel = f"ai:stream:{args.session}"
    for index, token in enumerate(TOKENS):
        client.publish(channel, json.dumps({"token": token, "index": index, "type": "text"}))
        time.sleep(args.delay)
    done = {"done": True, "sql": "SELECT region, sum(revenue) FROM sales", "data": [["EU", 12]]}
    client.publish(channel, json.dumps(done))


if __name__ == "__main__":
    main()
