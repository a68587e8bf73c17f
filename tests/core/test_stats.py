"""The listener's counters and the read-only view a client hands out as ``config.stats``."""

from __future__ import annotations

import dataclasses

import pytest

from hotconfig import Stats
from hotconfig._config.stats import Counters


def test_a_new_client_has_counted_nothing() -> None:
    assert Counters().view() == Stats()
    assert Stats().last_rejection is None
    assert Stats().server_warning is None
    assert Stats().connection_id is None  # no connection yet: nothing for the fleet to look up


def test_the_counters_are_exactly_the_fields_of_the_view() -> None:
    assert Counters.__slots__ == tuple(field.name for field in dataclasses.fields(Stats))
    counters = Counters()
    with pytest.raises(AttributeError):
        counters.recieved = 1  # type: ignore[attr-defined]  # a typo cannot start a new counter


def test_a_view_is_a_copy_that_later_counts_do_not_change() -> None:
    counters = Counters()
    counters.received = 3
    counters.last_error = "connection refused"
    before = counters.view()
    counters.received += 1
    counters.last_error = None
    assert (before.received, before.last_error) == (3, "connection refused")
    assert (counters.view().received, counters.view().last_error) == (4, None)


def test_receiver_failures_and_coalesced_changes_are_counted_through_the_tally() -> None:
    counters = Counters()
    counters.receiver_failed()
    counters.receiver_failed()
    counters.change_coalesced()
    stats = counters.view()
    assert (stats.receiver_errors, stats.coalesced) == (2, 1)


def test_a_view_cannot_be_changed_but_compares_and_hashes_by_value() -> None:
    counters = Counters()
    counters.applied = 2
    stats = counters.view()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.applied = 3  # type: ignore[misc]
    assert stats == counters.view()
    assert len({stats, counters.view()}) == 1
    assert dataclasses.replace(stats, applied=3) != stats
