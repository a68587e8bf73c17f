"""Where hotconfig's Redis connections come from: one place resolves, validates, connects, redacts.

Every part that talks to Redis (the listener, :class:`~hotconfig.ConfigStore`, the test servers'
callers) gets its URL and its clients here, so that the default URL, the validation and the
redaction rules are the same everywhere::

    url = connection.resolve(None)  # the argument, else $HOTCONFIG_URL, else localhost
    target = connection.Target(url)  # validated now: a typo raises instead of retrying forever
    target.command_client()  # a client for commands
    target.listener_clients(socket_timeout=2.0)  # (commands, subscriber) for the listener

Topologies, by URL scheme:

``redis://``, ``rediss://``, ``unix://``
    one server (redis-py's URL format).
``redis+sentinel://[user:password@]host:port,host:port/service[/db][?sentinel_password=...]``
    the master that Sentinel names for ``service`` (``rediss+sentinel://`` for TLS), resolved
    again on every connection; the listener also asks the sentinels now and then whether the
    master moved, so it never stays on a demoted or partitioned one.
``redis+cluster://[user:password@]host:port,host:port[?sharded=1]`` (``rediss+cluster://``)
    a Redis Cluster: the store's keys share one hash tag, so its scripts run on one slot; the
    subscription is a classic SUBSCRIBE, which reaches subscribers on every node. With
    ``sharded=1`` (or ``sharded=True`` given to the store and the client) changes travel by
    sharded Pub/Sub instead: SPUBLISH on a channel in the store's slot, SSUBSCRIBE on the master
    serving it (:meth:`Target.shard_node`, :meth:`Target.shard_subscriber`), so a write costs
    one shard, not a broadcast over the cluster bus to every node.
"""

from __future__ import annotations

import enum
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "Target",
    "Topology",
    "database",
    "redacted",
    "resolve",
    "resolve_url",
]

_SHARDED: Final = "sharded"  # the URL query parameter that turns sharded Pub/Sub on
_FLAGS: Final = {"1": True, "true": True, "yes": True, "on": True} | dict.fromkeys(
    ("0", "false", "no", "off"), False
)

ENV_VAR: Final = "HOTCONFIG_URL"
DEFAULT_URL: Final = "redis://localhost:6379/0"
_SCHEMES: Final = ("redis", "rediss", "unix")
_MULTI: Final = {
    "redis+sentinel": "sentinel",
    "rediss+sentinel": "sentinel",
    "redis+cluster": "cluster",
    "rediss+cluster": "cluster",
}


class Topology(enum.Enum):
    SINGLE = "single"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@dataclass(frozen=True, slots=True)
class _Nodes:
    """A sentinel or cluster URL, taken apart."""

    topology: Topology
    hosts: tuple[tuple[str, int], ...]
    service: str | None
    db: int
    options: dict[str, Any]  # username, password, ssl
    sentinel_password: str | None
    sharded: bool = False


def database(client: Any) -> int:
    """The database number ``client``'s commands go to: 0 on a cluster, which has no other.

    Pub/Sub ignores database numbers (a PUBLISH reaches the subscribers of every database), so
    the store names its database in each message and a client drops those of another one.
    """
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    return int(kwargs.get("db") or 0)


def resolve(url: str | None) -> str:
    """The URL to use: ``url`` if given, else ``$HOTCONFIG_URL`` if set and not empty, else
    ``redis://localhost:6379/0``."""
    if url:
        return url
    return os.environ.get(ENV_VAR, "").strip() or DEFAULT_URL


def redacted(url: str) -> str:
    """``url`` with its password (and a lone user name's secret, and a ``password=`` in the
    query string, which redis-py reads too) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    query = "&".join(
        f"{name}=***" if unquote(name).lower() == "password" and sep else f"{name}{sep}{value}"
        for name, sep, value in (item.partition("=") for item in parts.query.split("&"))
    )
    if query != parts.query:
        parts = parts._replace(query=query)
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return urlunsplit(parts)
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    # redis-py reads "redis://secret@host" as a password with no user name.
    auth = f"{user}:***" if parts.password is not None else "***"
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def _nodes(url: str, kind: str) -> _Nodes:
    parts = urlsplit(url)
    auth, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = auth.partition(":") if auth else ("", "", "")
    hosts: list[tuple[str, int]] = []
    for item in filter(None, hostlist.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"invalid Redis URL {redacted(url)!r}: {item!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    if not hosts:
        raise ValueError(f"invalid Redis URL {redacted(url)!r}: it names no host:port")
    path = [unquote(p) for p in parts.path.split("/") if p]
    service = path.pop(0) if kind == "sentinel" and path else None
    if kind == "sentinel" and not service:
        raise ValueError(
            f"invalid Redis URL {redacted(url)!r}: name the Sentinel service after the hosts, "
            "e.g. redis+sentinel://h1:26379,h2:26379/mymaster"
        )
    if len(path) > 1 or (path and not path[0].isdigit()):
        raise ValueError(f"invalid Redis URL {redacted(url)!r}: the database must be a number")
    db = int(path[0]) if path else 0
    if kind == "cluster" and db:
        raise ValueError(f"invalid Redis URL {redacted(url)!r}: a cluster has only database 0")
    options: dict[str, Any] = {}
    if user:
        options["username"] = unquote(user)
    if password:
        options["password"] = unquote(password)
    if parts.scheme.lower().startswith("rediss"):
        options["ssl"] = True
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    topology = Topology.SENTINEL if kind == "sentinel" else Topology.CLUSTER
    sharded = _flag(url, query.get(_SHARDED))
    if sharded and topology is not Topology.CLUSTER:
        raise ValueError(_not_a_cluster(url, "?sharded=1"))
    secret = query.get("sentinel_password")
    return _Nodes(topology, tuple(hosts), service, db, options, secret, sharded)


def _flag(url: str, raw: str | None) -> bool:
    if raw is None:
        return False
    value = _FLAGS.get(raw.lower())
    if value is None:
        raise ValueError(
            f"invalid Redis URL {redacted(url)!r}: sharded must be 1 or 0 (true/false), not {raw!r}"
        )
    return value


def _not_a_cluster(url: str, what: str) -> str:
    return (
        f"{what} asks for sharded Pub/Sub, which exists only in a Redis Cluster, but "
        f"{redacted(url)!r} is not one: use a redis+cluster:// URL, or leave sharded off"
    )


def _validate(url: str) -> dict[str, Any]:
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in _MULTI:
        _nodes(url, _MULTI[scheme])
        return {}
    if _SHARDED in parse_qs(urlsplit(url).query):
        raise ValueError(_not_a_cluster(url, "?sharded=..."))
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unsupported Redis URL {redacted(url)!r}: it must start with redis://, rediss://, "
            "unix://, redis+sentinel:// or redis+cluster:// (e.g. redis://localhost:6379/0)"
        )
    try:
        parsed: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ValueError(f"invalid Redis URL {redacted(url)!r}: {exc}") from None
    if scheme != "unix":
        path = urlsplit(url).path.strip("/")
        if path and not path.isdigit():
            raise ValueError(
                f"invalid Redis URL {redacted(url)!r}: the path must be a database number "
                f"(e.g. /0), not {path!r}"
            )
        if not parsed.get("host"):
            raise ValueError(f"invalid Redis URL {redacted(url)!r}: it names no host")
    return parsed


class Target:
    """One validated Redis URL and the options every client made for it shares.

    Raises :class:`ValueError` at construction for a URL that can never work (a bad scheme, a
    port that is not a number, a database that is not one, sharded Pub/Sub asked of anything
    but a cluster), naming the URL without its password. ``sharded`` (None: the URL's
    ``?sharded=``, default off) overrides the URL.
    """

    __slots__ = ("_nodes", "_options", "sharded", "url")

    def __init__(
        self, url: str, options: Mapping[str, Any] | None = None, *, sharded: bool | None = None
    ) -> None:
        _validate(url)
        self.url = url
        self._options = dict(options or {})
        scheme = url.partition("://")[0].lower()
        self._nodes = _nodes(url, _MULTI[scheme]) if scheme in _MULTI else None
        if sharded and self.topology is not Topology.CLUSTER:
            raise ValueError(_not_a_cluster(url, "sharded=True"))
        from_url = self._nodes is not None and self._nodes.sharded
        self.sharded: bool = from_url if sharded is None else sharded
        """Whether changes travel by sharded Pub/Sub (SPUBLISH/SSUBSCRIBE); only on a cluster."""

    @property
    def redacted(self) -> str:
        return redacted(self.url)

    @property
    def topology(self) -> Topology:
        return Topology.SINGLE if self._nodes is None else self._nodes.topology

    def command_client(self, **overrides: Any) -> Any:
        """A client for commands (``redis.Redis``, or ``RedisCluster`` for a cluster URL), with
        redis-py's usual pooling and retries."""
        return self._client({**self._options, **overrides})

    def listener_clients(
        self, socket_timeout: float, shard_channel: str | None = None
    ) -> tuple[Any, redis.Redis]:
        """``(commands, subscriber)`` for the listener: no silent retries, no health-check
        PINGs, bytes, RESP2. One client for both, except on a cluster (a cluster client for
        the store's slot, and a plain connection to one node for the classic subscription:
        the master serving ``shard_channel``'s slot if given, where it can be SSUBSCRIBEd).

        The listener detects every failure itself and resyncs after it, so redis-py must not
        hide one by reconnecting (and re-subscribing) under it. RESP2 is pinned: under RESP3
        redis-py routes every Pub/Sub message through its push-notification hooks, which cost
        more than applying the message.
        """
        options = self._listener_options(socket_timeout)
        if self._nodes is None or self._nodes.topology is Topology.SENTINEL:
            client = self._client(options)
            return client, client
        commands = self._client({**options, "retry": None})
        if shard_channel is None:
            # Every node delivers a classic PUBLISH (the cluster bus carries it to all of them):
            # a random one spreads a fleet's subscriptions, and so the fan-out, over the whole
            # cluster instead of piling them all onto the first master of the slot map.
            node = random.choice(commands.get_nodes())
            host, port = node.host, node.port
        else:
            host, port = self.shard_node(shard_channel, commands)
        subscriber = redis.Redis(host=host, port=port, **_plain(options, self._nodes))
        return commands, subscriber

    def shard_node(self, channel: str, commands: Any = None) -> tuple[str, int]:
        """The address of the master serving ``channel``'s slot, where SSUBSCRIBE to it must go.

        ``commands``: a cluster client of this target to ask (its slot map, refreshed by every
        redirection it followed); by default a fresh one, which reads the map anew. Raises
        :class:`ValueError` if this is not a cluster URL.
        """
        nodes = self._nodes
        if nodes is None or nodes.topology is not Topology.CLUSTER:
            raise ValueError(f"{self.redacted!r} is not a Redis Cluster URL: no slot has an owner")
        client = commands if commands is not None else self._client(self._options)
        try:
            node = client.get_node_from_key(channel)
            return str(node.host), int(node.port)
        finally:
            if commands is None:
                client.close()

    def shard_subscriber(self, channel: str, socket_timeout: float) -> redis.Redis:
        """A plain client to the master serving ``channel``'s slot, with the listener's options
        (no silent retries, bytes, RESP2): what SSUBSCRIBE to exact channels needs. A client of
        several channels groups them by :meth:`shard_node`, one subscriber per master; each
        must resubscribe after an unsolicited ``sunsubscribe`` (its slot moved away)."""
        return self.node_subscriber(self.shard_node(channel), socket_timeout)

    def node_subscriber(self, node: tuple[str, int], socket_timeout: float) -> redis.Redis:
        """A plain client to the cluster node at ``node`` (host, port), with the listener's
        options: for a caller that already knows which master serves its channels."""
        nodes = self._nodes
        if nodes is None or nodes.topology is not Topology.CLUSTER:
            raise ValueError(f"{self.redacted!r} is not a Redis Cluster URL: it has no nodes")
        host, port = node
        return redis.Redis(
            host=host, port=port, **_plain(self._listener_options(socket_timeout), nodes)
        )

    def _listener_options(self, socket_timeout: float) -> dict[str, Any]:
        return {
            **self._options,
            "protocol": 2,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "health_check_interval": 0,  # the listener's token PING checks the PONG too
            "retry": Retry(NoBackoff(), 0, supported_errors=()),
            "decode_responses": False,  # replies are matched as bytes
        }

    def master_address(self) -> tuple[str, int] | None:
        """Where the sentinels say the master is now; None if not a Sentinel URL."""
        nodes = self._nodes
        if nodes is None or nodes.topology is not Topology.SENTINEL:
            return None
        assert nodes.service is not None
        sentinel = self._sentinel(self._options)
        try:
            host, port = sentinel.discover_master(nodes.service)
            return str(host), int(port)
        finally:
            for client in sentinel.sentinels:
                client.close()

    def _client(self, options: dict[str, Any]) -> Any:
        nodes = self._nodes
        if nodes is None:
            return redis.Redis.from_url(self.url, **options)
        if nodes.topology is Topology.SENTINEL:
            assert nodes.service is not None
            sentinel = self._sentinel(options)
            return sentinel.master_for(nodes.service, db=nodes.db, **_plain(options, nodes))
        options = {k: v for k, v in options.items() if k != "health_check_interval"}
        if options.get("retry") is None:
            options.pop("retry", None)
        startup = [ClusterNode(host, port) for host, port in nodes.hosts]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=startup, **_plain(options, nodes))

    def _sentinel(self, options: dict[str, Any]) -> Sentinel:
        nodes = self._nodes
        assert nodes is not None
        timeout = options.get("socket_timeout", 2.0)
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        if nodes.sentinel_password:
            sentinel_kwargs["password"] = nodes.sentinel_password
        if nodes.options.get("ssl"):
            sentinel_kwargs["ssl"] = True
        return Sentinel(list(nodes.hosts), sentinel_kwargs=sentinel_kwargs)

    def __repr__(self) -> str:
        return f"<Target {self.redacted}>"


def _plain(options: dict[str, Any], nodes: _Nodes) -> dict[str, Any]:
    """Connection options for one node: the URL's credentials under the caller's options."""
    return {**nodes.options, **options}


def resolve_url(url: str | None = None, *, check: bool = True) -> str:
    """The URL a client given ``url`` connects to (``url``, else ``$HOTCONFIG_URL``, else
    ``redis://localhost:6379/0``). With ``check``, it is checked as a client checks it: a
    :class:`ValueError`, whose message hides the password, for one no client could use."""
    resolved = resolve(url)
    if check:
        Target(resolved)
    return resolved
