"""Read-your-writes: a client takes its own acknowledged write at once (HotConfig.apply_write),
with or without a listener, and never over a newer value the listener brought."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hotconfig import Change, ConfigStore, Entry, HotConfig, Status
from hotconfig.testing.server import EmbeddedServer
from tests.recording import Recorder


@pytest.fixture
def unstarted(server: EmbeddedServer) -> Iterator[HotConfig[Any]]:
    """A client of ``server`` that never starts: no listener, as in a test run or a command."""
    config: HotConfig[Any] = HotConfig(server.url, health=False)
    yield config
    config.close()


def test_without_a_listener_the_writer_reads_its_write_and_its_receivers_run(
    unstarted: HotConfig[Any], store: ConfigStore
) -> None:
    changes = Recorder()
    unstarted.on_change("*")(changes)
    version = store.set("greeting", "Moin")
    assert unstarted.apply_write(version, [Entry("greeting", "Moin")]) is True
    assert unstarted.get("greeting") == "Moin"
    assert changes.calls == [Change("greeting", None, "Moin", "global", version, "set")]
    deleted = store.delete("greeting")
    assert unstarted.apply_write(deleted, [Entry("greeting", None, op="delete")]) is True
    assert "greeting" not in unstarted
    assert changes.calls[-1] == Change("greeting", "Moin", None, "global", deleted, "delete")
    # The version is the listener's to say: there is none here.
    assert (unstarted.version, unstarted.status) == (0, Status.STARTING)


def test_a_newer_value_the_listener_applied_is_never_overwritten_by_an_older_write(
    client: HotConfig[Any], store: ConfigStore
) -> None:
    older = store.set("greeting", "Hallo")
    newer = store.set("greeting", "Moin")
    assert client.wait_for_version(newer, timeout=5)
    changes = Recorder()
    client.on_change("*")(changes)
    assert client.apply_write(older, [Entry("greeting", "Hallo")]) is False
    assert client.get("greeting") == "Moin"
    assert changes.calls == []


def test_the_write_is_told_once_whether_the_writer_or_the_listener_takes_it_first(
    client: HotConfig[Any], store: ConfigStore
) -> None:
    changes = Recorder()
    client.on_change("*")(changes)
    for n in range(20):
        version = store.set("n", n)
        client.apply_write(version, [Entry("n", n)])
        assert client.get("n") == n
    assert client.wait_for_version(version, timeout=5)
    assert [change.new for change in changes.calls] == list(range(20))


def test_a_write_waiting_for_the_listener_survives_its_start(
    unstarted: HotConfig[Any], store: ConfigStore
) -> None:
    version = store.set_many({"a": 1, "b": 2})
    unstarted.apply_write(version, [Entry("a", 1), Entry("b", 2)])
    assert unstarted.start(timeout=5)
    assert (unstarted.get("a"), unstarted.get("b"), unstarted.version) == (1, 2, version)


def test_bad_arguments_are_refused_before_anything_is_applied(unstarted: HotConfig[Any]) -> None:
    with pytest.raises(ValueError, match="version must be the positive int"):
        unstarted.apply_write(0, [Entry("a", 1)])
    with pytest.raises(ValueError, match=r"entries must be hotconfig\.Entry"):
        unstarted.apply_write(1, [("a", 1)])  # type: ignore[list-item]
    assert "a" not in unstarted
