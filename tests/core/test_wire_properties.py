"""Hostile input, property-based: the parser and the apply step refuse or apply, never escape.

Every property runs under the profile tests/hostile.py selects: bounded in ``make test``, long in
``make fuzz``. No network: the listener's parse → stage → commit path and the resync from a
store snapshot are driven directly, as the listener drives them.
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from pydantic import BaseModel, ConfigDict

from hotconfig import InvalidMessageError, InvalidValueError
from hotconfig._config.schema import Schema
from hotconfig._config.state import ConfigState, Staged, Update
from hotconfig._config.wire import (
    DEFAULT_LIMITS,
    Entry,
    Limits,
    Message,
    decode_value,
    parse,
    validate_key,
)
from hotconfig._redis.keyspace import StoreSnapshot
from tests.hostile import (
    GUARD,
    LIMITS,
    PROFILE,
    hostile_payloads,
    json_values,
    names,
    values,
)

SCOPES = ("global", "service:x")
REASONS = {"oversize", "not_utf8", "invalid_json", "too_deep", "not_object", "bad_field"} | {
    "bad_key",
    "bad_scope",
    "too_many_entries",
}


class Settings(BaseModel):
    limit: int = 10
    name: str = "a"
    ratio: float = 0.5
    tags: list[str] = []


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = 10
    guard: int = 0


def _depth(value: Any) -> int:
    level, depth = [value], 0
    while True:
        nested = [
            child
            for item in level
            if type(item) in (dict, list)
            for child in (item.values() if type(item) is dict else item)
        ]
        if not any(type(item) in (dict, list) for item in level):
            return depth
        depth += 1
        level = nested


def _event(name: str) -> None:
    if currently_in_test_context():  # `--hypothesis-show-statistics` shows what was reached
        event(name)


def _parsed(payload: bytes | str, limits: Limits = LIMITS) -> Message | None:
    """What the listener does with a payload: a Message, or a counted rejection (None)."""
    try:
        message = parse(payload, limits)
    except InvalidMessageError as exc:
        refused = exc
    else:
        _event("parsed: versioned" if message.version is not None else "parsed: raw")
        return message
    _event(refused.reason)
    assert refused.reason in REASONS, refused
    return None


@PROFILE
@given(hostile_payloads())
def test_parse_returns_a_message_or_refuses_with_a_reason(payload: bytes | str) -> None:
    message = _parsed(payload)
    if message is None:
        return
    assert len(payload) <= LIMITS.max_message_bytes
    assert message.version is None or (type(message.version) is int and message.version >= 0)
    assert message.reload or 1 <= len(message.entries) <= LIMITS.max_batch
    for entry in message.entries:
        assert validate_key(entry.key) == entry.key
        assert entry.op in ("set", "delete")
        assert entry.op == "set" or entry.value is None
        # Each value is at most max_depth containers deep, the entry itself one more.
        assert _depth(entry.value) <= LIMITS.max_depth + 1


@PROFILE
@given(st.one_of(hostile_payloads(), st.binary(max_size=64)))
def test_decode_value_returns_one_document_or_refuses(data: bytes | str) -> None:
    try:
        value = decode_value(data, max_depth=LIMITS.max_depth)
    except InvalidMessageError:
        return
    assert _depth(value) <= LIMITS.max_depth + 1


@PROFILE
@given(json_values)
def test_a_value_published_as_json_arrives_unchanged(value: Any) -> None:
    text = json.dumps({"key": "a", "value": value}, ensure_ascii=False)
    try:
        message = parse(text.encode("utf-8", "surrogatepass"), DEFAULT_LIMITS)
    except InvalidMessageError as exc:
        # Only what JSON can say but UTF-8 cannot carry: a lone surrogate.
        refused = exc.reason
    else:
        assert message.entries == (Entry("a", value),)
        return
    assert refused == "not_utf8"


def _good_state(model: type[BaseModel] | None) -> ConfigState:
    state = ConfigState(Schema(model), SCOPES)
    good = {GUARD: "good"} if model is None else {"guard": 7}
    update = state.resync(StoreSnapshot("e1", 5, {"global": good}, digest="d5"))
    assert not update.rejected
    return state


def _feed(state: ConfigState, payloads: list[bytes | str], limits: Limits = LIMITS) -> Update:
    """Parse, stage and commit as the listener does: one drained batch, one swap."""
    for payload in payloads:
        message = _parsed(payload, limits)
        if message is not None:
            assert isinstance(state.stage(message), Staged)
    return state.commit()


def _check_served(state: ConfigState, model: type[BaseModel] | None) -> None:
    snapshot = state.snapshot
    if model is None:
        assert snapshot[GUARD] == "good"
        return
    assert snapshot["guard"] == 7
    settings = snapshot.settings
    assert isinstance(settings, model)
    # Whatever was accepted is what the model would build from the served values again.
    assert model.model_validate(settings.model_dump()) == settings
    for key, value in model.model_validate(settings.model_dump()).model_dump().items():
        assert snapshot[key] == value


@PROFILE
@given(st.lists(hostile_payloads(), max_size=12), st.sampled_from([None, Settings, Strict]))
def test_hostile_messages_never_escape_apply_and_the_good_value_stays(
    payloads: list[bytes | str], model: type[BaseModel] | None
) -> None:
    state = _good_state(model)
    version = state.version
    update = _feed(state, payloads)
    assert all(isinstance(error, InvalidValueError) for error in update.rejected)
    _check_served(state, model)
    assert state.version >= version  # the channel never moves a client back
    # A real write that follows still applies.
    state.stage(Message((Entry("limit", 42),), 6, "e1", "d5", "d6"))
    state.commit()
    assert (state.version, state.snapshot["limit"]) == (6, 42)


# The store only ever hands over the scopes a client follows (read_snapshot asks for them).
_layers = st.dictionaries(
    st.sampled_from(SCOPES),
    st.dictionaries(names | st.sampled_from(["limit", "name", "tags"]), values, max_size=6),
    max_size=3,
)


@PROFILE
@given(_layers, st.sampled_from([None, Settings, Strict]), st.integers(0, 10**6))
def test_a_hostile_store_snapshot_never_escapes_resync(
    layers: dict[str, dict[str, Any]], model: type[BaseModel] | None, version: int
) -> None:
    state = _good_state(model)
    guard = (GUARD, "good") if model is None else ("guard", 7)
    layers.setdefault("global", {})[guard[0]] = guard[1]
    update = state.resync(StoreSnapshot("e2", version, layers, digest="dx"))
    assert all(isinstance(error, InvalidValueError) for error in update.rejected)
    assert (state.epoch, state.version) == ("e2", version)
    _check_served(state, model)
    if model is None:  # the store is the truth: exactly its values, the higher scope winning
        assert dict(state.snapshot) == {**layers["global"], **layers.get("service:x", {})}


def test_batches_at_the_entry_limit_apply_and_one_past_it_is_refused() -> None:
    entries = [{"key": f"k{i}", "value": i} for i in range(DEFAULT_LIMITS.max_batch + 1)]
    at_limit = json.dumps({"changes": entries[:-1]})
    state = _good_state(None)
    _feed(state, [at_limit, json.dumps({"changes": entries})], DEFAULT_LIMITS)
    assert len(state.snapshot) == DEFAULT_LIMITS.max_batch + 1  # the guard, and the batch
    with pytest.raises(InvalidMessageError, match="too_many_entries"):
        parse(json.dumps({"changes": entries}))


def test_a_float_that_overflows_is_refused_like_infinity() -> None:
    with pytest.raises(InvalidMessageError):
        parse('{"key": "a", "value": 1e999}')


def test_memory_stays_bounded_under_a_stream_of_rejected_messages() -> None:
    # Every message is refused by the model (a strict model, a new key each time): what the
    # state remembers of rejections is capped, so memory reaches a plateau and stays there.
    state = _good_state(Strict)
    count = iter(range(10**9))

    def burst(n: int) -> None:
        for _ in range(n):
            i = next(count)
            state.stage(Message((Entry(f"unknown.{i}", "x" * 100),)))
            if i % 500 == 499:
                update = state.commit()
                assert len(update.rejected) == 500

    burst(12_000)  # past the cap of remembered rejections
    tracemalloc.start()
    try:
        burst(12_000)
        first, _ = tracemalloc.get_traced_memory()
        burst(12_000)
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert second - first < 512 * 1024, f"grew {second - first} bytes over 12,000 rejections"
    assert state.snapshot["guard"] == 7
