"""Signatures on their own: the published test vector, tampering, key rings and rotation."""

from __future__ import annotations

import base64

import pytest

from hotconfig import HotConfig, RejectReason
from hotconfig._config.wire import Entry, parse
from hotconfig.security import Verdict
from hotconfig.security.signing import KeyRing, payload, report_payload, signed_message

CHANNEL = "config:changes"
KEY = b"0123456789abcdef0123456789abcdef"
# The test vector of docs/security.md: publishers in other languages check against it.
VECTOR_PAYLOAD = (
    "hotconfig-sig-v1\nconfig:changes\ne1\n7\n00aa11bb22cc33dd\n\n\n"
    '[["set","global","ai.model.default","gpt-4o"]]'
)
VECTOR_SIG = "k1:m7-449fe31y5pZruIGgNVrvlJnJpV3v2bh7DaFo6vQY"


def ring(**keys: bytes) -> KeyRing:
    return KeyRing(keys or {"k1": KEY})


def test_the_published_vector() -> None:
    data = payload(
        CHANNEL,
        [Entry("ai.model.default", "gpt-4o")],
        epoch="e1",
        version=7,
        prev="00aa11bb22cc33dd",
    )
    assert data.decode() == VECTOR_PAYLOAD
    assert ring().sign(data) == VECTOR_SIG
    assert ring().verify(VECTOR_SIG, data)


@pytest.mark.parametrize(
    "changed",
    [
        {"version": 8},
        {"epoch": "e2"},
        {"prev": "ffffffffffffffff"},
        {"channel": "config:other"},
        {"entries": [Entry("ai.model.default", "gpt-5")]},
        {"entries": [Entry("ai.model.default", "gpt-4o", "service:x")]},
        {"entries": [Entry("ai.model.default", None, "global", "delete")]},
        {"reload": True},
    ],
)
def test_a_signature_binds_every_field(changed: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "channel": CHANNEL,
        "entries": [Entry("ai.model.default", "gpt-4o")],
        "epoch": "e1",
        "version": 7,
        "prev": "00aa11bb22cc33dd",
    }
    fields.update(changed)
    data = payload(
        str(fields.pop("channel")),
        fields.pop("entries"),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )
    assert not ring().verify(VECTOR_SIG, data)


def test_rotation_accepts_every_key_of_the_ring_and_signs_with_the_first() -> None:
    old, new = b"o" * 32, b"n" * 32
    data = b"anything"
    rotating = KeyRing({"k2": new, "k1": old})
    assert rotating.signer == "k2"
    assert rotating.verify(KeyRing({"k1": old}).sign(data), data)
    assert rotating.verify(KeyRing({"k2": new}).sign(data), data)
    assert not KeyRing({"k1": old}).verify(rotating.sign(data), data)
    assert not rotating.verify("k3:" + rotating.sign(data).partition(":")[2], data)


def test_rings_are_written_as_ids_and_base64_keys() -> None:
    spec = f"k1={base64.b64encode(KEY).decode()}, k2={base64.urlsafe_b64encode(b'x' * 20).decode()}"
    parsed = KeyRing.parse(spec)
    assert parsed.signer == "k1"
    assert parsed.sign(b"p") == ring().sign(b"p")
    assert "0123" not in repr(parsed)  # ids only, never key material


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("k1", "kid=base64key"),
        ("k1=!!!", "base64"),
        ("k1=c2hvcnQ=", "at least 16"),
        ("", "at least one"),
    ],
)
def test_a_bad_ring_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        KeyRing.parse(spec)


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ({"k1": "a text secret, not bytes"}, "'k1' is a str, not bytes"),
        ({"k1": 12345}, "'k1' is a int, not bytes"),
        (["k1", b"0123456789abcdef"], "not a list"),
    ],
)
def test_keys_of_the_wrong_kind_are_refused_when_the_client_is_made(
    keys: object, says: str
) -> None:
    # Once a TypeError from hmac on the first signed write; now at construction, with the fix.
    with pytest.raises(ValueError, match=says):
        KeyRing.resolve(keys)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signing_keys"):
        HotConfig("redis://127.0.0.1:1/0", signing_keys=keys)  # type: ignore[arg-type]


def test_unversioned_signed_messages_carry_a_time_and_apply_once() -> None:
    keys = ring()
    text = signed_message([Entry("feature_x", True)], keys, CHANNEL, now=1_800_000_000)
    message = parse(text)
    assert message.ts == 1_800_000_000
    assert keys.check(message, CHANNEL, now=1_800_000_030) is None
    assert keys.check(message, CHANNEL, now=1_800_000_031) is Verdict.REPLAYED
    assert ring().check(message, CHANNEL, now=1_800_000_100) is Verdict.STALE
    assert ring().check(message, "config:other", now=1_800_000_000) is Verdict.BAD_SIGNATURE
    unsigned = ring().check(parse('{"key": "feature_x", "value": true}'), CHANNEL)
    assert (unsigned, unsigned == "unsigned") == (Verdict.UNSIGNED, True)


def test_each_verdict_is_a_rejection_reason_and_says_itself_in_words() -> None:
    for verdict in Verdict:
        assert RejectReason(verdict) == verdict.value
        assert verdict.detail
        assert verdict.value not in verdict.detail


def test_ed25519_services_verify_but_cannot_sign() -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    store_ring = KeyRing.parse(f"e1=ed25519:{base64.b64encode(raw_private).decode()}")
    service_ring = KeyRing.parse(f"e1=ed25519-public:{base64.b64encode(raw_public).decode()}")
    data = payload(CHANNEL, [Entry("a", 1)], epoch="e", version=1, prev="")
    signature = store_ring.sign(data)
    assert service_ring.verify(signature, data)
    assert not service_ring.verify(signature, data + b"x")
    with pytest.raises(ValueError, match="only verify"):
        service_ring.sign(data)


def test_a_report_payload_is_its_own_and_binds_the_channel_and_every_field() -> None:
    fields = {"instance": "h:1:a", "version": 7, "reason": "é"}
    data = report_payload("health:status:hotconfig", fields)
    assert (
        data
        == (
            'hotconfig-report-v1\nhealth:status:hotconfig\n{"instance":"h:1:a","reason":"é","version":7}'
        ).encode()
    )
    signature = ring().sign(data)
    assert ring().check_signature(signature, data) is None
    assert ring().check_signature(None, data) is Verdict.UNSIGNED
    for forged in (signature + "x", 7, "k2:" + signature[3:], "k1:***"):
        assert ring().check_signature(forged, data) is Verdict.BAD_SIGNATURE
    for other in (report_payload("health:status:x", fields), report_payload(CHANNEL, fields)):
        assert ring().check_signature(signature, other) is Verdict.BAD_SIGNATURE
    changed = report_payload("health:status:hotconfig", fields | {"version": 8})
    assert ring().check_signature(signature, changed) is Verdict.BAD_SIGNATURE
    with pytest.raises(ValueError, match="JSON compliant"):
        report_payload(CHANNEL, {"n": float("nan")})


def test_a_ring_of_public_keys_cannot_sign() -> None:
    pytest.importorskip("cryptography")
    public = base64.b64encode(b"\x01" * 32).decode()
    assert not KeyRing.parse(f"k1=ed25519-public:{public}").can_sign
    assert KeyRing.parse(f"k1=ed25519:{public}").can_sign
    assert ring().can_sign
