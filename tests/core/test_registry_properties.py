"""Hostile health reports, property-based: a report is read or refused with a ValueError, never
anything else, signed or not (hotconfig.fleet.registry).

Anyone who may publish on the health channel (every service, by the subscriber role) can send
anything there, and write anything under the registry's keys. Every property runs under the
profile tests/hostile.py selects: bounded in ``make test``, long in ``make fuzz``. No network.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hotconfig.fleet.registry import SERVER_FIELDS, Report, channel_for, check_report, sign_report
from hotconfig.security import KeyRing, Verdict
from tests.hostile import PROFILE, hostile_payloads, json_values

RING = KeyRing({"k1": b"0123456789abcdef0123456789abcdef", "k2": b"fedcba9876543210fedcba98"})
CHANNEL = channel_for("hotconfig")

_ints = st.one_of(
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, 1, 2**63 - 1, 2**63, -1]),
    st.just(10**4000),
)
_anything = st.one_of(json_values, _ints, st.booleans())
_rejection = st.fixed_dictionaries(
    {},
    optional={"key": st.one_of(st.none(), st.text(max_size=8), _anything), "version": _ints}
    | {"reason": _anything},
)
_report_fields = st.fixed_dictionaries(
    {"instance": st.one_of(st.text(max_size=20), _anything)},
    optional={
        "type": st.just("report"),
        "event": st.sampled_from(["version", "tick", "leave", "rejected", ""]),
        "service": st.one_of(st.none(), st.text(max_size=10), _anything),
        "pid": _ints,
        "version": _ints,
        "status": st.sampled_from(["LIVE", "CLOSED", "", 7]),
        "counts": st.one_of(st.dictionaries(st.text(max_size=8), _ints, max_size=3), _anything),
        "rejections": st.one_of(st.lists(_rejection, max_size=3), _anything),
        "scopes": st.one_of(st.lists(st.text(max_size=8), max_size=3), _anything),
        "connection": st.one_of(st.none(), _ints, _anything),
        "interval": st.one_of(st.floats(allow_nan=False, allow_infinity=False), _ints),
    },
)
_server_fields = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        SERVER_FIELDS, st.one_of(st.floats(allow_nan=False, allow_infinity=False), _ints)
    ),
)
_signatures = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.sampled_from(["k1:", "k1:***", "k9:AAAA", ":", "k1:" + "A" * 43, "k2:=="]),
    _anything,
)


def _read(raw: bytes | str, ring: KeyRing | None) -> Report | None:
    """A report, or None for a ValueError: anything else fails the property."""
    try:
        report = Report.from_json(raw, ring, CHANNEL)
    except ValueError:
        return None
    assert type(report.instance) is str
    assert type(report.version) is int
    assert type(report.pid) is int
    assert report.connection is None or 0 < report.connection < 2**63
    json.dumps(report.to_dict(), allow_nan=False)  # what `hotconfig status --json` prints
    return report


def _encoded(document: dict[str, Any], ascii_only: bool) -> bytes:
    return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@PROFILE
@given(st.one_of(hostile_payloads(), st.binary(max_size=200)), st.sampled_from([None, RING]))
def test_any_payload_is_a_report_or_a_value_error(raw: bytes | str, ring: KeyRing | None) -> None:
    _read(raw, ring)


@PROFILE
@given(_report_fields, _server_fields, _signatures, st.booleans(), st.sampled_from([None, RING]))
def test_any_report_shaped_document_is_a_report_or_a_value_error(
    fields: dict[str, Any],
    added: dict[str, Any],
    sig: Any,
    ascii_only: bool,
    ring: KeyRing | None,
) -> None:
    document = {**fields, **added, **({} if sig is None else {"sig": sig})}
    report = _read(_encoded(document, ascii_only), ring)
    if ring is not None:
        assert report is None  # nobody holding the key signed it


@PROFILE
@given(_report_fields, _server_fields, st.booleans(), st.data())
def test_a_signed_report_verifies_whatever_the_server_adds_and_not_once_changed(
    fields: dict[str, Any], added: dict[str, Any], ascii_only: bool, data: st.DataObject
) -> None:
    try:
        signature = sign_report(fields, RING, CHANNEL)
    except ValueError:  # fields no reporter could write (a lone surrogate): nothing signed
        return
    document = {**fields, "sig": signature, **added}
    raw = _encoded(document, ascii_only)
    try:
        decoded = json.loads(raw)
    except ValueError:
        return  # the surrogate-bearing text JSON itself refuses
    assert check_report(decoded, RING, CHANNEL) is None
    _read(raw, RING)  # verifies; may still be malformed as a report: a ValueError, no more
    name = data.draw(st.sampled_from(sorted(fields)))
    changed = data.draw(_anything.filter(lambda value: value != fields[name]))
    tampered = {**decoded, name: changed}
    assert check_report(tampered, RING, CHANNEL) is Verdict.BAD_SIGNATURE
    assert _read(_encoded(tampered, ascii_only), RING) is None
