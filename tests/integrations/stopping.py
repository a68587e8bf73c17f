"""A server stopped with event streams open, the same for every adapter: what a deploy does.

:func:`sigterm_ends_open_streams` opens bridged streams on a served app (``GET
/bridge/sse/{channel}``), makes sure each is live, sends SIGTERM as a supervisor or Kubernetes
does, and checks what a user would notice: every stream got the ``end`` event an
``EventSource`` acts on, and the server exited within :data:`STOP_BOUND` seconds. Without the
streams ending, the servers wait for them: uvicorn without limit, gunicorn its graceful
timeout (the tests give it 30 s, its default).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from tests.integrations.fastapi.servers import Served
from tests.integrations.fastapi.sse_client import EventReader
from tests.waiting import eventually

__all__ = ["GRACEFUL_TIMEOUT", "STOP_BOUND", "sigterm_ends_open_streams"]

STOP_BOUND = 3.0  # seconds from SIGTERM until the server process has exited
GRACEFUL_TIMEOUT = "30"  # gunicorn's default: what the server would wait for open streams


def sigterm_ends_open_streams(
    site: Served, redis_client: redis.Redis, channels: Sequence[str]
) -> float:
    """One stream per channel; SIGTERM; each ends with ``end``; the seconds the exit took."""
    readers: list[EventReader] = []
    try:
        for channel in channels:
            reader = EventReader(f"{site.url}/bridge/sse/{channel}")
            readers.append(reader)
            message = f'{{"widgetId": "{channel}"}}'
            # Live once a message published on its channel arrives.
            assert eventually(lambda: redis_client.publish(channel, message) > 0)  # noqa: B023
            assert reader.next().data == message
        stopping = time.monotonic()
        site.process.terminate()
        for reader in readers:
            end = reader.until(lambda e: e.event == "end", timeout=STOP_BOUND)[-1]
            assert end.json() == {"reason": "shutdown"}, site.output()
            reader.close()  # as an EventSource does on its way to reconnect
        code = site.stop(timeout=15)
        took = time.monotonic() - stopping
        assert took < STOP_BOUND, f"exited {took:.2f}s after SIGTERM:\n{site.output()}"
        assert code in (0, -15), f"exit code {code}:\n{site.output()}"
        return took
    finally:
        for reader in readers:
            reader.close()
