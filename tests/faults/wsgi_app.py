"""A tiny WSGI app for the ``gunicorn --preload`` test in tests/faults/test_fork.py.

It creates and starts its HotConfig at import time, as a service does at module level. Under
``--preload`` that import runs once, in the gunicorn master, before the workers are forked:
each worker must then follow the channel with a listener of its own.

Every response says which worker answered, what it serves, and when that value reached the
worker (``time.monotonic()``: CLOCK_MONOTONIC is one clock for every process on the machine,
so the test can compare it with the moment it wrote the value).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from hotconfig import Change, HotConfig

config: HotConfig[Any] = HotConfig(os.environ["HOTCONFIG_URL"])
_arrived: dict[str, float] = {}


@config.on_change("greeting")
def _remember_arrival(change: Change) -> None:
    """Called on the listener thread of whichever process (master or worker) applied it."""
    _arrived[str(change.new)] = time.monotonic()


config.start(timeout=5.0)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    greeting = config.get("greeting")
    body = json.dumps(
        {
            "pid": os.getpid(),
            "greeting": greeting,
            "version": config.version,
            "status": str(config.status),
            "arrived": _arrived.get(str(greeting)),
        }
    ).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
