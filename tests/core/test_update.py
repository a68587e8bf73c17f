"""How a change of an effective value is told: what counts as a change, and what it says."""

from __future__ import annotations

from typing import Any

import pytest

from hotconfig import Change
from hotconfig._config.update import ABSENT, Update, change, diff, differs


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (1, True),  # 1 == True in Python, but a reader of a flag sees another type
        (1, 1.0),
        (0, False),
        ("1", 1),
        (None, ABSENT),  # a key set to null, then deleted
        ([1], (1,)),
        (1, 2),
        ({"a": 1}, {"a": 2}),
    ],
)
def test_a_change_of_type_or_of_value_is_a_change(before: Any, after: Any) -> None:
    assert differs(before, after)
    assert differs(after, before)


@pytest.mark.parametrize(
    ("before", "after"),
    [(1, 1), ("x", "x"), ({"a": [1, 2]}, {"a": [1, 2]}), (None, None), (ABSENT, ABSENT)],
)
def test_an_equal_value_of_the_same_type_is_no_change(before: Any, after: Any) -> None:
    assert not differs(before, after)


def test_a_change_tells_absent_as_none_and_a_removal_as_a_delete() -> None:
    assert change("k", ABSENT, 5, "global", 3, "set") == Change("k", None, 5, "global", 3, "set")
    assert change("k", 5, ABSENT, "env:prod", 4, "set") == Change(
        "k", 5, None, "env:prod", 4, "delete"
    )
    # A key set to null is a set, told apart from a delete by op alone.
    assert change("k", 5, None, "global", 5, "set").op == "set"


def test_a_resync_diff_sets_changed_keys_and_deletes_gone_ones_from_the_scope_that_held_them() -> (
    None
):
    scopes = ("global", "env:prod", "<pinned>")
    old_layers: dict[str, dict[str, Any]] = {
        "global": {"same": 1, "retyped": 1, "gone": "g", "gone.both": 1},
        "env:prod": {"gone.both": 2, "moved": "p"},
        "<pinned>": {},
    }
    old = {"same": 1, "retyped": 1, "gone": "g", "gone.both": 2, "moved": "p"}
    values = {"same": 1, "retyped": True, "moved": "g", "new": [1]}
    origin = {"same": "global", "retyped": "global", "moved": "global", "new": "env:prod"}
    changes = diff(old, values, origin, old_layers, scopes, 9)
    assert sorted(changes, key=lambda c: c.key) == [
        Change("gone", "g", None, "global", 9, "delete"),
        Change("gone.both", 2, None, "env:prod", 9, "delete"),  # the highest scope that held it
        Change("moved", "p", "g", "global", 9, "set"),
        Change("new", None, [1], "env:prod", 9, "set"),
        Change("retyped", 1, True, "global", 9, "set"),
    ]


def test_a_diff_of_a_key_whose_origin_is_unknown_names_global() -> None:
    changes = diff({"a": 1}, {"a": 2, "b": 3}, {}, {"global": {}}, ("global",), 1)
    assert {c.key: c.scope for c in changes} == {"a": "global", "b": "global"}
    gone = diff({"a": 1}, {}, {}, {"global": {}}, ("global",), 2)
    assert gone == [Change("a", 1, None, "global", 2, "delete")]


def test_an_empty_update_has_nothing_to_swap_or_tell_and_updates_share_nothing() -> None:
    first, second = Update(), Update()
    assert (first.snapshot, first.changes, first.rejected, first.applied) == (None, [], [], 0)
    first.changes.append(Change("k", None, 1, "global", 1, "set"))
    assert second.changes == []
