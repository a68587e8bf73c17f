"""Least privilege on Redis: the ACL rules each role needs, and a check of what a URL's user can do.

Redis 7 channel rules (``&pattern``) apply to *every* Pub/Sub command: a user allowed to
SUBSCRIBE to ``config:changes`` may also PUBLISH to it, unless PUBLISH is withheld by command
rules. :func:`rules` withholds it; where a role needs PUBLISH on one channel but only SUBSCRIBE on
another, the PUBLISH lives in a selector ``(...)`` of its own, which matches only its channel::

    tokens = acl.rules("subscriber")
    r.execute_command("ACL", "SETUSER", "billing", "on", ">secret", *tokens)

Lua scripts are checked too: each ``redis.call`` inside the store's scripts must be allowed to
the user, and EVAL needs read *and* write access to the keys it declares (Redis treats a
script's keys as read-write), so the store's keys are granted in full and the commands decide
what a role can do with them.

:func:`doctor` tells what the user of a URL can and cannot do, with ``ACL DRYRUN`` where the user
may run it, else by queueing each command in a transaction that is discarded unexecuted (the
server checks ACLs when it queues a command): nothing is written, nothing is published.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, get_args

import redis

from .._config.wire import DEFAULT_CHANNEL
from .._redis.connection import Target
from .._redis.keyspace import DEFAULT_NAMESPACE, Keyspace, as_text, store_risks
from ..bridge._history import history_keys

__all__ = [
    "BRIDGE_PRIVATE_CHANNELS",
    "HEALTH_CHANNEL_PREFIX",
    "ROLES",
    "Check",
    "Report",
    "Role",
    "doctor",
    "rules",
]

Role = Literal["subscriber", "publisher", "operator", "bridge", "replay-publisher"]
Method = Literal["dryrun", "transaction", "none"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
HEALTH_CHANNEL_PREFIX: Final = "health:status:"

# redis-py's cluster client maps the slots and reads the command table when it starts.
_CLUSTER: Final = ("+cluster|slots", "+command")
# What every connection may send: redis-py's handshake (CLIENT SETNAME with a service name,
# SELECT for a database other than 0) and PING. CLIENT SETINFO is left out: Redis 7.0 does not
# know it (an unknown command fails ACL SETUSER), and redis-py ignores its refusal. MULTI and
# DISCARD without EXEC run nothing; they let doctor() find out what the user can do without
# doing it. ROLE: on a Sentinel URL the listener asks whether its node is still the master.
_CONNECT: Final = ("+ping", "+hello", "+select", "+client|setname", "+role", *_CLUSTER)
_PROBE: Final = ("+multi", "+discard")
_SUBSCRIBE: Final = ("+subscribe", "+unsubscribe")
_SHARD_SUBSCRIBE: Final = ("+ssubscribe", "+sunsubscribe")
# The listener's snapshot and position scripts (EVAL of GET, HGETALL and HLEN), and the health
# report script (EVALSHA, SCRIPT LOAD the first time) with its reads: TIME, GET, XREVRANGE.
_READ_SCRIPTS: Final = ("+eval", "+get", "+hgetall", "+hlen")
# CLIENT ID: the listener's connection id, which its registration names so that the fleet sees
# the process die (the server drops the connection); its own id only, nothing of others.
_OWN_ID: Final = ("+client|id",)
_REPORT_READS: Final = ("+evalsha", "+script|load", "+time", "+xrevrange")
# What a subscriber writes, only in its selector: its health registration under
# {ns}:health:*, its report on the health channel, and the delivery probe on its own channel.
_REPORT_WRITES: Final = ("+publish", "+set", "+del", "+zadd", "+zrem", "+zremrangebyscore")
# ConfigStore: EVALSHA of the write script (SCRIPT LOAD the first time), whose commands are
# GET, SET, INCR, HSET, HDEL, SADD, HLEN, XADD and PUBLISH; MGET of the position it signs for.
_WRITE_SCRIPT: Final = (
    "+evalsha",
    "+script|load",
    "+get",
    "+set",
    "+incr",
    "+hset",
    "+hdel",
    "+sadd",
    "+hlen",
    "+xadd",
    "+publish",
    "+mget",
)
_STORE_READS: Final = ("+eval", "+hget", "+hgetall", "+smembers", "+xrevrange")
# The hotconfig command's view of the fleet: the live-instances script (TIME, GET,
# ZRANGEBYSCORE), which of the instances' connections the server still has (CLIENT LIST ID,
# with ROLE, granted to all), and the server's settings.
_FLEET_READS: Final = ("+time", "+zrangebyscore", "+client|list", "+config|get")
# The bridge's reader of replayable histories (bridge._history.History): EVAL of a script that
# runs HMGET on the meta hash and XRANGE on the stream.
_HISTORY_READS: Final = ("+eval", "+hmget", "+xrange")
# ReplayPublisher: EVAL of the publish script, whose commands are HSETNX, DEL and HSET (a new
# epoch), HGET and HINCRBY (the offset), XADD (capped), PEXPIRE (the ttl) and PUBLISH.
_REPLAY_PUBLISH: Final = (
    "+eval",
    "+hsetnx",
    "+del",
    "+hset",
    "+hget",
    "+hincrby",
    "+xadd",
    "+pexpire",
    "+publish",
)
# The channel each bridge subscribes to on its own (hotconfig:bridge:<random id>), so that its
# connection stays in Pub/Sub mode while no browser follows anything.
BRIDGE_PRIVATE_CHANNELS: Final = "hotconfig:bridge:*"


def rules(
    role: Role,
    namespace: str = DEFAULT_NAMESPACE,
    channel: str = DEFAULT_CHANNEL,
    health_channel_prefix: str = HEALTH_CHANNEL_PREFIX,
    *,
    bridge_channels: Sequence[str] = ("*",),
    replay_channels: Sequence[str] | None = None,
    sharded: bool = False,
) -> list[str]:
    """The ``ACL SETUSER`` rule tokens of ``role``, to follow the user name, ``on`` and password.

    - ``subscriber``: a service's :class:`~hotconfig.HotConfig` and its health
      :class:`~hotconfig.fleet.reporter.Reporter`: SUBSCRIBE to ``channel``, run the read-only store
      scripts, ask its own connection's id; in a selector, write its health registration
      (``{namespace}:health:*``) and PUBLISH its reports and delivery probes (on those two
      channels only). It cannot write the store or publish a change.
    - ``publisher``: a :class:`~hotconfig.ConfigStore`: run the write script (which publishes on
      ``channel``) and read the store; no other key, no subscription.
    - ``operator``: the ``hotconfig`` command: a publisher that also follows ``channel``, the
      health reports and the instance registry (and which of the instances' connections are
      still there: CLIENT LIST), and reads the server's settings.
    - ``bridge``: :mod:`hotconfig.bridge`: SUBSCRIBE and PSUBSCRIBE to ``bridge_channels``
      (glob patterns) and to its own ``hotconfig:bridge:*`` channel; for the replayable
      channels among them (``replay_channels``), read their histories (EVAL of HMGET and
      XRANGE on their two ``hotconfig:replay:{<channel>}:*`` keys); PUBLISH on its own
      channel alone, for its delivery probe. No other key.
    - ``replay-publisher``: a :class:`~hotconfig.bridge.ReplayPublisher`: run its publish
      script on the histories of ``replay_channels`` (EVAL of HSETNX, DEL, HSET, HGET,
      HINCRBY, XADD, PEXPIRE on their two keys) and PUBLISH on those channels. No other key,
      no subscription.

    ``replay_channels`` (glob patterns): for a bridge they default to ``bridge_channels``
    (``()``: no replayable channel, no history read); a replay publisher must name them,
    since it may PUBLISH on each (``*`` would include the config channel).

    ``sharded``: the store and clients use sharded Pub/Sub (``redis+cluster://...?sharded=1``):
    the store SPUBLISHes on its shard channel ``{namespace}:<channel>``, clients SSUBSCRIBE to
    it and send their delivery probe by SPUBLISH in the same slot; the classic ``channel``
    stays granted as before (raw publishers, a rollout in progress). A sharded bridge also
    SSUBSCRIBEs to its channels, a sharded replay publisher SPUBLISHes on them (in the slot of
    their histories: the channel is their hash tag).

    The tokens start from nothing (``resetkeys resetchannels clearselectors -@all``), so applying
    them again to an existing user replaces its permissions rather than adding to them.
    """
    keyspace = Keyspace(namespace)
    tag = keyspace.tag
    keys = f"~{tag}:*"
    health = health_channel_prefix + namespace
    # The listener's delivery probe (Sentinel, Cluster): on the shard channel's name when
    # sharded, so that it is published in the store's slot.
    shard = keyspace.shard_channel(channel) if sharded else None
    probe = f"{shard or channel}:probe:*"
    shard_subscribe = _SHARD_SUBSCRIBE if sharded else ()
    shard_channels = [f"&{shard}"] if shard else []
    base = ["resetkeys", "resetchannels", "clearselectors", "-@all", *_CONNECT, *_PROBE]
    if role == "subscriber":
        follows = [*_READ_SCRIPTS, *_OWN_ID, *_REPORT_READS]
        commands = _unique([*_SUBSCRIBE, *shard_subscribe, *follows])
        probe_publish = ("+spublish",) if sharded else ()
        writes = " ".join(
            [*_REPORT_WRITES, *probe_publish, f"~{tag}:health:*", f"&{probe}", f"&{health}"]
        )
        channels = ["&" + channel, *shard_channels, "&" + probe]
        return [*base, *commands, keys, *channels, f"({writes})"]
    if role == "publisher":
        publish = ("+spublish",) if sharded else ()
        commands = _unique([*_WRITE_SCRIPT, *publish, *_STORE_READS])
        return [*base, *commands, keys, "&" + channel, *shard_channels]
    if role == "operator":
        pubsub = [*_SUBSCRIBE, *shard_subscribe, "+psubscribe", "+punsubscribe"]
        publish = ("+spublish",) if sharded else ()
        views = [*_STORE_READS, *_OWN_ID, *_FLEET_READS]
        commands = _unique([*pubsub, *_WRITE_SCRIPT, *publish, *views])
        channels = ["&" + channel, *shard_channels, "&" + probe, "&" + health]
        return [*base, *commands, keys, *channels]
    replayed = bridge_channels if replay_channels is None else replay_channels
    histories = [f"~{key}" for pattern in replayed for key in history_keys(pattern)]
    if role == "bridge":
        own = () if "*" in bridge_channels else (BRIDGE_PRIVATE_CHANNELS,)
        patterns = ["&" + pattern for pattern in (*bridge_channels, *own)]
        pubsub = [*_SUBSCRIBE, *shard_subscribe, "+psubscribe", "+punsubscribe"]
        reads = _HISTORY_READS if histories else ()
        # The delivery probe: PUBLISH on the bridge's own channel only (a selector, so that no
        # channel it forwards may be published on).
        probe_selector = f"(+publish &{BRIDGE_PRIVATE_CHANNELS})"
        return [*base, *pubsub, *reads, *histories, *_unique(patterns), probe_selector]
    if role == "replay-publisher":
        if not replay_channels:  # never every channel by default: that includes config:changes
            raise ValueError(
                "a replay-publisher needs replay_channels, the glob patterns of the channels it "
                "publishes (e.g. ['chat:*']): it may PUBLISH on each of them"
            )
        publish = ("+spublish",) if sharded else ()
        patterns = _unique(["&" + pattern for pattern in replayed])
        return [*base, *_REPLAY_PUBLISH, *publish, *histories, *patterns]
    raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")


def _unique(tokens: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(tokens))


class Check(NamedTuple):
    """One thing a user may or may not do: ``allowed`` is None when it could not be told."""

    action: str
    command: tuple[str, ...]
    allowed: bool | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    """What :func:`doctor` found about one URL's user and server."""

    url: str  # redacted
    user: str
    method: Method
    checks: tuple[Check, ...]
    eviction_policy: str | None
    pubsub_buffer_limit: str | None
    warnings: tuple[str, ...]

    def can(self, action: str) -> bool | None:
        """Whether the user can do ``action`` (one of the checks' actions)."""
        for check in self.checks:
            if check.action == action:
                return check.allowed
        raise KeyError(f"no check named {action!r}; have {[c.action for c in self.checks]}")

    def lines(self) -> list[str]:
        """The report as text, one finding a line (nothing secret: the URL is redacted)."""
        out = [f"user {self.user!r} at {self.url} (checked by {self.method})"]
        for check in self.checks:
            verdict = {True: "can", False: "cannot", None: "may or may not"}[check.allowed]
            out.append(f"this user {verdict} {check.action}" + _detail(check))
        out.append(f"maxmemory-policy: {self.eviction_policy or 'unknown (CONFIG GET refused)'}")
        limit = self.pubsub_buffer_limit or "unknown (CONFIG GET refused)"
        out.append(f"pubsub output buffer limit: {limit}")
        out += [f"warning: {warning}" for warning in self.warnings]
        return out


def _detail(check: Check) -> str:
    return f" ({check.detail})" if check.detail and check.allowed is not True else ""


def _actions(keyspace: Keyspace, channel: str) -> list[tuple[str, tuple[str, ...]]]:
    scope, health = keyspace.scope("global"), HEALTH_CHANNEL_PREFIX + keyspace.namespace
    return [
        (f"SUBSCRIBE to {channel}", ("SUBSCRIBE", channel)),
        ("PING", ("PING",)),
        ("read the store (EVAL)", ("EVAL", "return 1", "1", keyspace.version)),
        ("read stored values (HGETALL)", ("HGETALL", scope)),
        ("write stored values (HSET)", ("HSET", scope, "doctor.probe", "1")),
        ("load the write script (SCRIPT LOAD)", ("SCRIPT", "LOAD", "return 1")),
        ("run the write script (EVALSHA)", ("EVALSHA", "0" * 40, "1", keyspace.version)),
        ("bump the version (INCR)", ("INCR", keyspace.version)),
        (f"PUBLISH to {channel}", ("PUBLISH", channel, "doctor.probe")),
        (f"PUBLISH to {health}", ("PUBLISH", health, "doctor.probe")),
        ("register its health (SET)", ("SET", f"{keyspace.tag}:health:instance:doctor", "1")),
        ("tell its connection's id (CLIENT ID)", ("CLIENT", "ID")),
        ("see which instances are connected (CLIENT LIST)", ("CLIENT", "LIST", "ID", "1")),
        ("read keys outside the store", ("GET", "doctor:not-hotconfig")),
    ]


def doctor(
    url: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    channel: str = DEFAULT_CHANNEL,
    redis_kwargs: Mapping[str, Any] | None = None,
) -> Report:
    """Check what the user of ``url`` can and cannot do, and the server's risky settings.

    Nothing is written or published. Raises :class:`redis.RedisError` only if the server cannot
    be reached or refuses the login.
    """
    target = Target(url, redis_kwargs)
    user = redis.connection.parse_url(url).get("username") or "default"  # type: ignore[no-untyped-call]
    client = target.command_client(single_connection_client=True, decode_responses=True)
    try:
        actions = _actions(Keyspace(namespace), channel)
        method, checks = _dryrun(client, user, actions)
        if method == "none":
            method, checks = _transaction(client, actions)
        policy = _config(client, "maxmemory-policy")
        limits = _config(client, "client-output-buffer-limit")
        risks = store_risks(client)
    finally:
        client.close()
    pubsub_limit = _pubsub_limit(limits)
    report = Report(target.redacted, user, method, tuple(checks), policy, pubsub_limit, ())
    return _with_warnings(report, channel, risks)


def _dryrun(
    client: redis.Redis, user: str, actions: list[tuple[str, tuple[str, ...]]]
) -> tuple[Method, list[Check]]:
    checks = []
    for action, command in actions:
        try:
            reply = as_text(_command(client, "ACL", "DRYRUN", user, *command))
        except redis.ResponseError:
            # Not this user's to ask (ACL DRYRUN is an admin command), or a server before 7.0.
            return "none", []
        checks.append(Check(action, command, reply == "OK", "" if reply == "OK" else reply))
    return "dryrun", checks


def _transaction(
    client: redis.Redis, actions: list[tuple[str, tuple[str, ...]]]
) -> tuple[Method, list[Check]]:
    try:
        _command(client, "MULTI")
    except redis.ResponseError as exc:
        checks = [
            Check(a, c, None, f"neither ACL DRYRUN nor MULTI is allowed: {exc}") for a, c in actions
        ]
        return "none", checks
    checks = []
    try:
        for action, command in actions:
            try:
                _command(client, *command)  # QUEUED: allowed, and never executed
                checks.append(Check(action, command, True))
            except redis.exceptions.NoPermissionError as exc:
                checks.append(Check(action, command, False, str(exc)))
            except redis.ResponseError as exc:  # refused for another reason (SUBSCRIBE in MULTI)
                checks.append(Check(action, command, None, str(exc)))
    finally:
        _command(client, "DISCARD")
    return "transaction", checks


def _command(client: redis.Redis, *args: str) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _config(client: redis.Redis, name: str) -> str | None:
    try:
        reply: dict[Any, Any] = client.config_get(name)
    except redis.ResponseError:  # NOPERM, or CONFIG renamed away on managed services
        return None
    value = reply.get(name)
    return None if value is None else as_text(value)


def _pubsub_limit(limits: str | None) -> str | None:
    if limits is None:
        return None
    words = limits.split()
    for i, word in enumerate(words[:-3]):
        if word == "pubsub":
            return " ".join(words[i + 1 : i + 4])
    return None


def _with_warnings(report: Report, channel: str, risks: list[str]) -> Report:
    warnings = []
    if report.can(f"PUBLISH to {channel}"):
        warnings.append(
            f"this user can PUBLISH to {channel}: anyone holding this URL can change the config "
            "of every subscriber directly; give services the 'subscriber' role (hotconfig acl)"
        )
    if report.can("read keys outside the store"):
        warnings.append("this user can read keys outside the store's namespace")
    warnings += risks  # the server's settings that can lose the store (eviction, persistence)
    return dataclasses.replace(report, warnings=tuple(warnings))
