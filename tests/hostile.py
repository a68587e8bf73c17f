"""Hypothesis strategies for hostile input on the changes channel, and the profile to run them.

``make test`` runs a bounded number of examples; ``make fuzz`` sets ``$HOTCONFIG_FUZZ_PROFILE``
to ``fuzz`` and runs the same properties long. Each test applies the profile itself (``@PROFILE``)
so that nothing global changes for other test modules.
"""

from __future__ import annotations

import json
import os
from typing import Any, Final

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hotconfig._config.wire import Limits

__all__ = [
    "GUARD",
    "LIMITS",
    "PROFILE",
    "PROFILE_NAME",
    "hostile_messages",
    "hostile_payloads",
    "json_values",
    "names",
]

PROFILE_ENV: Final = "HOTCONFIG_FUZZ_PROFILE"

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    database=None,  # nothing written next to the sources
    derandomize=True,  # `make test` is the same run every time; `make fuzz` explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
    # Per property: the suite's properties together run far more than 100,000 cases.
    max_examples=int(os.environ.get("HOTCONFIG_FUZZ_EXAMPLES", "25000")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
PROFILE_NAME: Final = os.environ.get(PROFILE_ENV, "ci")
PROFILE: Final = settings.get_profile(PROFILE_NAME)

# Small limits, so that every limit is reached by small examples (the defaults are tested at
# their real size in the tests that use them).
LIMITS: Final = Limits(max_message_bytes=8192, max_depth=8, max_batch=16)
# A key no hostile example ever sets: the good value that must still be served afterwards.
GUARD: Final = "guard.value"

_ODD: Final = [
    "\x00",
    "\ud800",  # lone surrogates: valid in a JSON escape, not in UTF-8
    "\udfff",
    "\u202e",  # right-to-left override
    "\u200f",
    "\ufeff",
    "\U0010ffff",
    "\u0085",
    '"',
    "\\",
]
_text: Final = st.text(
    st.one_of(st.characters(codec=None, exclude_categories=()), st.sampled_from(_ODD)),
    max_size=40,
)
_NAME_CHARS: Final = "ABCXYZabcxyz0189_.:-"

_valid_names: Final = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=8),
    st.sampled_from([1, 255, 256]).map(lambda n: "k" * n),  # every length up to the limit
)


def _mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """``valid`` seven times in eight: a hostile field usually hides among valid ones."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda ok: valid if ok else hostile)


_bad_names: Final = st.one_of(
    st.sampled_from([257, 1000]).map(lambda n: "k" * n),  # one past the limit, and far past
    _valid_names.map(lambda s: s + "\x00"),
    _valid_names.map(lambda s: "\u202e" + s),
    _text,
    st.sampled_from(["", " ", "global ", "<pinned>", "a b", "\u00e9", "\uff41"]),
)
# Valid names of every length up to the limit, with names one past it and almost valid.
names: Final = _mostly(_valid_names, _bad_names).filter(lambda name: name != GUARD)


def _huge(digits: int, negative: bool) -> int:
    magnitude: int = 10**digits - 1
    return -magnitude if negative else magnitude


_numbers: Final = st.one_of(
    st.integers(),
    st.builds(_huge, st.integers(1, 4300), st.booleans()),  # up to Python's 4300-digit limit
    st.sampled_from([2**63, -(2**63) - 1, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308]),
)
_scalars: Final = st.one_of(st.none(), st.booleans(), _numbers, _text)

json_values: Final = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_text | names, inner, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


_deep: Final = st.sampled_from([LIMITS.max_depth - 1, LIMITS.max_depth, LIMITS.max_depth + 1])
values: Final = st.one_of(json_values, _deep.map(_nested))
_anything: Final = st.one_of(values, st.just(float("nan")), st.just(float("inf")))


@st.composite
def _entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": draw(_mostly(names, _anything))}
    if draw(st.booleans()):
        entry["scope"] = draw(_mostly(st.sampled_from(["global", "service:x"]), names | _anything))
    if draw(st.sampled_from([False, False, False, True])):
        entry["op"] = draw(st.sampled_from(["set", "delete", "SET", "", None, 1]))
    if draw(st.sampled_from([True] * 5 + [False])):
        entry["value"] = draw(values)
    return entry


_versions: Final = _mostly(
    st.integers(0, 8),
    st.one_of(
        st.integers(), st.just(10**4000), st.sampled_from([-1, True, 1.0, "3", [], {}, None])
    ),
)
_digests: Final = st.from_regex(r"[0-9a-f]{16}", fullmatch=True)
_field_values: Final = _mostly(st.one_of(_digests, st.just("e1")), st.one_of(_text, values))


@st.composite
def hostile_messages(draw: st.DrawFn) -> Any:
    """A JSON document as a publisher might send it: mostly message-shaped, often wrong."""
    if draw(st.sampled_from([False] * 7 + [True])):
        return draw(_anything)  # not an object at all
    message: dict[str, Any] = draw(_entries())
    if draw(st.booleans()):
        message["version"] = draw(_versions)
        for name in ("epoch", "prev", "digest"):
            if draw(st.sampled_from([True, True, False])):
                message[name] = draw(_field_values)
    if draw(st.sampled_from([False] * 4 + [True])):
        sizes = st.dictionaries(names, st.integers(0, 10**6), max_size=3)
        message["sizes"] = draw(_mostly(sizes, st.one_of(values, st.dictionaries(names, values))))
    if draw(st.sampled_from([False] * 5 + [True])):
        message["reload"] = draw(st.sampled_from([True, False, 1, "true"]))
    batch = draw(st.sampled_from([0, 0, 1, 2]))
    if batch == 1:
        count = draw(st.sampled_from([0, 1, 2, LIMITS.max_batch, LIMITS.max_batch + 1]))
        entry = draw(_entries())
        message["changes"] = [entry] * count
    elif batch == 2:
        message["changes"] = draw(_mostly(st.lists(_entries(), min_size=1, max_size=4), values))
    if draw(st.sampled_from([False] * 6 + [True])):
        message[draw(_text)] = draw(values)  # unknown fields are ignored
    return message


def _encode(document: Any, ascii_only: bool) -> str:
    return json.dumps(document, ensure_ascii=ascii_only, allow_nan=True)


@st.composite
def hostile_payloads(draw: st.DrawFn) -> bytes | str:
    """What arrives on the channel: random bytes, broken JSON, deep nesting, or a document."""
    # sampled_from rather than integers: hypothesis favours small integers, so the common
    # case comes first and the rest are drawn evenly.
    kind = draw(st.sampled_from([4] * 12 + [0, 1, 2, 3]))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:  # nesting at the limit, past it, and past what the decoder can recurse
        depth = draw(st.sampled_from([LIMITS.max_depth, LIMITS.max_depth + 1, 1000, 4000]))
        value = "[" * depth + "]" * depth
        return '{"key":"a","value":' + value + "}" if draw(st.booleans()) else value
    if kind == 2:  # Python refuses to convert integers of more than 4300 digits
        digits = draw(st.sampled_from([4299, 4300, 4301]))
        return '{"key":"a","value":' + "9" * digits + "}"
    if kind == 3:
        return '{"key":"a","value":' + draw(st.sampled_from(["NaN", "-Infinity", "1e999"])) + "}"
    text = _encode(draw(hostile_messages()), draw(st.booleans()))
    damage = draw(st.sampled_from([9] * 7 + [0, 1, 2]))
    if damage == 0 and text:
        cut = draw(st.integers(0, len(text) - 1))
        text = text[:cut]
    elif damage == 1:
        text = " \t\n" + text + draw(st.sampled_from(["", " ", "x", "{}", "\x00"]))
    elif damage == 2:
        text += " " * max(0, LIMITS.max_message_bytes - len(text)) + draw(
            st.sampled_from(["", " "])
        )
    # Lone surrogates cannot be UTF-8: as bytes they are invalid input; as str they get through.
    if draw(st.booleans()):
        return text
    return text.encode("utf-8", "surrogatepass")
