"""The error tree: each error is caught as a HotConfigError and as the builtin it resembles, the
reasons are the stable codes on the wire and in reports, and messages read plainly."""

from __future__ import annotations

import pytest

import hotconfig
from hotconfig import errors
from hotconfig._config.update import Staged
from hotconfig.security.signing import Verdict

LEAVES = {
    errors.ConfigKeyError: KeyError,
    errors.InvalidMessageError: ValueError,
    errors.InvalidValueError: ValueError,
    errors.NotConfiguredError: RuntimeError,
    errors.ClientClosedError: RuntimeError,
    errors.StoreError: RuntimeError,
}


def test_the_tree_in_the_docstring_is_the_tree_in_the_code() -> None:
    doc = errors.__doc__ or ""
    for leaf, builtin in LEAVES.items():
        assert f"{leaf.__name__} ({builtin.__name__})" in " ".join(doc.split())
    classes = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    assert classes == {errors.HotConfigError, *LEAVES}


def test_the_error_of_a_missing_key_reads_as_the_key_not_its_repr() -> None:
    error = errors.ConfigKeyError("feature.flag is not set in any followed scope")
    assert str(error) == "feature.flag is not set in any followed scope"
    assert str(errors.ConfigKeyError()) == ""
    with pytest.raises(KeyError):
        raise error


def test_a_refused_message_carries_its_reason_and_detail() -> None:
    error = errors.InvalidMessageError(errors.RejectReason.BAD_KEY, "key must be 1-256 characters")
    assert str(error) == "bad_key: key must be 1-256 characters"
    assert error.reason is errors.RejectReason.BAD_KEY
    assert error.detail == "key must be 1-256 characters"


def test_a_refused_value_names_its_key_and_the_version_it_came_with() -> None:
    error = errors.InvalidValueError("limit", "Input should be a valid integer", version=7)
    assert str(error) == "invalid value for 'limit': Input should be a valid integer"
    assert (error.key, error.detail, error.version) == (
        "limit",
        "Input should be a valid integer",
        7,
    )
    assert errors.InvalidValueError("limit", "bad").version is None
    with pytest.raises(hotconfig.HotConfigError):
        raise error


def test_the_reasons_are_the_wire_codes() -> None:
    assert {reason.name.lower(): str(reason) for reason in errors.RejectReason} == {
        name: name
        for name in [
            "invalid_json",
            "not_object",
            "bad_key",
            "bad_scope",
            "bad_field",
            "oversize",
            "not_utf8",
            "too_deep",
            "too_many_entries",
            "unsigned",
            "bad_signature",
            "stale",
            "replayed",
            "gap",
            "conflict",
            "invalid_value",
        ]
    }
    assert errors.RejectReason("oversize") is errors.RejectReason.OVERSIZE
    assert f"{errors.RejectReason.STALE}" == "stale"


def test_every_signing_verdict_and_every_refused_staging_is_a_reason_of_the_same_code() -> None:
    # The listener turns each into a RejectReason by value: a code missing here would raise.
    for verdict in Verdict:
        assert errors.RejectReason(verdict.value).value == verdict.value
    for staged in (Staged.GAP, Staged.CONFLICT):
        assert errors.RejectReason(staged.value).value == staged.value
