"""The snapshot readers hold: immutable, a Mapping, and quiet about values in its repr."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from hotconfig import Change, Snapshot


def test_snapshot_is_an_immutable_mapping() -> None:
    snapshot = Snapshot({"a": 1, "b": [2]}, 3, "e", None)
    assert isinstance(snapshot, Mapping)
    assert dict(snapshot) == {"a": 1, "b": [2]}
    assert snapshot == {"a": 1, "b": [2]}
    assert (len(snapshot), snapshot.get("missing", 0), "a" in snapshot) == (2, 0, True)
    with pytest.raises(TypeError):
        snapshot["a"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        snapshot.version = 4


def test_reprs_never_show_values_that_may_be_secret() -> None:
    snapshot = Snapshot({"db.password": "hunter2"}, 1, None, None)
    assert "hunter2" not in repr(snapshot)
    change = Change("db.password", "old-secret", "new-secret", "global", 1, "set")
    assert "secret" not in repr(change).replace("db.password", "")
    assert "'***'" in repr(change)
    plain = Change("limit", 1, 2, "global", 1, "set")
    assert "old=1, new=2" in repr(plain)
