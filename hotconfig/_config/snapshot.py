"""The immutable view of the configuration that readers see."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

__all__ = ["Getter", "Snapshot"]


class Getter(Protocol):
    """The type of :attr:`hotconfig.HotConfig.get`: a snapshot's own ``dict.get``, positional
    only."""

    def __call__(self, key: str, default: Any = None, /) -> Any: ...


class Snapshot(Mapping[str, Any]):
    """A read-only mapping of effective values at one version, plus the settings built from it.

    A snapshot never changes after it is built: the listener builds a new one and swaps the
    reference, so holding one gives a consistent view across keys for as long as you keep it.
    """

    __slots__ = ("_values", "digest", "epoch", "settings", "version")

    _values: dict[str, Any]
    version: int
    epoch: str | None
    settings: Any
    digest: str | None
    """The store's rolling digest of its history at ``version`` (see docs/wire-format.md):
    two instances at one version with one digest hold the same writes. None when unknown (no
    store read yet, or only unversioned messages)."""

    def __init__(
        self,
        values: dict[str, Any],
        version: int,
        epoch: str | None,
        settings: Any,
        digest: str | None = None,
    ) -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "epoch", epoch)
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "digest", digest)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Snapshot):
            return self._values == other._values
        if isinstance(other, Mapping):
            return self._values == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # Values stay out of the repr: some of them are secrets, and reprs end up in logs.
        return f"<Snapshot version={self.version} keys={len(self._values)}>"
