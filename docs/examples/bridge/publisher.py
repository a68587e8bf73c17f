"""Play the services that publish to the bridge: the AI service, or the BI service.

python docs/examples/bridge/publisher.py sess-abc [--url redis://127.0.0.1:6379/0]
    an AI answer on ``ai:stream:sess-abc``, token by token, then its ``done`` message.

python docs/examples/bridge/publisher.py --dashboard sales [--widget revenue] [--rounds 3]
    new data for the widgets of dashboard ``sales`` (a Redis hash each, which the example
    app serves), each followed by ``{"widgetId", "dataVersion"}`` on ``dashboard:refresh:sales``.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import redis

TOKENS = ["Revenue", " grew", " 12%", " in", " the", " EU", "."]
WIDGETS = ["revenue", "orders", "churn"]


def stream_answer(client: redis.Redis, session: str, delay: float) -> None:
    channel = f"ai:stream:{session}"
    for index, token in enumerate(TOKENS):
        client.publish(channel, json.dumps({"token": token, "index": index, "type": "text"}))
        time.sleep(delay)
    done = {"done": True, "sql": "SELECT region, sum(revenue) FROM sales", "data": [["EU", 12]]}
    client.publish(channel, json.dumps(done))


def refresh(client: redis.Redis, dashboard: str, widget: str, value: str) -> int:
    """Write the widget's new data, then tell the dashboards to refetch it; its new version."""
    key = f"dashboard:data:{dashboard}:{widget}"
    # The data first, the notice after: a page that refetches on the notice finds the new data.
    version = int(client.hincrby(key, "dataVersion", 1))
    client.hset(key, "value", value)
    notice = {"widgetId": widget, "dataVersion": version}
    client.publish(f"dashboard:refresh:{dashboard}", json.dumps(notice))
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("session", nargs="?", help="stream an AI answer to this session")
    parser.add_argument("--dashboard", help="refresh the widgets of this dashboard instead")
    parser.add_argument("--widget", action="append", help="only this widget (repeatable)")
    parser.add_argument("--value", help="the widgets' new value (default: a random figure)")
    parser.add_argument("--rounds", type=int, default=1, help="dashboard refreshes per widget")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds between messages")
    args = parser.parse_args()
    if (args.session is None) == (args.dashboard is None):
        parser.error("give a session (the AI answer) or --dashboard ID (widget refreshes)")
    client = redis.Redis.from_url(args.url)
    if args.session is not None:
        stream_answer(client, args.session, args.delay)
        return
    for round_ in range(args.rounds):
        if round_:
            time.sleep(args.delay)
        for widget in args.widget or WIDGETS:
            value = args.value or f"{random.randint(100, 999):,}"
            version = refresh(client, args.dashboard, widget, value)
            print(f"dashboard:refresh:{args.dashboard} {widget} v{version}: {value}")


if __name__ == "__main__":
    main()
