"""The writes a client applied ahead of its listener, on their own. No network needed."""

from __future__ import annotations

from typing import Any

import pytest

from hotconfig import Entry
from hotconfig._config.written import Written, checked

SCOPES = ("global", "service:x")


def test_a_write_the_client_has_applied_already_takes_nothing() -> None:
    written = Written()
    assert written.fresh(5, [Entry("a", 1)], SCOPES, applied=5) == []
    assert written.fresh(4, [Entry("a", 1)], SCOPES, applied=5) == []
    assert written.fresh(6, [Entry("a", 1)], SCOPES, applied=5) == [Entry("a", 1)]


def test_only_followed_scopes_and_the_last_entry_of_a_key_are_taken() -> None:
    entries = [Entry("a", 1), Entry("b", 2, "other"), Entry("a", 3), Entry("a", 9, "service:x")]
    taken = Written().fresh(2, entries, SCOPES, applied=0)
    assert taken == [Entry("a", 3), Entry("a", 9, "service:x")]


def test_a_later_write_of_the_key_is_not_undone_by_an_earlier_one() -> None:
    written = Written()
    written.record(7, [Entry("a", "seven")])
    assert written.fresh(6, [Entry("a", "six"), Entry("b", 1)], SCOPES, applied=0) == [
        Entry("b", 1)
    ]
    assert written.shadows("global", "a", 6)
    assert not written.shadows("global", "a", 7)  # the listener's copy of the write itself
    assert not written.shadows("service:x", "a", 6)


def test_writes_are_forgotten_once_the_listener_reaches_them() -> None:
    written = Written()
    written.record(3, [Entry("a", 1)])
    written.record(5, [Entry("b", 2)])
    written.settle(4)
    assert not written.shadows("global", "a", 2)
    assert written.shadows("global", "b", 4)
    written.settle(5)
    assert not written


def test_a_snapshot_older_than_a_write_keeps_it_and_one_of_another_epoch_forgets_it() -> None:
    written = Written()
    written.record(3, [Entry("a", "mine")])
    written.record(4, [Entry("gone", None, op="delete")])
    layers: dict[str, dict[str, Any]] = {"global": {"a": "old", "gone": 1}, "service:x": {}}
    written.reapply(layers, 2, same_epoch=True)
    assert layers["global"] == {"a": "mine"}
    layers = {"global": {"a": "old"}, "service:x": {}}
    written.reapply(layers, 3, same_epoch=True)  # the snapshot holds write 3: it is the store's
    assert layers["global"] == {"a": "old"}
    assert not written.shadows("global", "a", 2)
    assert written.shadows("global", "gone", 3)
    written.reapply(layers, 1, same_epoch=False)
    assert not written


@pytest.mark.parametrize(
    ("version", "entries", "named"),
    [
        (0, [Entry("a", 1)], "version"),
        (True, [Entry("a", 1)], "version"),
        ("3", [Entry("a", 1)], "version"),
        (3, [("a", 1)], "entries"),
        (3, [Entry("a b", 1)], "entries: key"),
        (3, [Entry("a", 1, "no scope")], "entries: scope"),
        (3, [Entry("a", 1, "global", "drop")], "entries: op"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_a_value_error_naming_the_argument(
    version: Any, entries: list[Any], named: str
) -> None:
    with pytest.raises(ValueError, match=f"^{named}"):
        checked(version, entries)


def test_good_arguments_come_back_as_a_tuple() -> None:
    assert checked(3, iter([Entry("a", 1)])) == (3, (Entry("a", 1),))
