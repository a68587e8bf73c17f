"""The one JSON reader under the input limits: every violation is an InvalidMessageError with its
reason, never a RecursionError, an OverflowError or a string no UTF-8 can hold."""

from __future__ import annotations

import pytest

from hotconfig import InvalidMessageError
from hotconfig._config.limits import Limits, check_depth, decode_value, decode_within, load_text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[" * 100_000, "too_deep"),
        (b"NaN", "invalid_json"),
        (b"[1e999]", "invalid_json"),
        (b'"a\\ud800b"', "not_utf8"),
        (b'{"\\udfff": 1}', "not_utf8"),
        (b"\xff", "not_utf8"),
        (b"1 2", "invalid_json"),
    ],
)
def test_what_no_client_can_hold_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        decode_value(data)
    assert info.value.reason == reason


def test_a_surrogate_pair_escape_is_one_character_and_accepted() -> None:
    assert load_text(b'"\\ud83d\\ude00"') == "\U0001f600"


def test_what_the_fast_parser_refuses_is_read_by_the_standard_library() -> None:
    # Nesting deeper than pydantic-core recurses (about 200 levels) is still read, for a
    # client whose Limits allow it; the depth check then decides.
    deep = b"[" * 300 + b"]" * 300
    check_depth(load_text(deep), 300)  # raises nothing
    with pytest.raises(InvalidMessageError, match="deeper than 64"):
        decode_value(deep)


def test_depth_and_size_are_limited_together() -> None:
    limits = Limits(max_message_bytes=64, max_depth=2)
    assert decode_within(b"[[1]]", limits) == [[1]]
    with pytest.raises(InvalidMessageError, match="nested deeper than 2") as deep:
        decode_within(b"[[[1]]]", limits)
    assert deep.value.reason == "too_deep"
    with pytest.raises(InvalidMessageError) as big:
        decode_within(b'"' + b"x" * 80 + b'"', limits)
    assert big.value.reason == "oversize"
    assert decode_value(b'{"a": [1, {"b": 2}]}', 3) == {"a": [1, {"b": 2}]}
    check_depth("a scalar", 0)  # a scalar nests nothing
