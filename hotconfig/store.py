"""The Config Service side: durable, versioned writes that every subscriber converges to."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis

from ._config.options import checked_channel
from ._config.wire import (
    DEFAULT_CHANNEL,
    DEFAULT_LIMITS,
    DEFAULT_MAX_BYTES,
    DEFAULT_SCOPE,
    HEADER_BYTES,
    SIZE_BYTES,
    Entry,
    Limits,
    check_depth,
    decode_value,
    encode_body,
    parse,
    validate_key,
    validate_scope,
)
from ._redis.connection import Target, database, resolve
from ._redis.keyspace import (
    DEFAULT_NAMESPACE,
    WRITE_SCRIPT,
    Keyspace,
    StoreSnapshot,
    as_text,
    read_snapshot,
)
from .errors import InvalidMessageError, StoreError
from .security.signing import KeyRing, payload

__all__ = ["ConfigStore", "HistoryEntry"]

_SIGN_ATTEMPTS = 20
_SIG_BYTES = 60  # '"sig":"<kid>:<43 characters>",' without the key id

# The history holds what the store itself wrote, large changes included.
_UNLIMITED = Limits(max_message_bytes=1 << 62, max_depth=1 << 16, max_batch=1 << 62)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One write as the history stream recorded it."""

    version: int
    epoch: str
    entries: tuple[Entry, ...]
    id: str


class ConfigStore:
    """Writes config to Redis and publishes each write on the changes channel.

    Each write is one Lua script: the value goes into a hash per scope, the version counter
    goes up by one, the write is appended to a capped history stream and the message is
    published, all atomically. Subscribers use the version to detect anything they missed.

    The store is thread-safe (it uses redis-py's connection pool).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        channel: str = DEFAULT_CHANNEL,
        namespace: str = DEFAULT_NAMESPACE,
        history_size: int = 10_000,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        client: redis.Redis | None = None,
        signing_keys: KeyRing | str | Mapping[str, bytes] | None = None,
        redis_kwargs: Mapping[str, Any] | None = None,
        sharded: bool | None = None,
    ) -> None:
        if client is not None and client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError(
                "ConfigStore needs a client with decode_responses=False (values are JSON bytes); "
                "pass a URL, or a client made without decode_responses"
            )
        if client is not None and sharded:
            raise ValueError(
                "sharded=True needs a redis+cluster:// URL to know the cluster; pass the URL "
                "instead of a client"
            )
        for name, number in (
            ("history_size", history_size),
            ("max_message_bytes", max_message_bytes),
        ):
            if type(number) is not int or number < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {number!r:.40}")
        channel = checked_channel(channel)
        self.url: str | None = None
        """The URL the store connects to, its password hidden; None for a client given."""
        self.sharded = False
        """Whether writes are announced by SPUBLISH on the store's shard channel (see
        :meth:`~hotconfig._redis.keyspace.Keyspace.shard_channel`) instead of PUBLISH."""
        if client is None:
            target = Target(resolve(url), redis_kwargs, sharded=sharded)  # e.g. ssl_ca_certs
            self.url, self.sharded = target.redacted, target.sharded
            client = target.command_client()
        self._redis = client
        self.channel = channel
        self.keyspace = Keyspace(namespace)
        # Each message names the store (namespace and database) so that no other store's
        # clients on the same channel apply it.
        self._identity = self.keyspace.identity(database(client))
        # Sharded: only clients in sharded mode hear the writes (they SUBSCRIBE the classic
        # channel too, for raw publishers), so roll the clients out first, then the store.
        self._publish_to = self.keyspace.shard_channel(channel) if self.sharded else channel
        self._publish_with = "SPUBLISH" if self.sharded else "PUBLISH"
        self.history_size = history_size
        self.max_message_bytes = max_message_bytes
        self._write = client.register_script(WRITE_SCRIPT)
        # Signs every write with the ring's first key; default: $HOTCONFIG_SIGNING_KEYS.
        self._ring = KeyRing.resolve(signing_keys)

    # -- writes -------------------------------------------------------------------------------

    def set(self, key: str, value: Any, *, scope: str = DEFAULT_SCOPE) -> int:
        """Set ``key`` to ``value`` (any JSON value) in ``scope``; return the new version."""
        return self._commit([Entry(_key(key), value, _scope(scope))])

    def set_many(self, values: Mapping[str, Any], *, scope: str = DEFAULT_SCOPE) -> int:
        """Set several keys under one version; subscribers apply them all or none."""
        scope = _scope(scope)
        return self._commit([Entry(_key(k), v, scope) for k, v in values.items()])

    def delete(self, key: str, *, scope: str = DEFAULT_SCOPE) -> int:
        """Delete ``key`` from ``scope`` (a lower scope's value, if any, shows through)."""
        return self._commit([Entry(_key(key), None, _scope(scope), "delete")])

    def apply(self, entries: Iterable[Entry]) -> int:
        """Write a batch of sets and deletes across scopes under one version."""
        checked = []
        for e in entries:
            if e.op not in ("set", "delete"):
                raise ValueError(f"op must be 'set' or 'delete', got {e.op!r}")
            checked.append(Entry(_key(e.key), e.value, _scope(e.scope), e.op))
        return self._commit(checked)

    def _commit(self, entries: list[Entry]) -> int:
        if not entries:
            raise ValueError("nothing to write: give at least one key")
        keyspace = self.keyspace
        keys = [
            keyspace.version,
            keyspace.epoch,
            keyspace.history,
            keyspace.scopes,
            keyspace.digest,
        ]
        values: list[Any] = []
        for entry in entries:
            keys.append(keyspace.scope(entry.scope))
            value = "" if entry.op == "delete" else _dumps(entry.key, entry.value)
            values += [entry.op, entry.scope, entry.key, value]
        body = encode_body(entries)
        # Clients count UTF-8 bytes of the whole message, header included.
        scopes = {entry.scope for entry in entries}
        size = len(body.encode()) + HEADER_BYTES + sum(len(s) + SIZE_BYTES for s in scopes)
        size += len(self._identity.encode()) + 1  # its comma
        if self._ring is not None:
            size += _SIG_BYTES + len(self._ring.signer)
        # A change too large for one message is still one atomic write under one version; its
        # message then only says "reload", and every client loads the store's state.
        reload = size > self.max_message_bytes
        candidate = uuid.uuid4().hex
        for _ in range(_SIGN_ATTEMPTS):
            head = self._signed_head(entries, body, reload, candidate)
            args = [*head, self._identity, self._publish_with, len(entries), *values]
            try:
                version, _epoch = self._write(keys=keys, args=args)
            except redis.ResponseError as exc:
                raise StoreError(f"the server refused the write: {exc}") from exc
            if int(version):
                return int(version)
            # Signed for a position another writer took first: sign for the new one.
        raise StoreError(
            f"the store moved {_SIGN_ATTEMPTS} times while this write was being signed "
            "(other writers are busy); try again"
        )

    def _signed_head(
        self, entries: list[Entry], body: str, reload: bool, candidate: str
    ) -> list[Any]:
        """The write script's arguments before the entries: unsigned, or signed for the
        store's next position (the script refuses the write if that is no longer next)."""
        ring = self._ring
        if ring is None:
            notice = '"reload":true}' if reload else ""
            return [self._publish_to, candidate, self.history_size, body, notice, "", ""]
        keyspace = self.keyspace
        raw_version, raw_epoch, raw_digest = self._redis.mget(
            keyspace.version, keyspace.epoch, keyspace.digest
        )
        epoch = as_text(raw_epoch) if raw_epoch else candidate
        version = int(raw_version or 0) + 1
        prev = as_text(raw_digest) if raw_digest else ""
        signed = () if reload else entries
        sig = ring.sign(
            payload(self.channel, signed, epoch=epoch, version=version, prev=prev, reload=reload)
        )
        notice = f'"sig":"{sig}","reload":true}}' if reload else ""
        tail = body if reload else f'"sig":"{sig}",{body}'
        return [self._publish_to, epoch, self.history_size, tail, notice, str(version), prev]

    # -- reads --------------------------------------------------------------------------------

    def get(self, key: str, *, scope: str = DEFAULT_SCOPE, default: Any = None) -> Any:
        """The stored value of ``key`` in ``scope``, or ``default``."""
        raw = self._redis.hget(self.keyspace.scope(_scope(scope)), _key(key))
        if raw is None:
            return default
        try:
            return decode_value(raw)
        except InvalidMessageError as exc:
            raise StoreError(
                f"the stored value of {key!r} in scope {scope!r} is not one JSON document "
                f"({exc}); write it again with ConfigStore.set()"
            ) from None

    def get_all(self, scope: str = DEFAULT_SCOPE) -> dict[str, Any]:
        """Every stored key and value of ``scope``."""
        return self.snapshot([scope]).layers[scope]

    def snapshot(self, scopes: Iterable[str]) -> StoreSnapshot:
        """The epoch, version and values of ``scopes``, read atomically: what a subscriber loads."""
        return read_snapshot(self._redis, self.keyspace, [_scope(s) for s in scopes])

    @property
    def version(self) -> int:
        """The last version written (0 for an empty store)."""
        return int(self._redis.get(self.keyspace.version) or 0)

    @property
    def epoch(self) -> str | None:
        """The id of this store's lifetime; None until the first write."""
        raw = self._redis.get(self.keyspace.epoch)
        return as_text(raw) if raw else None

    def scopes(self) -> list[str]:
        """Every scope ever written, sorted."""
        return sorted(as_text(s) for s in self._redis.smembers(self.keyspace.scopes))

    def history(self, count: int = 100, *, key: str | None = None) -> list[HistoryEntry]:
        """The latest writes, newest first (the stream is capped at ``history_size``)."""
        out: list[HistoryEntry] = []
        rows: Any = self._redis.xrevrange(
            self.keyspace.history, count=count if key is None else None
        )
        for stream_id, fields in rows:
            version, epoch = int(fields[b"version"]), as_text(fields[b"epoch"])
            message = parse(b'{"version":0,' + fields[b"body"], _UNLIMITED)
            if key is None or any(e.key == key for e in message.entries):
                out.append(HistoryEntry(version, epoch, message.entries, as_text(stream_id)))
                if len(out) >= count:
                    break
        return out

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store's connections."""
        self._redis.close()

    def __enter__(self) -> ConfigStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<ConfigStore {self.url or 'client'} namespace={self.keyspace.namespace!r} "
            f"channel={self.channel!r}>"
        )


def _dumps(key: str, value: Any) -> str:
    # What every client would refuse is not written: it would be stored, refused everywhere,
    # and break the reads of this store (DEFAULT_LIMITS, the clients' default).
    try:
        check_depth(value, DEFAULT_LIMITS.max_depth)
    except InvalidMessageError as exc:
        raise ValueError(
            f"{key}: {exc.detail}, which every client refuses (Limits.max_depth); write a "
            "shallower value"
        ) from None
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be JSON-serialisable: {exc}") from None


def _key(key: str) -> str:
    try:
        return validate_key(key)
    except InvalidMessageError as exc:
        raise ValueError(f"key: {exc.detail}") from None


def _scope(scope: str) -> str:
    try:
        return validate_scope(scope)
    except InvalidMessageError as exc:
        raise ValueError(f"scope: {exc.detail}") from None
