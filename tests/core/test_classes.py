"""The bridge's channels (hotconfig.bridge._classes): the names a browser may ask for, which
delivery class a channel gets, and the values a class refuses."""

from __future__ import annotations

import pytest

from hotconfig.bridge._classes import (
    MAX_CHANNEL_BYTES,
    Delivery,
    Ephemeral,
    Replayable,
    Sequenced,
    check_channel,
    delivery_for,
)

SEQUENCED = Sequenced(idle_timeout=5)
EPHEMERAL = Ephemeral("widgetId")
REPLAYABLE = Replayable(maxlen=10)


def test_the_first_matching_pattern_wins_in_the_order_given() -> None:
    narrow_first: dict[str, Delivery] = {"ai:stream:vip-*": REPLAYABLE, "ai:stream:*": SEQUENCED}
    assert delivery_for(narrow_first, "ai:stream:vip-1") is REPLAYABLE
    assert delivery_for(narrow_first, "ai:stream:s-1") is SEQUENCED
    # The same patterns the other way round: the broad one shadows the narrow one.
    broad_first: dict[str, Delivery] = {"ai:stream:*": SEQUENCED, "ai:stream:vip-*": REPLAYABLE}
    assert delivery_for(broad_first, "ai:stream:vip-1") is SEQUENCED


def test_a_channel_no_pattern_matches_has_no_class() -> None:
    classes: dict[str, Delivery] = {"dashboard:refresh:*": EPHEMERAL}
    assert delivery_for(classes, "orders:eu") is None
    assert delivery_for({}, "dashboard:refresh:d1") is None


@pytest.mark.parametrize(
    ("channel", "matched"),
    [
        ("dashboard:refresh:d1", True),
        ("Dashboard:refresh:d1", False),  # case-sensitive, whatever the platform
        ("dashboard:refresh:", True),  # * matches nothing too
        ("dashboard:refresh", False),
        ("dashboard:refresh:a:b", True),  # * crosses ':'; it is not a path segment
    ],
)
def test_patterns_use_case_sensitive_fnmatch(channel: str, matched: bool) -> None:
    assert (delivery_for({"dashboard:refresh:*": EPHEMERAL}, channel) is EPHEMERAL) is matched


def test_fnmatch_sets_and_single_characters_select_channels() -> None:
    classes: dict[str, Delivery] = {"room:[ab]?": EPHEMERAL, "room:*": SEQUENCED}
    assert delivery_for(classes, "room:a1") is EPHEMERAL
    assert delivery_for(classes, "room:c1") is SEQUENCED
    assert delivery_for(classes, "room:a12") is SEQUENCED


def test_an_exact_name_is_a_pattern_that_matches_only_itself() -> None:
    classes: dict[str, Delivery] = {"orders:eu": REPLAYABLE}
    assert delivery_for(classes, "orders:eu") is REPLAYABLE
    assert delivery_for(classes, "orders:eu2") is None


def test_sequenced_defaults_name_the_fields_of_the_token_stream() -> None:
    assert Sequenced() == Sequenced(index="index", done="done", idle_timeout=30.0, first=0)
    assert Ephemeral().key == "widgetId"


@pytest.mark.parametrize("idle_timeout", [0, -1.0])
def test_sequenced_refuses_an_idle_timeout_that_is_not_positive(idle_timeout: float) -> None:
    with pytest.raises(ValueError, match="idle_timeout must be positive"):
        Sequenced(idle_timeout=idle_timeout)


def test_a_small_positive_idle_timeout_and_another_first_index_are_kept() -> None:
    sequenced = Sequenced(index="seq", done="end", idle_timeout=0.01, first=1)
    assert (sequenced.index, sequenced.done, sequenced.idle_timeout, sequenced.first) == (
        "seq",
        "end",
        0.01,
        1,
    )


def test_classes_are_frozen_values_usable_as_mapping_entries() -> None:
    with pytest.raises(AttributeError):
        SEQUENCED.idle_timeout = 1  # type: ignore[misc]
    assert Sequenced(idle_timeout=5) == SEQUENCED
    assert hash(Sequenced(idle_timeout=5)) == hash(SEQUENCED)


@pytest.mark.parametrize(
    "name",
    [
        "ai:stream:sess-abc",
        "dashboard:refresh:*",  # a pattern is a name too
        "canal:é:日本",
        "a b:{tag}",
        "x" * MAX_CHANNEL_BYTES,  # exactly at the limit
        "é" * (MAX_CHANNEL_BYTES // 2),  # two bytes each in UTF-8
    ],
)
def test_a_channel_name_a_browser_may_ask_for_is_kept_as_it_is(name: str) -> None:
    assert check_channel(name) == name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "a channel name is required"),
        ("chat:a\x00b", "may not hold control characters"),
        ("chat:a\rb", "may not hold control characters"),
        ("chat:a\nb", "may not hold control characters"),
        ("chat:\x1b[2J", "may not hold control characters"),  # a terminal's escape, into logs
        ("chat:\x7f", "may not hold control characters"),
        ("x" * (MAX_CHANNEL_BYTES + 1), "at most 1024 bytes in UTF-8"),
        ("é" * (MAX_CHANNEL_BYTES // 2 + 1), "at most 1024 bytes in UTF-8"),
        ("chat:\ud800", "must be UTF-8 text"),
    ],
)
def test_any_other_name_is_refused_with_why(name: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as refused:
        check_channel(name)
    assert len(str(refused.value)) < 300  # a long name is not echoed whole
