"""A browser-like Server-Sent Events client for the tests: httpx, reading on its own thread."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    """One dispatched event, as ``EventSource`` would see it, and when it arrived."""

    event: str
    data: str
    id: str | None
    arrived: float

    def json(self) -> Any:
        return json.loads(self.data)

    @property
    def version(self) -> int:
        """The id as a number (the feed's ids are store versions)."""
        assert self.id is not None, f"an event without an id: {self}"
        return int(self.id)


class EventReader:
    """Reads one ``GET`` event stream until it ends; ``next()`` hands out the events in order.

    ``ended`` is set when the server ended the stream (or the connection broke).
    """

    def __init__(self, url: str, *, last_event_id: str | None = None) -> None:
        headers = {"accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        self.status: int | None = None
        self.content_type = ""
        self.comments = 0
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self._events: queue.Queue[Event] = queue.Queue()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0), verify=False)
        self._thread = threading.Thread(
            target=self._read, args=(url, headers), name="sse-reader", daemon=True
        )
        self._thread.start()
        assert self._connected.wait(10), f"no response from {url}: {self.error!r}"

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                self._connected.set()
                self._parse(response.iter_lines(), self._stop.is_set)
        except (httpx.HTTPError, OSError) as exc:
            self.error = exc
        finally:
            self._connected.set()
            self.ended.set()

    def _parse(self, lines: Any, stopped: Callable[[], bool]) -> None:
        event, last_id = "message", None
        data: list[str] = []
        for line in lines:
            if stopped():
                return
            if line == "":
                if data:
                    self._events.put(Event(event, "\n".join(data), last_id, time.monotonic()))
                event, data = "message", []
            elif line.startswith(":"):
                self.comments += 1
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event = value
                elif name == "id":
                    last_id = value

    def next(self, timeout: float = 5.0) -> Event:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no event within {timeout}s (status={self.status}, ended={self.ended.is_set()}, "
                f"error={self.error!r})"
            ) from None

    def until(self, predicate: Callable[[Event], bool], timeout: float = 5.0) -> list[Event]:
        """Events up to and including the first for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        seen: list[Event] = []
        while True:
            event = self.next(max(0.0, deadline - time.monotonic()))
            seen.append(event)
            if predicate(event):
                return seen

    def pending(self) -> list[Event]:
        """The events already received and not yet handed out."""
        found: list[Event] = []
        while True:
            try:
                found.append(self._events.get_nowait())
            except queue.Empty:
                return found

    def close(self) -> None:
        self._stop.set()
        self._client.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
