"""The apply step on its own: ordering by version, batches, resync diffs. No network needed."""

from __future__ import annotations

from pydantic import BaseModel

from hotconfig._config.schema import Schema
from hotconfig._config.state import ConfigState, Staged
from hotconfig._config.wire import Entry, Message
from hotconfig._redis.keyspace import StoreSnapshot


class Settings(BaseModel):
    limit: int = 10
    name: str = "a"


def state() -> ConfigState:
    return ConfigState(Schema(Settings), ["global", "service:x"])


def versioned(version: int, key: str, value: object, epoch: str = "e1") -> Message:
    # Digests as the store chains them: each message names the one before it.
    return Message((Entry(key, value),), version, epoch, f"d{version - 1}", f"d{version}")


def test_versions_apply_in_order_and_duplicates_are_dropped() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 3, digest="d3", layers={"global": {"limit": 1}}))
    assert s.stage(versioned(3, "limit", 99)) is Staged.DUPLICATE  # already applied
    assert s.stage(versioned(4, "limit", 4)) is Staged.QUEUED
    assert s.stage(versioned(4, "limit", 44)) is Staged.DUPLICATE  # of a staged one
    assert s.stage(versioned(5, "name", "b")) is Staged.QUEUED
    update = s.commit()
    assert update.applied == 2
    assert s.version == 5
    assert s.snapshot["limit"] == 4
    assert [(c.key, c.new, c.version) for c in update.changes] == [
        ("limit", 4, 5),
        ("name", "b", 5),
    ]


def test_a_gap_or_a_new_epoch_asks_for_a_resync() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 3, digest="d3", layers={}))
    assert s.stage(versioned(5, "limit", 5)) is Staged.GAP
    assert s.stage(versioned(4, "limit", 5, epoch="e2")) is Staged.GAP
    assert s.commit().snapshot is None
    assert s.version == 3


def test_the_first_write_of_a_new_store_is_adopted_without_resync() -> None:
    s = state()
    s.resync(StoreSnapshot(None, 0, digest="d0", layers={}))
    assert s.stage(versioned(1, "limit", 2, epoch="fresh")) is Staged.QUEUED
    s.commit()
    assert (s.epoch, s.version, s.snapshot["limit"]) == ("fresh", 1, 2)


def test_resync_signals_only_what_really_changed() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 1, digest="d1", layers={"global": {"limit": 1, "a": 1, "b": 2}}))
    update = s.resync(
        StoreSnapshot(
            "e1",
            5,
            digest="d5",
            layers={"global": {"limit": 1, "a": 1, "c": 3}, "service:x": {"a": 9}},
        )
    )
    assert sorted((c.key, c.old, c.new, c.op) for c in update.changes) == [
        ("a", 1, 9, "set"),
        ("b", 2, None, "delete"),
        ("c", None, 3, "set"),
    ]


def test_raw_values_survive_a_resync_unless_the_store_holds_the_key() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 1, digest="d1", layers={"global": {"kept": 1}}))
    s.stage(Message((Entry("raw.only", "x"), Entry("kept", "raw"))))
    s.commit()
    s.resync(StoreSnapshot("e1", 2, digest="d2", layers={"global": {"kept": 2}}))
    assert s.snapshot["raw.only"] == "x"
    assert s.snapshot["kept"] == 2


def test_a_resync_keeps_the_value_a_rejection_kept() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 1, digest="d1", layers={"global": {"limit": 5}}))
    s.stage(versioned(2, "limit", "bad"))
    update = s.commit()
    assert update.rejected
    assert s.version == 2
    assert s.snapshot["limit"] == 5
    update = s.resync(StoreSnapshot("e1", 2, digest="d2", layers={"global": {"limit": "bad"}}))
    assert s.snapshot["limit"] == 5
    assert update.changes == []
    assert update.rejected == []  # reported when it arrived; not again at every resync


def test_a_rejected_higher_scope_value_at_resync_reveals_the_lower_scope() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 1, digest="d1", layers={"global": {"limit": 5}}))
    update = s.resync(
        StoreSnapshot(
            "e1", 2, digest="d2", layers={"global": {"limit": 5}, "service:x": {"limit": "abc"}}
        )
    )
    assert s.snapshot["limit"] == 5
    assert update.changes == []
    assert [e.key for e in update.rejected] == ["limit"]
    update = s.resync(
        StoreSnapshot(
            "e1", 3, digest="d3", layers={"global": {"limit": 6}, "service:x": {"limit": "abc"}}
        )
    )
    assert s.snapshot["limit"] == 6
    assert update.rejected == []


def test_one_bad_message_in_a_drained_group_leaves_the_others_applied() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 0, digest="d0", layers={}))
    for version, value in [(1, 1), (2, "bad"), (3, 3)]:
        assert s.stage(versioned(version, "limit", value)) is Staged.QUEUED
    update = s.commit()
    assert s.version == 3
    assert s.snapshot["limit"] == 3
    assert len(update.rejected) == 1
    assert [c.new for c in update.changes] == [1, 3]


def test_a_validator_raising_a_non_validation_error_is_a_rejection() -> None:
    from pydantic import field_validator

    class Picky(BaseModel):
        n: int = 0

        @field_validator("n")
        @classmethod
        def not_thirteen(cls, value: int) -> int:
            if value == 13:
                raise TypeError("unlucky")
            return value

    s = ConfigState(Schema(Picky), ["global"])
    s.resync(StoreSnapshot("e1", 0, digest="d0", layers={}))
    assert s.stage(versioned(1, "n", 13)) is Staged.QUEUED
    update = s.commit()
    assert len(update.rejected) == 1
    assert "TypeError: unlucky" in str(update.rejected[0])
    assert (s.version, s.snapshot["n"]) == (1, 0)


def test_a_default_that_fails_validation_is_refused_at_construction() -> None:
    import pytest

    class Broken(BaseModel):
        timeout: int = None  # type: ignore[assignment]

    with pytest.raises(TypeError, match="default of 'timeout'"):
        Schema(Broken)


def test_rejections_never_show_secret_values() -> None:
    from pydantic import Field, SecretStr

    class Secrets(BaseModel):
        api_token: str = Field(default="x" * 20, min_length=20)
        dsn: SecretStr = SecretStr("postgres://")

    s = ConfigState(Schema(Secrets), ["global"])
    s.stage(Message((Entry("api_token", "hunter2-short"),)))
    s.stage(Message((Entry("dsn", 123456789),)))
    update = s.commit()
    text = " ".join(str(error) for error in update.rejected)
    assert len(update.rejected) == 2
    assert "hunter2" not in text
    assert "123456789" not in text


def test_a_write_applied_ahead_of_the_listener_moves_the_key_not_the_version() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 1, digest="d1", layers={"global": {"limit": 1}}))
    update = s.apply_write(3, [Entry("limit", 3)])
    assert (s.version, s.snapshot["limit"], update.applied) == (1, 3, 1)
    assert [(c.key, c.old, c.new, c.version) for c in update.changes] == [("limit", 1, 3, 3)]
    # The listener's older message does not undo it; its copy of the write changes nothing.
    assert s.stage(versioned(2, "limit", 2)) is Staged.QUEUED
    assert s.commit().changes == []
    assert (s.version, s.snapshot["limit"]) == (2, 3)
    assert s.stage(versioned(3, "limit", 3)) is Staged.QUEUED
    assert s.commit().changes == []
    # Past the write, the listener's values are the truth again.
    assert s.stage(versioned(4, "limit", 4)) is Staged.QUEUED
    s.commit()
    assert (s.version, s.snapshot["limit"]) == (4, 4)


def test_a_write_the_listener_has_passed_already_changes_nothing() -> None:
    s = state()
    s.resync(StoreSnapshot("e1", 5, digest="d5", layers={"global": {"limit": 5}}))
    update = s.apply_write(4, [Entry("limit", 4)])
    assert (update.snapshot, update.applied, s.snapshot["limit"]) == (None, 0, 5)


def test_a_snapshot_older_than_the_write_keeps_it_a_newer_one_replaces_it() -> None:
    s = state()
    s.apply_write(2, [Entry("limit", 2), Entry("name", None, op="delete")])
    assert (s.version, s.snapshot["limit"]) == (0, 2)
    update = s.resync(StoreSnapshot("e1", 1, digest="d1", layers={"global": {"limit": 1}}))
    assert (s.snapshot["limit"], update.changes) == (2, [])
    s.resync(StoreSnapshot("e1", 2, digest="d2", layers={"global": {"limit": 7}}))
    assert s.snapshot["limit"] == 7  # the store at the write's version is the truth


def test_a_write_the_model_refuses_is_reported_and_not_applied() -> None:
    s = state()
    update = s.apply_write(1, [Entry("limit", "ten")])
    assert (update.snapshot, update.applied, s.snapshot["limit"]) == (None, 0, 10)
    assert [(e.key, e.version) for e in update.rejected] == [("limit", 1)]
