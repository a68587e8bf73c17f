"""What ``hotconfig set`` makes of its VALUE, property-based: a value every client accepts, or a
usage error; never a traceback and never a write that every client then refuses. Runs under the
profile tests/hostile.py selects (``make fuzz`` runs it long)."""

from __future__ import annotations

import json
from typing import Any

import click
from hypothesis import given
from hypothesis import strategies as st

from hotconfig._config.wire import DEFAULT_LIMITS, check_depth, decode_value
from hotconfig.cli.commands import parse_value
from tests.hostile import PROFILE, hostile_payloads, json_values


def _text(payload: bytes | str) -> str:
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload


_values = st.one_of(
    hostile_payloads().map(_text),
    json_values.map(lambda value: json.dumps(value, allow_nan=True)),
    st.text(max_size=40),
)


@PROFILE
@given(text=_values)
def test_a_value_is_what_every_client_accepts_or_a_usage_error(text: str) -> None:
    try:
        value: Any = parse_value(text)
    except click.BadParameter as exc:
        refused = exc.message
    else:
        refused = ""
    if refused:
        # Not JSON that starts like JSON, or JSON no client accepts: either says so.
        starts_like_json = text.lstrip().startswith(("{", "[", '"'))
        assert "no client would accept it" in refused or (
            starts_like_json and "starts like JSON but is not JSON" in refused
        )
        return
    if isinstance(value, str) and value == text:
        assert not text.lstrip().startswith(("{", "[")), "JSON gone wrong stored as a string"
    check_depth(value, DEFAULT_LIMITS.max_depth)
    encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
    assert decode_value(encoded.encode("utf-8")) == value  # as a client reads it back
