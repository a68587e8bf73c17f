"""How many versions the store is ahead of a client, for ``/health``.

The client's own URL is not readable back (``HotConfig.url`` hides the password), so the
lifespan that made the client from a URL hands that URL (and its ``redis_kwargs``) here; the
core's URL rules apply, so Sentinel, Cluster and TLS URLs work as they do for the client.
One read at a time, each with short socket timeouts, and never longer than half a second for
the request that asked: a frozen or absent server reads as ``None`` ("unknown") instead of
stalling health probes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import redis

from hotconfig import ConfigStore, HotConfig

__all__ = ["LagProbe"]

log = logging.getLogger("hotconfig.fastapi")

_WAIT = 0.5
_SOCKET_TIMEOUT = 1.0


class LagProbe:
    """Reads the store's version for one URL; used from one event loop."""

    def __init__(
        self,
        url: str | None,
        namespace: str | None = None,
        redis_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._url = url  # None: the same rule as HotConfig's ($HOTCONFIG_URL, then localhost)
        self._namespace = namespace
        self._redis_kwargs = {
            "socket_timeout": _SOCKET_TIMEOUT,
            "socket_connect_timeout": _SOCKET_TIMEOUT,
            **(redis_kwargs or {}),
        }
        self._store: ConfigStore | None = None
        self._pending: asyncio.Future[int] | None = None

    async def measure(self, config: HotConfig[Any]) -> int | None:
        """Versions behind the store, or None when the store did not answer in time."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._read))
            self._pending.add_done_callback(self._finished)
        try:
            store_version = await asyncio.wait_for(asyncio.shield(self._pending), _WAIT)
        except (TimeoutError, redis.RedisError, OSError, ValueError):
            return None
        return max(0, store_version - config.version)

    def _finished(self, future: asyncio.Future[int]) -> None:
        self._pending = None
        if not future.cancelled() and future.exception() is not None:
            log.debug("hotconfig: could not read the store version: %s", future.exception())

    def _read(self) -> int:
        if self._store is None:
            options: dict[str, Any] = {"namespace": self._namespace} if self._namespace else {}
            self._store = ConfigStore(self._url, redis_kwargs=self._redis_kwargs, **options)
        return self._store.version

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
