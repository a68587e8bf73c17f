"""The apply step: turn parsed messages or a store snapshot into the next immutable Snapshot.

Only the listener thread touches a :class:`ConfigState`: the per-scope layers stay private
here, and the only thing published to readers is the merged :class:`Snapshot`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from .._redis.keyspace import Position, StoreSnapshot
from ..errors import InvalidValueError
from .refused import Refused
from .schema import Schema
from .snapshot import Snapshot
from .update import ABSENT, Staged, Update, change, diff, differs
from .wire import Entry, Message
from .written import Written

__all__ = ["ConfigState", "Staged", "Update"]

# Values pinned by testing.override() sit above every real scope. The name cannot come off
# the wire: "<" is not a valid scope character.
PINNED: Final = "<pinned>"
# Digests of the most recent versions applied, to tell a duplicate from a different write that
# reuses its number (a store gone back in time, a forged message).
_RING: Final = 256


class ConfigState:
    """Per-scope layers, raw (unversioned) overlay and the current snapshot of one client."""

    def __init__(self, schema: Schema, scopes: Iterable[str]) -> None:
        self.schema = schema
        self.scopes: tuple[str, ...] = (*scopes, PINNED)  # low → high precedence
        self.layers: dict[str, dict[str, Any]] = {scope: {} for scope in self.scopes}
        # Values from raw publishes, by (scope, key): kept across a resync unless the store
        # holds that key in that scope, because the store is the source of truth.
        self.overlay: dict[tuple[str, str], Any] = {}
        self._typed_raw: dict[str, Any] = {}
        self.refused = Refused()  # stored values the model refused, each reported once
        self.written = Written()  # this process's writes the listener has not brought yet
        self.snapshot = Snapshot(dict(schema.defaults), 0, None, schema.empty_settings)
        self._staged: list[Message] = []
        # Where the snapshot will be once the staged messages are committed.
        self._staged_version = 0
        self._staged_epoch: str | None = None
        self._staged_digest = ""
        self._digests: dict[int, str] = {}
        # Stored keys per followed scope, as the store last told (the poll compares them).
        self.store_sizes: dict[str, int] = dict.fromkeys(self.store_scopes, 0)

    @property
    def store_scopes(self) -> tuple[str, ...]:
        """The scopes read from the store (every followed scope, not the pinned layer)."""
        return self.scopes[:-1]

    @property
    def version(self) -> int:
        return self.snapshot.version

    @property
    def epoch(self) -> str | None:
        return self.snapshot.epoch

    @property
    def position(self) -> Position:
        """Where the store is, as far as this client knows: its staged (or applied) position."""
        return Position(
            self._staged_epoch, self._staged_version, self._staged_digest, self.store_sizes
        )

    # -- steady state -------------------------------------------------------------------------

    def stage(self, message: Message) -> Staged:
        """Queue ``message`` for the next :meth:`commit`, or say why not.

        Versioned messages must follow the last one exactly: older or equal versions are
        duplicates and dropped, a jump means messages were lost, a new epoch a wiped store.
        """
        version = message.version
        if version is None:
            self._staged.append(message)
            return Staged.QUEUED
        # Version 1 of a new epoch on a client that has only seen an empty store is the
        # store's very first write: adopt its epoch instead of paying for a resync. (Another
        # store's messages on the same channel never reach here: the listener drops messages
        # of other namespaces.)
        first_write = self._staged_epoch is None and self._staged_version == 0 and version == 1
        if message.epoch is not None and message.epoch != self._staged_epoch and not first_write:
            return Staged.GAP
        if version <= self._staged_version:
            # A version this client has: the same write again, unless the digests differ. One
            # older than anything it has seen predates its snapshot and cannot be checked here
            # (the anti-entropy poll compares the store's position instead).
            known = self._digests.get(version)
            same = known is None or message.digest is None or known == message.digest
            return Staged.DUPLICATE if same else Staged.CONFLICT
        if version != self._staged_version + 1:
            return Staged.GAP
        if message.prev != self._staged_digest and not first_write:
            return Staged.CONFLICT  # the next number, but not the write that follows ours
        if message.reload:
            return Staged.GAP  # the change is in the store only: load it from there
        self._staged_version = version
        self._staged_epoch = message.epoch or self._staged_epoch
        digest = self._staged_digest = message.digest or ""
        digests = self._digests
        digests[version] = digest
        # Versions staged here follow each other: the one _RING back is the oldest. (Not
        # next(iter()) of the dict: past its deleted front, that costs a scan of the ring.)
        digests.pop(version - _RING, None)
        if message.sizes:
            sizes = self.store_sizes
            for scope, size in message.sizes.items():
                if scope in sizes:
                    sizes[scope] = size
        self._staged.append(message)
        return Staged.QUEUED

    def commit(self) -> Update:
        """Apply the staged messages in one swap; a message the model rejects is left out whole."""
        messages, self._staged = self._staged, []
        if not messages:
            return Update()
        try:
            update = self._apply(messages)
        except InvalidValueError as error:
            if len(messages) == 1:
                return self._reject(messages[0], error)
        else:
            update.applied = len(messages)
            return update
        # Find the culprits one message at a time; the rest still apply, in order.
        total = Update()
        for message in messages:
            try:
                update = self._apply([message])
                total.applied += 1
            except InvalidValueError as error:
                update = self._reject(message, error)
            total.snapshot = update.snapshot or total.snapshot
            total.changes += update.changes
            total.rejected += update.rejected
        return total

    def apply_write(self, version: int, entries: Iterable[Entry]) -> Update:
        """Apply a write of this process, acknowledged at ``version``, ahead of the listener:
        the keys move, the snapshot's version (the listener's) does not."""
        fresh = self.written.fresh(version, entries, self.store_scopes, self.version)
        if not fresh:
            return Update()
        try:
            update = self._apply([Message(tuple(fresh), version)], told=version)
        except InvalidValueError as error:
            error.version = version
            return Update(rejected=[error.with_traceback(None)])
        self.written.record(version, fresh)
        update.applied = 1
        return update

    def _reject(self, message: Message, error: InvalidValueError) -> Update:
        # A rejected versioned message is still consumed: waiting for it again would look like
        # a gap forever. The store keeps the bad value; a resync keeps ours (see resync()).
        # Kept until it is reported; its traceback would keep every frame of the batch alive.
        error.version = message.version
        update = Update(rejected=[error.with_traceback(None)])
        for entry in message.entries:
            if entry.key == error.key and entry.op == "set":
                self.refused.first(entry.scope, entry.key, entry.value)
        if message.version is not None and message.version > self.snapshot.version:
            old = self.snapshot
            update.snapshot = self.snapshot = Snapshot(
                old._values,
                message.version,
                message.epoch or old.epoch,
                old.settings,
                self._digest_at(message.version),
            )
        return update

    def _apply(self, messages: list[Message], told: int | None = None) -> Update:
        # told: a write of this process (apply_write), told at that version, not the listener's
        layers, schema = self.layers, self.schema
        typed = schema.model is not None
        track_overlay = bool(self.overlay)  # otherwise only raw sets touch the overlay
        touched: dict[str, Entry] = {}
        undo: list[tuple[dict[str, Any], str, Any]] = []
        overlay_ops: list[tuple[tuple[str, str], Any]] = []
        version, epoch = self.snapshot.version, self.snapshot.epoch
        written = self.written if told is None and self.written else None
        try:
            for message in messages:
                raw = message.version is None
                for entry in message.entries:
                    key, value, scope, op = entry
                    layer = layers.get(scope)
                    if layer is None:
                        continue  # a scope this client does not follow
                    if written is not None and written.shadows(scope, key, message.version):
                        continue  # older than what this process wrote and applied already
                    if typed:  # only the model can refuse a change, so only then keep an undo log
                        schema.check_key(key)
                        if op == "set":
                            schema.check_value(key, value)
                        undo.append((layer, key, layer.get(key, ABSENT)))
                    if op == "set":
                        layer[key] = value
                    else:
                        layer.pop(key, None)
                    touched[key] = entry
                    # A raw set is remembered for resyncs; a raw delete or a store write ends it.
                    if raw and op == "set":
                        overlay_ops.append(((scope, key), value))
                    elif track_overlay or raw:
                        overlay_ops.append(((scope, key), ABSENT))
                if not raw and told is None:
                    version = message.version  # type: ignore[assignment]
                    epoch = message.epoch or epoch
            update = self._swap(touched, version, epoch, told or version)
        except InvalidValueError:
            for layer, key, value in reversed(undo):
                if value is ABSENT:
                    layer.pop(key, None)
                else:
                    layer[key] = value
            raise
        for slot, value in overlay_ops:
            if value is ABSENT:
                self.overlay.pop(slot, None)
            else:
                self.overlay[slot] = value
        self.written.settle(version)
        return update

    def _swap(
        self, touched: dict[str, Entry], version: int, epoch: str | None, told: int
    ) -> Update:
        old = self.snapshot
        if not touched:  # only other scopes' keys: a new version, nothing to copy
            self.snapshot = Snapshot(
                old._values, version, epoch, old.settings, self._digest_at(version)
            )
            return Update(self.snapshot)
        schema = self.schema
        values = dict(old._values)
        settings = old.settings
        typed = schema.model is not None and schema.typed_keys(touched)
        typed_raw = dict(self._typed_raw) if typed else self._typed_raw
        for key in touched:
            raw = self._effective(key)
            if schema.is_field(key):
                if raw is ABSENT:
                    typed_raw.pop(key, None)
                else:
                    typed_raw[key] = raw
            elif raw is ABSENT:
                values.pop(key, None)
            else:
                values[key] = raw
        if typed:
            settings = schema.build(typed_raw)
            self._typed_raw = typed_raw
            values.update(schema.flatten(settings))
            touched_keys: Iterable[str] = {**touched, **schema.defaults}.keys()
        else:
            touched_keys = touched.keys()
        changes = []
        last = next(reversed(touched.values()))  # a field a validator changed reports this
        for key in touched_keys:
            before, after = old._values.get(key, ABSENT), values.get(key, ABSENT)
            if differs(before, after):
                entry = touched.get(key, last)
                op = entry.op if key in touched else "set"
                changes.append(change(key, before, after, entry.scope, told, op))
        self.snapshot = Snapshot(values, version, epoch, settings, self._digest_at(version))
        return Update(self.snapshot, changes)

    def _digest_at(self, version: int) -> str | None:
        return self._digests.get(version) or None

    def _effective(self, key: str) -> Any:
        for scope in reversed(self.scopes):
            layer = self.layers[scope]
            if key in layer:
                return layer[key]
        return ABSENT

    # -- resync -------------------------------------------------------------------------------

    def resync(self, store: StoreSnapshot) -> Update:
        """Replace the layers with the store's, diff against the current snapshot, and swap.

        The store is the truth, even where that moves the version back within an epoch (a
        store restored from an older dump). Raw (unversioned) messages staged but not applied
        yet stay staged: they apply at the next commit, over the store's state.
        """
        epoch, version, stored = store.epoch, store.version, store.layers
        self._staged = [message for message in self._staged if message.version is None]
        self._staged_version, self._staged_epoch = version, epoch
        self._staged_digest = store.digest
        self._digests = {version: store.digest}
        self.store_sizes = {scope: store.sizes.get(scope, 0) for scope in self.store_scopes}
        old_layers = self.layers
        # Only the store's scopes come from the store: pins (testing.override) stay, and a
        # snapshot (or a cache file) naming the pinned layer cannot put values there.
        layers = {scope: dict(stored.get(scope, {})) for scope in self.store_scopes}
        layers[PINNED] = dict(old_layers[PINNED])
        for slot, value in list(self.overlay.items()):
            scope, key = slot
            if key in layers[scope]:
                del self.overlay[slot]
            else:
                layers[scope][key] = value
        self.written.reapply(layers, version, same_epoch=epoch == self.epoch or self.epoch is None)
        update = Update()
        for scope, skipped in store.skipped:
            if self.refused.first(scope, skipped.key, skipped.error.reason):
                update.rejected.append(
                    InvalidValueError(skipped.key, f"stored in scope {scope!r}: {skipped.error}")
                )
        merged: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for scope in self.scopes:
            for key, value in layers[scope].items():
                try:
                    self.schema.check_key(key)
                except InvalidValueError as error:
                    if self.refused.first(scope, key, value):
                        update.rejected.append(error)
                    continue
                merged[key] = value
                origin[key] = scope
        settings = self.snapshot.settings
        if self.schema.model is not None:
            settings = self._build_keeping_old(merged, origin, layers, old_layers, update)
            merged = {k: v for k, v in merged.items() if not self.schema.is_field(k)}
            merged.update(self.schema.flatten(settings))
        self.layers = layers
        update.changes = diff(
            self.snapshot._values, merged, origin, old_layers, self.scopes, version
        )
        digest = store.digest or None
        self.snapshot = update.snapshot = Snapshot(merged, version, epoch, settings, digest)
        return update

    def _build_keeping_old(
        self,
        merged: dict[str, Any],
        origin: dict[str, str],
        layers: dict[str, dict[str, Any]],
        old_layers: dict[str, dict[str, Any]],
        update: Update,
    ) -> Any:
        # A stored value the model rejects was rejected when it arrived too: keep what this
        # client had for it instead, so that a resync never undoes a rejection.
        typed_raw = {k: v for k, v in merged.items() if self.schema.is_field(k)}
        for _ in range(len(typed_raw) * len(self.scopes) + 1):
            try:
                settings = self.schema.build(typed_raw)
                self._typed_raw = typed_raw
                return settings
            except InvalidValueError as error:
                key = error.key
                scope = origin.get(key)
                if key not in typed_raw or scope is None:
                    update.rejected.append(error)
                    break
                if self.refused.first(scope, key, typed_raw[key]):
                    update.rejected.append(error)
                previous = old_layers.get(scope, {}).get(key, ABSENT)
                if previous is not ABSENT:
                    typed_raw[key] = layers[scope][key] = previous
                    continue
                # Nothing accepted here before: the next lower scope shows through, as it does
                # when such a value arrives on the channel (re-validated on the next turn).
                layers[scope].pop(key, None)
                lower = self.scopes[: self.scopes.index(scope)]
                below = next((s for s in reversed(lower) if key in layers[s]), None)
                if below is None:
                    del typed_raw[key]
                    origin.pop(key, None)
                else:
                    typed_raw[key], origin[key] = layers[below][key], below
        return self.snapshot.settings

    def pin(self, values: Mapping[str, Any], unset: Iterable[str] = ()) -> Update:
        """Pin ``values`` above every scope and drop the pins of ``unset`` (testing.override)."""
        entries = [Entry(key, value, PINNED) for key, value in values.items()]
        entries += [Entry(key, None, PINNED, "delete") for key in unset]
        return self._apply([Message(tuple(entries))]) if entries else Update()

    def stored(self) -> StoreSnapshot:
        """The store's layers as this client holds them, at its version (for last-known-good)."""
        layers = {scope: self.layers[scope] for scope in self.store_scopes}
        return StoreSnapshot(self.epoch, self.version, layers, self._staged_digest)

    def pinned(self) -> dict[str, Any]:
        return dict(self.layers[PINNED])
