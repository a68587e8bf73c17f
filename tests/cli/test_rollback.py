"""What ``hotconfig rollback VERSION`` writes (hotconfig.cli.rollback): each key changed since
VERSION as it was then, worked out from the store's history, newest first."""

from __future__ import annotations

import pytest

from hotconfig import ConfigStore
from hotconfig._config.wire import Entry
from hotconfig.cli.rollback import rollback_entries
from hotconfig.store import HistoryEntry

EPOCH = "e1"


def history(*writes: tuple[int, list[Entry]], epoch: str = EPOCH) -> list[HistoryEntry]:
    """The history of ``writes`` (oldest first, as written), newest first as the store gives it."""
    entries = [HistoryEntry(v, epoch, tuple(es), f"{v}-0") for v, es in writes]
    return entries[::-1]


def set_(key: str, value: object, scope: str = "global") -> Entry:
    return Entry(key, value, scope, "set")


def delete(key: str, scope: str = "global") -> Entry:
    return Entry(key, None, scope, "delete")


def test_keys_changed_later_get_their_value_at_the_version_back() -> None:
    writes = history(
        (1, [set_("model", "a"), set_("limit", 1)]),
        (2, [set_("model", "b")]),
        (3, [set_("model", "c"), set_("limit", 2)]),
    )
    assert rollback_entries(writes, 1, EPOCH) == [set_("model", "a"), set_("limit", 1)]
    assert rollback_entries(writes, 2, EPOCH) == [set_("model", "b"), set_("limit", 1)]


def test_a_key_first_written_later_is_deleted_when_the_history_is_complete() -> None:
    writes = history((1, [set_("a", 1)]), (2, [set_("added", True)]))
    assert rollback_entries(writes, 1, EPOCH) == [delete("added")]


def test_a_key_deleted_by_then_is_deleted_again() -> None:
    writes = history((1, [set_("a", 1)]), (2, [delete("a")]), (3, [set_("a", 9)]))
    assert rollback_entries(writes, 2, EPOCH) == [delete("a")]
    assert rollback_entries(writes, 1, EPOCH) == [set_("a", 1)]


def test_the_same_key_in_two_scopes_is_restored_in_each() -> None:
    writes = history(
        (1, [set_("limit", 1), set_("limit", 10, "env:prod")]),
        (2, [set_("limit", 20, "env:prod")]),
        (3, [set_("limit", 2)]),
    )
    assert rollback_entries(writes, 1, EPOCH) == [
        set_("limit", 10, "env:prod"),
        set_("limit", 1),
    ]


def test_restored_entries_come_in_the_order_of_each_key_s_first_change() -> None:
    writes = history(
        (1, [set_("a", 1), set_("b", 1), set_("c", 1)]),
        (2, [set_("c", 2)]),
        (3, [set_("a", 2), set_("c", 3)]),
        (4, [set_("b", 2)]),
    )
    assert [e.key for e in rollback_entries(writes, 1, EPOCH)] == ["c", "a", "b"]


def test_nothing_changed_after_the_latest_version() -> None:
    writes = history((1, [set_("a", 1)]), (2, [set_("a", 2)]))
    assert rollback_entries(writes, 2, EPOCH) == []


@pytest.mark.parametrize("version", [0, -1, 3])
def test_a_version_outside_the_history_is_refused(version: int) -> None:
    writes = history((1, [set_("a", 1)]), (2, [set_("a", 2)]))
    with pytest.raises(ValueError, match="between 1 and the store's 2"):
        rollback_entries(writes, version, EPOCH)


def test_a_trimmed_history_cannot_say_a_new_key_did_not_exist() -> None:
    writes = history((5, [set_("a", 1)]), (6, [set_("added", True)]))  # 1 to 4 trimmed
    with pytest.raises(ValueError, match="no longer reaches back to what 'added' in 'global'"):
        rollback_entries(writes, 5, EPOCH)


def test_a_trimmed_history_still_restores_keys_it_saw_before_the_version() -> None:
    writes = history((5, [set_("a", 1)]), (6, [set_("a", 2)]), (7, [delete("a")]))
    assert rollback_entries(writes, 5, EPOCH) == [set_("a", 1)]


def test_only_the_writes_of_the_store_s_current_epoch_count() -> None:
    # A wipe starts a new epoch with versions from 1 again; the old lifetime's writes stay in
    # the stream but say nothing about the new one.
    old = history((1, [set_("a", "old")]), (2, [set_("b", "old")]), epoch="e0")
    new = history((1, [set_("a", 1)]), (2, [set_("a", 2), set_("c", 1)]))
    assert rollback_entries(new + old, 1, EPOCH) == [set_("a", 1), delete("c")]
    with pytest.raises(ValueError, match="store's 0"):
        rollback_entries(old, 1, EPOCH)


def test_a_real_store_s_history_rolls_back_to_what_it_held(store: ConfigStore) -> None:
    store.set_many({"model": "a", "flags": {"x": [1, 2]}})
    store.set("limit", 5, scope="service:billing")
    back_to = store.version
    store.set("model", "b")
    store.delete("flags")
    store.set("limit", 6, scope="service:billing")
    store.set("new", True)
    entries = rollback_entries(store.history(100), back_to, store.epoch)
    store.apply(entries)
    assert store.get_all() == {"model": "a", "flags": {"x": [1, 2]}}
    assert store.get_all("service:billing") == {"limit": 5}
