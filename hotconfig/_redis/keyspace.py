"""Where the store keeps things in Redis, and the Lua scripts that read and write them.

Every key carries the same hash tag (``{namespace}``) so that a script touching several keys
runs on one Redis Cluster slot. The layout::

    {ns}:version       INCR counter, the last version written (strictly increasing)
    {ns}:epoch         random id of this store's lifetime; gone after a wipe → new epoch
    {ns}:scope:<name>  hash: key → JSON-encoded value, one per scope
    {ns}:scopes        set of scope names ever written
    {ns}:history       capped stream of every write (version, epoch, body)

and, in sharded mode, the channel ``{ns}:<channel>`` (:meth:`Keyspace.shard_channel`): a shard
channel hashes like a key, so with the same tag the write script can SPUBLISH on it from the
store's slot, and subscribers find it on the master serving that slot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import redis

from .._config.wire import decode_value
from ..errors import InvalidMessageError

__all__ = [
    "DEFAULT_NAMESPACE",
    "POSITION_SCRIPT",
    "SNAPSHOT_SCRIPT",
    "WRITE_SCRIPT",
    "Keyspace",
    "Position",
    "Skipped",
    "StoreSnapshot",
    "as_text",
    "decode_hash",
    "read_position",
    "read_snapshot",
    "store_risks",
]

DEFAULT_NAMESPACE: Final = "hotconfig"
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,256}").fullmatch

# KEYS: version, epoch, history, scopes-set, digest, then one scope hash per change.
# ARGV: channel, epoch candidate, history maxlen, message body tail, the tail to publish instead
# of the body ('' for none: a reload notice replaces a change too large for one message), the
# version this write must get and the digest it must follow ('' for any: a signed write is
# signed for one position, so the script refuses it, returning version 0, if the store moved),
# the store's identity as JSON members ('"ns":"<namespace>"', then ',"db":N' when its database is
# not 0: stores sharing a channel, or a server, tell their messages apart), the command that
# publishes ('PUBLISH', or 'SPUBLISH' in sharded mode, ARGV[1] then being the store's shard
# channel), n, then n times (op, scope, key, value).
# One script does the write, the version bump, the digest, the history and the PUBLISH, so no
# subscriber can ever see a version whose data is not in the store yet.
#
# The digest chains every write to the one before it: a version number alone does not say which
# write it is (a store restored from an older dump, a promoted replica that lagged or an evicted
# counter hands out the same numbers again; any publisher can send "the next version"). Each
# message carries the digest it follows ("prev") and its own, and the sizes of the scope hashes
# it touched, so that a subscriber can tell a write that does not follow what it applied, and
# the anti-entropy poll can see a hash that vanished without a write (eviction).
WRITE_SCRIPT: Final = """
local epoch = redis.call('GET', KEYS[2])
local fresh = not epoch
if fresh then
  epoch = ARGV[2]
end
local prev = redis.call('GET', KEYS[5]) or ''
if ARGV[6] ~= '' then
  local current = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tostring(current + 1) ~= ARGV[6] or prev ~= ARGV[7] or epoch ~= ARGV[2] then
    return {0, epoch}
  end
end
if fresh then
  redis.call('SET', KEYS[2], epoch)
end
local version = redis.call('INCR', KEYS[1])
local n = tonumber(ARGV[10])
local touched, order = {}, {}
for i = 0, n - 1 do
  local op, scope, key = ARGV[11 + i * 4], ARGV[12 + i * 4], ARGV[13 + i * 4]
  local hash = KEYS[6 + i]
  if op == 'set' then
    redis.call('HSET', hash, key, ARGV[14 + i * 4])
  else
    redis.call('HDEL', hash, key)
  end
  redis.call('SADD', KEYS[4], scope)
  if not touched[scope] then
    touched[scope] = hash
    order[#order + 1] = scope
  end
end
local body = ARGV[4]
local chained = prev .. '|' .. epoch .. '|' .. version .. '|' .. body
local digest = string.sub(redis.sha1hex(chained), 1, 16)
redis.call('SET', KEYS[5], digest)
local sizes = {}
for _, scope in ipairs(order) do
  sizes[#sizes + 1] = '"' .. scope .. '":' .. redis.call('HLEN', touched[scope])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
  'version', version, 'epoch', epoch, 'digest', digest, 'body', body)
local tail = body
if ARGV[5] ~= '' then
  tail = ARGV[5]
end
local message = '{"version":' .. version .. ',' .. ARGV[8] .. ',"epoch":"' .. epoch ..
  '","prev":"' .. prev ..
  '","digest":"' .. digest .. '","sizes":{' .. table.concat(sizes, ',') .. '},' .. tail
if ARGV[9] == 'SPUBLISH' then
  redis.call('SPUBLISH', ARGV[1], message)
else
  redis.call('PUBLISH', ARGV[1], message)
end
return {version, epoch}
"""

# KEYS: version, epoch, digest, then one scope hash per followed scope. Returns
# {epoch or false, version, digest, {k1, v1, k2, v2, ...}, ...}: one atomic view of every scope.
SNAPSHOT_SCRIPT: Final = """
local out = {redis.call('GET', KEYS[2]), tonumber(redis.call('GET', KEYS[1]) or '0'),
  redis.call('GET', KEYS[3]) or ''}
for i = 4, #KEYS do
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
end
return out
"""

# The same keys; returns {epoch or false, version, digest, HLEN of each scope}: what identifies
# the store's state, for the anti-entropy poll, without reading any value.
POSITION_SCRIPT: Final = """
local out = {redis.call('GET', KEYS[2]), tonumber(redis.call('GET', KEYS[1]) or '0'),
  redis.call('GET', KEYS[3]) or ''}
for i = 4, #KEYS do
  out[#out + 1] = redis.call('HLEN', KEYS[i])
end
return out
"""


class Skipped(NamedTuple):
    """A stored value that could not be decoded, and why."""

    key: str
    error: InvalidMessageError


class Position(NamedTuple):
    """What identifies the store's state: its epoch, last version, the digest of that write
    and the number of stored keys in each scope hash."""

    epoch: str | None
    version: int
    digest: str
    sizes: dict[str, int]


class StoreSnapshot(NamedTuple):
    """The store's state at one moment: what a subscriber loads, and what last-known-good keeps.

    ``layers`` maps each scope read to its stored values (decoded JSON); ``digest`` and
    ``sizes`` are those of :class:`Position` (a size counts stored fields, decodable or not).
    """

    epoch: str | None
    version: int
    layers: dict[str, dict[str, Any]]
    digest: str = ""
    sizes: dict[str, int] = {}  # noqa: RUF012 - NamedTuple defaults are shared, never mutated
    skipped: tuple[tuple[str, Skipped], ...] = ()  # (scope, value) left out of ``layers``

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.version, self.digest, self.sizes)


@dataclass(frozen=True, slots=True)
class Keyspace:
    """Key names of one store namespace."""

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        # The namespace is a Redis Cluster hash tag ({ns}) and a JSON string in every message.
        if type(self.namespace) is not str or _NAMESPACE(self.namespace) is None:
            raise ValueError(
                "namespace must be 1-256 characters of [A-Za-z0-9_.:-], e.g. 'hotconfig' or "
                f"'billing'; got {self.namespace!r:.60}"
            )

    @property
    def tag(self) -> str:
        return "{" + self.namespace + "}"

    @property
    def version(self) -> str:
        return f"{self.tag}:version"

    @property
    def epoch(self) -> str:
        return f"{self.tag}:epoch"

    @property
    def digest(self) -> str:
        return f"{self.tag}:digest"

    @property
    def history(self) -> str:
        return f"{self.tag}:history"

    @property
    def scopes(self) -> str:
        return f"{self.tag}:scopes"

    def scope(self, name: str) -> str:
        return f"{self.tag}:scope:{name}"

    def identity(self, db: int) -> str:
        """The members of a message that name this store: its namespace, and its database when
        not 0 (Pub/Sub ignores database numbers: a PUBLISH reaches every database's
        subscribers, so a store on db 1 and one on db 0 share a channel)."""
        members = {"ns": self.namespace} | ({"db": db} if db else {})
        return json.dumps(members, separators=(",", ":"))[1:-1]

    def shard_channel(self, channel: str) -> str:
        """The sharded twin of ``channel``: in the store's slot, so the write script may
        SPUBLISH on it (a script's shard channels must hash like its keys)."""
        return f"{self.tag}:{channel}"


def read_snapshot(client: redis.Redis, keyspace: Keyspace, scopes: Sequence[str]) -> StoreSnapshot:
    """The store's position and the values of ``scopes``, read atomically in one script."""
    keys = [keyspace.version, keyspace.epoch, keyspace.digest, *map(keyspace.scope, scopes)]
    reply = client.eval(SNAPSHOT_SCRIPT, len(keys), *keys)
    epoch = as_text(reply[0]) if reply[0] else None
    layers: dict[str, dict[str, Any]] = {}
    sizes: dict[str, int] = {}
    skipped: list[tuple[str, Skipped]] = []
    for scope, flat in zip(scopes, reply[3:], strict=True):
        layers[scope], bad = decode_hash(flat)
        sizes[scope] = len(flat) // 2
        skipped += [(scope, item) for item in bad]
    return StoreSnapshot(epoch, int(reply[1]), layers, as_text(reply[2]), sizes, tuple(skipped))


def read_position(client: redis.Redis, keyspace: Keyspace, scopes: Sequence[str]) -> Position:
    """The store's :class:`Position` for ``scopes``, read atomically in one cheap script."""
    keys = [keyspace.version, keyspace.epoch, keyspace.digest, *map(keyspace.scope, scopes)]
    reply = client.eval(POSITION_SCRIPT, len(keys), *keys)
    epoch = as_text(reply[0]) if reply[0] else None
    sizes = {scope: int(size) for scope, size in zip(scopes, reply[3:], strict=True)}
    return Position(epoch, int(reply[1]), as_text(reply[2]), sizes)


def as_text(value: bytes | str) -> str:
    """A reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def decode_hash(flat: list[bytes]) -> tuple[dict[str, Any], list[Skipped]]:
    """Decode an HGETALL reply of JSON values, each on its own.

    A value that is not exactly one JSON document (written by hand, say) is left out and
    returned in the second list: it can never shift another key's value, and the rest load.
    """
    decoded: dict[str, Any] = {}
    skipped: list[Skipped] = []
    for raw_key, raw in zip(flat[0::2], flat[1::2], strict=True):
        key = as_text(raw_key)
        try:
            decoded[key] = decode_value(raw)
        except InvalidMessageError as exc:
            skipped.append(Skipped(key, exc))
    return decoded, skipped


def _setting(client: Any, name: str) -> str | None:
    """One server setting by CONFIG GET; None when it cannot be read (CONFIG is often renamed
    away or refused on managed services)."""
    try:
        reply: dict[Any, Any] = client.config_get(name)
    except redis.RedisError:
        return None
    value = reply.get(name, reply.get(name.encode()))
    return None if value is None else as_text(value)


def store_risks(client: Any) -> list[str]:
    """What in the server's settings can lose the store's keys, each said with its fix; nothing
    for what cannot be read. Told at a client's first connection and by ``hotconfig doctor``."""
    risks = []
    policy = _setting(client, "maxmemory-policy")
    if policy is not None and policy.startswith("allkeys"):
        risks.append(
            f"the server's maxmemory-policy is {policy}: under memory pressure it may evict the "
            "store's keys; use noeviction or a volatile-* policy"
        )
    if _setting(client, "appendonly") == "no" and _setting(client, "save") == "":
        risks.append(
            "the server persists nothing (appendonly no, no save points): a restart empties "
            "the store and every client goes back to its defaults; turn on AOF (appendonly "
            "yes) or RDB snapshots (save)"
        )
    return risks
