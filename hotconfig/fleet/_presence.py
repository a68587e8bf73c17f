"""Who is still connected: the instances' registrations against the server's list of clients.

A report names the server's id of its instance's listener connection (``connection``). The
server drops that connection the moment the process dies — ``kill -9``, the OOM killer, a
worker killed on timeout: the kernel closes its sockets — so one ``CLIENT LIST ID ...`` for
every registered instance tells the dead from the quiet in one round trip, long before their
registrations expire.

The question goes to the server that holds the registry (on a cluster, the master of its slot),
and its answer counts only where it can: ``ROLE`` is asked in the same round trip, because a
replica has clients of its own; a user that may not run CLIENT LIST (or a server that renamed
it) leaves the registration's expiry as the only sign, told once in the log. Ids are per server:
after a failover the new master does not know the old one's, and its instances count as gone
until they have reconnected and registered their new connection, a second or two later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import redis

from .._redis.keyspace import as_text
from .registry import Report

__all__ = ["Presence"]

log = logging.getLogger("hotconfig.fleet")


class Presence:
    """Asks the server holding the registry key ``key`` which registered connections it has.

    ``client`` is a command client of that server (``redis.Redis``, or a ``RedisCluster``, in
    which case the question goes to the master of ``key``'s slot). Thread-safe.
    """

    def __init__(self, client: Any, key: str) -> None:
        self._client = client
        self._key = key
        self._refused = False  # a refusal is told once

    def missing(self, reports: Iterable[Report]) -> set[str]:
        """The instances among ``reports`` whose connection the server no longer has; none
        when it cannot tell (no report names a connection, a replica, CLIENT LIST refused)."""
        named = {r.instance: r.connection for r in reports if r.connection is not None}
        if not named:
            return set()
        role, listed = self._ask(sorted(set(named.values())))
        if role != "master" or listed is None:
            return set()
        return {instance for instance, connection in named.items() if connection not in listed}

    def _ask(self, ids: list[int]) -> tuple[str | None, set[int] | None]:
        pipe = self._node().pipeline(transaction=False)
        pipe.execute_command("ROLE")
        # Each id its own argument, as the server wants them: client_list() before redis-py 6
        # sends them joined into one (which the server refuses as an invalid id).
        pipe.execute_command("CLIENT LIST", "ID", *ids)
        role, listing = pipe.execute(raise_on_error=False)
        if isinstance(listing, redis.ResponseError):
            self._refusal(listing)
            return None, None
        if isinstance(role, redis.ResponseError) or not role:
            return None, None
        return as_text(role[0]), {int(client["id"]) for client in listing}

    def _node(self) -> Any:
        if isinstance(self._client, redis.RedisCluster):
            node = self._client.get_node_from_key(self._key)  # type: ignore[no-untyped-call]
            return self._client.get_redis_connection(node)
        return self._client

    def _refusal(self, error: redis.ResponseError) -> None:
        if not self._refused:
            self._refused = True
            log.warning(
                "cannot see the instances' connections (%s): an instance that died shows as "
                "gone only when its registration expires; grant this user +client|list "
                "(hotconfig acl operator)",
                error,
            )
