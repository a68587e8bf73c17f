"""Waiting for something a background thread does, without sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(
    predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.005
) -> bool:
    """Poll ``predicate`` until it is truthy; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def open_sockets() -> int:
    """How many sockets this process has open (Linux: /proc/self/fd)."""
    import os

    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count
