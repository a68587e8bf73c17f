"""Stored values the model refused: each reported once, in bounded memory."""

from __future__ import annotations

from hotconfig._config.refused import Refused


def test_each_refused_value_is_reported_once_per_scope_and_key() -> None:
    refused = Refused()
    assert refused.first("global", "limit", "ten")
    assert not refused.first("global", "limit", "ten")
    assert refused.first("service:x", "limit", "ten")
    assert refused.first("global", "limit", "eleven")  # another bad value is news
    assert refused.first("global", "limit", "ten")  # and so is the first one again


def test_memory_is_bounded_the_oldest_forgotten_first() -> None:
    refused = Refused(limit=3)
    for key in "abcd":
        assert refused.first("global", key, 0)
    assert len(refused) == 3
    assert refused.first("global", "a", 0)  # forgotten: reported again
    assert not refused.first("global", "d", 0)
