"""Many SSE browsers in one process, for the bridge benchmark (:mod:`.bridge_fanout`).

    python -m tests.benchmarks.sse_clients URL COUNT MESSAGES

Opens ``COUNT`` connections to ``URL`` (``http://127.0.0.1:PORT/path``) with raw asyncio
streams (an HTTP client per connection would cost more than the server under test), and notes
``time.perf_counter_ns()`` (CLOCK_MONOTONIC: one clock for every process of the machine) when
each message arrives. Messages are the bench's JSON objects; their ``dataVersion`` is the
message index, from 0 to ``MESSAGES - 1``; ``WARMUP`` and ``STOP`` are markers.

Prints ``ready`` once every connection has its response headers and has received at least
one message (the bench publishes warm-up messages until then: a stack may answer before it
has subscribed; the first connection is opened alone, the others once it heard one); then,
when every connection saw ``STOP`` or closed, one JSON line:
``{"arrivals": [[ns or 0 per index] per connection], "errors": [...]}``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

WARMUP = -2
STOP = -1
_CONNECTS_AT_ONCE = 64  # a burst of SYNs past the listen backlog would only retry later
_DEADLINE = 300.0
_PROGRESS = 10.0


def raise_file_limit() -> None:
    """Raise the soft limit on open files to the hard one: a thousand sockets need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Browser:
    """One SSE connection: its arrival times by message index."""

    def __init__(self, messages: int) -> None:
        self.arrivals = [0] * messages
        self.warm = asyncio.Event()
        self.error: str | None = None

    async def run(self, url: str, connects: asyncio.Semaphore, headers: asyncio.Event) -> None:
        try:
            async with connects:
                reader, writer = await _open(url)
            headers.set()
            try:
                await self._read(reader)
            finally:
                writer.close()
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            headers.set()
        finally:
            self.warm.set()  # a failed browser must not hold the others' ready

    async def _read(self, reader: asyncio.StreamReader) -> None:
        pending = b""
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)  # chunked encoding
            if size == 0:
                return
            chunk = await reader.readexactly(size + 2)
            arrived = time.perf_counter_ns()
            pending += chunk[:-2]
            *events, pending = pending.replace(b"\r\n", b"\n").split(b"\n\n")
            for event in events:
                if self._record(event, arrived):
                    return

    def _record(self, event: bytes, arrived: int) -> bool:
        """Note one SSE event; True once it is the stop marker."""
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            index = json.loads(line[5:])["dataVersion"]
            self.warm.set()
            if index == STOP:
                return True
            if 0 <= index < len(self.arrivals) and not self.arrivals[index]:
                self.arrivals[index] = arrived
        return False


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    )
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise ValueError(f"the server answered {status.decode(errors='replace')!r}")
    if b"transfer-encoding: chunked" not in head.lower():
        raise ValueError("the stream is not chunked")
    return reader, writer


async def _main(url: str, count: int, messages: int) -> None:
    browsers = [Browser(messages) for _ in range(count)]
    connects = asyncio.Semaphore(_CONNECTS_AT_ONCE)
    headers = [asyncio.Event() for _ in browsers]
    # The first browser alone, until it hears a message: broadcaster 0.3.1 loses the queue of
    # a browser that subscribes to a channel while another's first subscription is on its way.
    tasks = [asyncio.create_task(browsers[0].run(url, connects, headers[0]))]
    await browsers[0].warm.wait()
    tasks += [
        asyncio.create_task(browser.run(url, connects, got))
        for browser, got in zip(browsers[1:], headers[1:], strict=True)
    ]
    waiting = asyncio.create_task(_all_set([*headers, *(b.warm for b in browsers)]))
    while not waiting.done():
        await asyncio.wait([waiting], timeout=_PROGRESS)
        if not waiting.done():
            _progress(browsers, headers)
    print("ready", flush=True)
    await asyncio.wait(tasks, timeout=_DEADLINE)
    for task in tasks:
        task.cancel()
    errors = [browser.error for browser in browsers if browser.error]
    result = {"arrivals": [browser.arrivals for browser in browsers], "errors": errors}
    print(json.dumps(result, separators=(",", ":")), flush=True)


async def _all_set(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()


def _progress(browsers: list[Browser], headers: list[asyncio.Event]) -> None:
    """Say on stderr how far the connections got: the bench shows it when it gives up."""
    answered = sum(event.is_set() for event in headers)
    warm = sum(browser.warm.is_set() for browser in browsers)
    errors = [browser.error for browser in browsers if browser.error]
    print(
        f"sse_clients: {answered}/{len(browsers)} answered, {warm} heard a message, "
        f"errors: {errors[:3]}",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    raise_file_limit()
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
