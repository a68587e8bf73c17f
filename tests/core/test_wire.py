"""The wire format: the seed's format from any publisher, and every kind of bad input."""

from __future__ import annotations

import json

import pytest

from hotconfig import InvalidMessageError, RejectReason
from hotconfig._config.wire import (
    Entry,
    Limits,
    decode_value,
    encode_body,
    encode_message,
    envelope_version,
    parse,
)


def test_seed_format_parses_exactly_as_published() -> None:
    message = parse(b'{"key": "ai.model.default", "value": "gpt-4o", "scope": "global"}')
    assert message.entries == (Entry("ai.model.default", "gpt-4o", "global", "set"),)
    assert message.version is None
    assert message.epoch is None


def test_scope_defaults_to_global_and_unknown_fields_are_ignored() -> None:
    message = parse('{"key": "a", "value": [1, {"b": null}], "future": 1}')
    assert message.entries == (Entry("a", [1, {"b": None}], "global", "set"),)


def test_delete_batch_version_and_epoch() -> None:
    message = parse(
        json.dumps(
            {
                "version": 7,
                "epoch": "e1",
                "scope": "service:billing",
                "changes": [
                    {"key": "a", "value": 1},
                    {"key": "b", "op": "delete", "scope": "global"},
                ],
            }
        )
    )
    assert message.version == 7
    assert message.epoch == "e1"
    assert message.entries == (
        Entry("a", 1, "service:billing", "set"),
        Entry("b", None, "global", "delete"),
    )


def test_encode_round_trips_through_parse() -> None:
    entries = [Entry("a.b", {"x": [1, 2]}, "env:prod"), Entry("c", None, "global", "delete")]
    assert parse(encode_message(entries, version=3, epoch="e")).entries == tuple(entries)
    assert encode_body(entries[:1]).endswith("}")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b'{"key": "bad key!", "value": 1}', "bad_key"),
        (b'{"key": "", "value": 1}', "bad_key"),
        (b'{"key": 5, "value": 1}', "bad_key"),
        (b'{"key": [1], "value": 1}', "bad_key"),
        (b'{"key": "a", "value": 1, "scope": {"x": 1}}', "bad_scope"),
        (b' {"key": "a", "value": 1} trailing', "invalid_json"),
        (b'{"key": "' + b"k" * 257 + b'", "value": 1}', "bad_key"),
        (b'{"key": "a", "value": 1, "scope": "no spaces"}', "bad_scope"),
        (b'{"key": "a"}', "bad_field"),
        (b'{"key": "a", "value": 1, "op": "upsert"}', "bad_field"),
        (b'{"key": "a", "value": 1, "version": "7"}', "bad_field"),
        (b'{"key": "a", "value": 1, "version": true}', "bad_field"),
        (b'{"changes": []}', "bad_field"),
        (b'{"changes": [1]}', "not_object"),
        (b'{"key": "a", "value": "\xff\xfe"}', "not_utf8"),
        (b"[" * 100_000, "too_deep"),
        (b'{"key": "a", "value": ' + b"[" * 1500 + b"]" * 1500 + b"}", "too_deep"),
        (b'{"key": "a", "value": ' + b"[" * 65 + b"]" * 65 + b"}", "too_deep"),
        (b'{"key": "a", "value": ' + b'{"a":' * 65 + b"1" + b"}" * 65 + b"}", "too_deep"),
        (b'{"key": "a", "value": NaN}', "invalid_json"),
        (b'{"key": "a", "value": [1, -Infinity]}', "invalid_json"),
        (b'{"key": "a", "value": 1, "version": 1, "prev": 5}', "bad_field"),
        (b'{"key": "a", "value": 1, "version": 1, "ns": "h", "db": -1}', "bad_field"),
        (b'{"key": "a", "value": 1, "version": 1, "ns": "h", "db": "1"}', "bad_field"),
        (b'{"key": "a", "value": 1, "version": 1, "sizes": {"global": "1"}}', "bad_field"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        parse(data)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_oversize_is_rejected_before_decoding() -> None:
    data = json.dumps({"key": "a", "value": "x" * 2000}).encode()
    with pytest.raises(InvalidMessageError) as info:
        parse(data, Limits(max_message_bytes=1000))
    assert info.value.reason == "oversize"
    assert parse(data, Limits(max_message_bytes=4000)).entries[0].value == "x" * 2000


def test_nesting_within_the_limit_is_kept_whole() -> None:
    value: object = "leaf"
    for _ in range(64):
        value = [value]
    assert parse(json.dumps({"key": "a", "value": value})).entries[0].value == value
    with pytest.raises(InvalidMessageError) as info:
        parse(json.dumps({"key": "a", "value": value}), Limits(max_depth=10))
    assert info.value.reason == "too_deep"


def test_a_batch_over_the_entry_limit_is_rejected_whole() -> None:
    batch = {"changes": [{"key": f"k{i}", "value": i} for i in range(11)]}
    assert len(parse(json.dumps(batch)).entries) == 11
    with pytest.raises(InvalidMessageError) as info:
        parse(json.dumps(batch), Limits(max_batch=10))
    assert info.value.reason == "too_many_entries"


def test_the_store_header_fields_are_read() -> None:
    message = parse(
        '{"version":3,"epoch":"e","prev":"p2","digest":"d3","sizes":{"global":2},'
        '"key":"a","value":1}'
    )
    assert (message.version, message.prev, message.digest, message.sizes) == (
        3,
        "p2",
        "d3",
        {"global": 2},
    )


@pytest.mark.parametrize("raw", [b"1,2", b"[3", b"4]", b"", b"NaN", b" ", b"\xff", b"[" * 5000])
def test_a_stored_value_must_be_exactly_one_json_document(raw: bytes) -> None:
    with pytest.raises(InvalidMessageError):
        decode_value(raw)


def test_stored_values_decode_like_json() -> None:
    assert decode_value(b'{"a": [1, 2.5, null, true]}') == {"a": [1, 2.5, None, True]}
    assert decode_value(b' "padded" ') == "padded"


@pytest.mark.parametrize(
    "escaped",
    [r"a\ud800b", r"\udfff", r"x\uDBFFy", r"\ude00\ud83d"],  # halves alone, or in the wrong order
)
def test_a_lone_surrogate_escape_is_refused_as_text_no_utf8_holds(escaped: str) -> None:
    data = '{"key": "k", "value": "' + escaped + '"}'
    with pytest.raises(InvalidMessageError) as info:
        parse(data)
    assert info.value.reason is RejectReason.NOT_UTF8
    with pytest.raises(InvalidMessageError):
        parse('{"key": "k", "value": {"' + escaped + '": 1}}')  # in a key, too


def test_a_surrogate_pair_and_an_escaped_backslash_are_ordinary_text() -> None:
    [pair] = parse(r'{"key": "k", "value": "\ud83d\ude00"}').entries
    assert pair.value == "\U0001f600"
    [literal] = parse(r'{"key": "k", "value": "\\ud800"}').entries
    assert literal.value == "\\ud800"  # a backslash, then the letters: nothing to refuse


def test_the_envelope_names_the_version_of_a_store_message_it_cannot_read() -> None:
    # What the store's script writes first: enough to say which write a client refused.
    head = b'{"version":42,"ns":"hotconfig","epoch":"e","prev":"p","digest":"d",'
    assert envelope_version(head + b'"key":"k","value":"\xff"}', "hotconfig") == 42
    assert (
        envelope_version((head + b'"key":"k","value":' + b"[" * 5000).decode(), "hotconfig") == 42
    )
    assert envelope_version(b'{"version":7,"key":"k"}', "hotconfig") == 7  # no ns: a raw one
    assert envelope_version(head, "billing") is None  # another store's, on a shared channel
    on_db_1 = b'{"version":9,"ns":"hotconfig","db":1,"epoch":"e",'
    assert envelope_version(on_db_1, "hotconfig", 1) == 9
    assert envelope_version(on_db_1, "hotconfig") is None  # the same namespace, another database
    for other in (b'{"key":"k","version":7}', b"\xff\xfe", b"", b'{"version":-1,', b"[7]"):
        assert envelope_version(other, "hotconfig") is None
    assert envelope_version('{"version":1,"ns":"\ud800"', "hotconfig") == 1  # never raises
