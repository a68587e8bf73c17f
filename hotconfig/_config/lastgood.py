"""The last-known-good file: what a client serves when it starts while Redis is unreachable."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from .._redis.keyspace import StoreSnapshot
from .wire import DEFAULT_LIMITS, decode_value

__all__ = ["LastKnownGood"]

log = logging.getLogger("hotconfig.lastgood")

_FORMAT = 2  # 2: the digest of the version saved
# The file nests each value three levels down (the file, its layers, a scope's keys): a value
# the wire would accept fits, anything deeper is not a file this library wrote.
_MAX_DEPTH = DEFAULT_LIMITS.max_depth + 3


class LastKnownGood:
    """A JSON file holding the store's layers at the last applied version.

    Written atomically (a temporary file renamed over the old one), so a crash mid-write leaves
    the previous file intact. Readers of the file are this library only; its format may change.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise ValueError(f"cache_path must be a file path (str or Path), got {path!r:.60}")
        self.path = Path(path)

    def load(self) -> StoreSnapshot | None:
        """The store's state as last saved, or None if the file is missing or unreadable (not
        JSON, not UTF-8, nested too deep, a number out of range: the wire's own limits)."""
        try:
            data = decode_value(self.path.read_bytes(), _MAX_DEPTH)
            if data.get("format") != _FORMAT:
                return None
            return StoreSnapshot(
                data["epoch"], int(data["version"]), dict(data["layers"]), str(data["digest"])
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable cache file %s: %s", self.path, exc)
            return None

    def save(self, stored: StoreSnapshot) -> None:
        """Write ``stored``; a failure is logged, never raised into the listener."""
        data = {
            "format": _FORMAT,
            "epoch": stored.epoch,
            "version": stored.version,
            "digest": stored.digest,
            "layers": stored.layers,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(data, handle, separators=(",", ":"))
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, TypeError, ValueError) as exc:
            log.warning("could not write the cache file %s: %s", self.path, exc)
