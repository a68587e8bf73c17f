"""Signed changes: who may change the configuration, not merely who can reach Redis.

Anyone who can reach Redis can PUBLISH. With a key ring configured on both sides, the store signs
every write and clients apply only messages whose signature verifies; unsigned or wrongly signed
messages are rejected and counted (``unsigned``, ``bad_signature``).

What is signed — the canonical payload, UTF-8, fields separated by ``\\n``::

    hotconfig-sig-v1
    <channel>
    <epoch, or empty>
    <version, or empty>
    <prev: the digest the write follows, or empty>
    <ts: unix seconds of an unversioned message, or empty>
    <"reload" for a change announced by a reload notice, or empty>
    <entries: JSON [[op, scope, key, value], ...], sorted keys, no spaces, not ASCII-escaped>

and a message carries ``"sig": "<key id>:<base64url of HMAC-SHA256(key, payload)>"``. Binding the
channel, epoch, version and predecessor means a signed body cannot be replayed under another
version, store lifetime or channel. The version is assigned by the server, so the store reads
the current position, signs for the next version and its write script refuses to write if the
store moved in between (the store then signs again for the new position).

Unversioned (raw) signed messages carry ``ts`` and are accepted within ``window`` seconds of
the client's clock, each signature once (``stale``, ``replayed``).

Key rings are written ``kid=base64key,kid2=base64key`` (``$HOTCONFIG_SIGNING_KEYS``): a client
accepts every key in its ring; a store signs with the first. Rotate by adding the new key to
every client's ring, then making it first on the store, then removing the old one.

With HMAC every holder of a key can also sign. For services that must only *verify*, use
Ed25519 (``pip install 'hotconfig[signing]'``): the store's ring holds
``kid=ed25519:<base64 of the 32-byte private key>``, the services' rings hold
``kid=ed25519-public:<base64 of the 32-byte public key>``, and a compromised service host can
no longer forge configuration. An Ed25519 signature is ``"<key id>:<base64url of the 64-byte
signature>"`` over the same payload.

Health reports (:mod:`hotconfig.fleet`) are signed with the same rings and the same ``sig``
field, over a payload of their own (:func:`report_payload`), so that a report's signature can
never pass for a change's.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .._config.wire import Entry, Message

__all__ = ["ENV_VAR", "KeyRing", "Verdict", "payload", "report_payload", "signed_message"]

ENV_VAR: Final = "HOTCONFIG_SIGNING_KEYS"
_HEADER: Final = "hotconfig-sig-v1"
_REPORT_HEADER: Final = "hotconfig-report-v1"
_MIN_KEY_BYTES: Final = 16


def payload(
    channel: str,
    entries: Iterable[Entry],
    *,
    epoch: str | None = None,
    version: int | None = None,
    prev: str | None = None,
    ts: int | None = None,
    reload: bool = False,
) -> bytes:
    """The canonical bytes a signature covers (see the module docs)."""
    body = json.dumps(
        [[e.op, e.scope, e.key, None if e.op == "delete" else e.value] for e in entries],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    fields = (
        _HEADER,
        channel,
        epoch or "",
        "" if version is None else str(version),
        prev or "",
        "" if ts is None else str(ts),
        "reload" if reload else "",
        body,
    )
    return "\n".join(fields).encode()


def report_payload(channel: str, fields: Mapping[str, Any]) -> bytes:
    """The canonical bytes a health report's signature covers: the fields its reporter wrote
    (without ``sig`` and what the server adds), as JSON with sorted keys, no spaces and no
    ASCII escaping, after a header of its own and the health channel::

        hotconfig-report-v1\n<channel>\n<fields>

    Raises :class:`ValueError` for fields JSON cannot carry (NaN, a lone surrogate)."""
    body = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return "\n".join((_REPORT_HEADER, channel, body)).encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class _Hmac:
    __slots__ = ("_secret",)

    def __init__(self, kid: str, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray):
            raise ValueError(
                f"signing_keys: key {kid!r} is a {type(secret).__name__}, not bytes: give the "
                "raw secret as bytes ({'k1': secrets.token_bytes(32)}), or the whole ring as a "
                "string 'k1=<base64 secret>' (see hotconfig.security.KeyRing.parse)"
            )
        if len(secret) < _MIN_KEY_BYTES:
            raise ValueError(
                f"signing_keys: key {kid!r} has {len(secret)} bytes; use at least "
                f"{_MIN_KEY_BYTES} random bytes (e.g. secrets.token_bytes(32))"
            )
        self._secret = secret

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self._secret, data, hashlib.sha256).digest()

    def verify(self, mac: bytes, data: bytes) -> bool:
        return hmac.compare_digest(self.sign(data), mac)

    @property
    def can_sign(self) -> bool:
        return True


class _Ed25519:
    __slots__ = ("_private", "_public")

    def __init__(self, kid: str, raw: bytes, *, private: bool) -> None:
        try:
            from cryptography.hazmat.primitives.asymmetric import ed25519
        except ImportError:
            raise ImportError(
                f"signing key {kid!r} is Ed25519, which needs the cryptography package: "
                "pip install 'hotconfig[signing]'"
            ) from None
        if len(raw) != 32:
            raise ValueError(f"signing key {kid!r}: an Ed25519 key is 32 bytes, got {len(raw)}")
        self._private = ed25519.Ed25519PrivateKey.from_private_bytes(raw) if private else None
        self._public = (
            self._private.public_key()
            if self._private is not None
            else ed25519.Ed25519PublicKey.from_public_bytes(raw)
        )

    def sign(self, data: bytes) -> bytes:
        if self._private is None:
            raise ValueError("this ring's signing key is an Ed25519 public key: it can only verify")
        return self._private.sign(data)

    @property
    def can_sign(self) -> bool:
        return self._private is not None

    def verify(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self._public.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def _unb64(encoded: str, kid: str) -> bytes:
    try:
        padded = encoded.strip() + "=" * (-len(encoded.strip()) % 4)
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"signing key {kid!r} is not valid base64") from None


class Verdict(enum.StrEnum):
    """Why :meth:`KeyRing.check` refuses a message; each is also a ``RejectReason`` of the same
    value, so a refusal is counted and reported under these codes. ``detail`` says it in words."""

    UNSIGNED = "unsigned", "signing is on and the message carries no signature (and, if "
    "unversioned, no ts)"
    BAD_SIGNATURE = "bad_signature", "the signature does not verify with any key of this ring"
    STALE = "stale", "the signed message's ts is outside the accepted window of this clock"
    REPLAYED = "replayed", "this signed unversioned message was already applied once"

    detail: str

    def __new__(cls, value: str, detail: str) -> Verdict:
        member = str.__new__(cls, value)
        member._value_ = value
        member.detail = detail
        return member


class KeyRing:
    """Keys by id — HMAC-SHA256 secrets or Ed25519 keys: all of them verify, the first signs."""

    __slots__ = ("_keys", "_seen", "window")

    def __init__(self, keys: Mapping[str, bytes], *, window: float = 60.0) -> None:
        """``keys`` maps key ids to HMAC secrets (bytes); use :meth:`parse` for Ed25519."""
        self._setup({kid: _Hmac(kid, secret) for kid, secret in keys.items()}, window)

    def _setup(self, keys: dict[str, _Hmac | _Ed25519], window: float) -> None:
        if not keys:
            raise ValueError("signing_keys: give at least one key, e.g. k1=<base64 secret>")
        for kid in keys:
            if not kid or any(c in kid for c in ":,="):
                raise ValueError(f"signing_keys: key id {kid!r} must be non-empty, without : , =")
        self._keys = keys
        self.window = window
        self._seen: dict[str, float] = {}  # raw signatures accepted, until they expire

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """A ring from ``kid=base64key,kid2=ed25519:base64key,kid3=ed25519-public:base64key``
        (standard or URL-safe base64; a bare key is an HMAC secret)."""
        keys: dict[str, _Hmac | _Ed25519] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            kid, sep, encoded = item.partition("=")
            kid = kid.strip()
            if not sep:
                raise ValueError("signing keys must be written kid=base64key,kid2=base64key")
            kind, colon, rest = encoded.partition(":")
            if colon and kind in ("ed25519", "ed25519-public"):
                keys[kid] = _Ed25519(kid, _unb64(rest, kid), private=kind == "ed25519")
            else:
                keys[kid] = _Hmac(kid, _unb64(encoded, kid))
        ring = cls.__new__(cls)
        ring._setup(keys, 60.0)
        return ring

    @classmethod
    def resolve(cls, keys: KeyRing | str | Mapping[str, bytes] | None) -> KeyRing | None:
        """The ring to use: ``keys`` if given, else ``$HOTCONFIG_SIGNING_KEYS``, else None."""
        if keys is None:
            spec = os.environ.get(ENV_VAR, "").strip()
            return cls.parse(spec) if spec else None
        if isinstance(keys, KeyRing):
            return keys
        if isinstance(keys, str):
            return cls.parse(keys)
        if not isinstance(keys, Mapping):
            raise ValueError(
                f"signing_keys must be a KeyRing, a string 'k1=<base64 secret>,...' or a "
                f"mapping of key ids to secret bytes, not a {type(keys).__name__}"
            )
        return cls(keys)

    @property
    def signer(self) -> str:
        """The id of the key that signs."""
        return next(iter(self._keys))

    @property
    def can_sign(self) -> bool:
        """False when the signing key is an Ed25519 public key: this ring only verifies."""
        return self._keys[self.signer].can_sign

    def sign(self, data: bytes) -> str:
        kid = self.signer
        return f"{kid}:{_b64(self._keys[kid].sign(data))}"

    def verify(self, signature: str, data: bytes) -> bool:
        kid, _, encoded = signature.partition(":")
        key = self._keys.get(kid)
        if key is None:
            return False
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            return False
        return key.verify(raw, data)

    def check_signature(self, signature: object, data: bytes) -> Verdict | None:
        """Why a ``sig`` field (any JSON value, or None if absent) does not sign ``data`` with
        a key of this ring, or None if it does: a health report's check."""
        if signature is None:
            return Verdict.UNSIGNED
        if type(signature) is not str or not self.verify(signature, data):
            return Verdict.BAD_SIGNATURE
        return None

    def check(self, message: Message, channel: str, now: float | None = None) -> Verdict | None:
        """Why ``message`` must be refused, or None if it may be applied."""
        if message.sig is None:
            return Verdict.UNSIGNED
        raw = message.version is None
        if raw:
            if message.ts is None:
                return Verdict.UNSIGNED
            now = time.time() if now is None else now
            if abs(now - message.ts) > self.window:
                return Verdict.STALE
        data = payload(
            channel,
            message.entries,
            epoch=message.epoch,
            version=message.version,
            prev=message.prev,
            ts=message.ts,
            reload=message.reload,
        )
        if not self.verify(message.sig, data):
            return Verdict.BAD_SIGNATURE
        if raw:
            return self._once(message.sig, time.time() if now is None else now)
        return None

    def _once(self, signature: str, now: float) -> Verdict | None:
        # A raw message has no version to tell a replay: remember its signature for as long as
        # its timestamp is acceptable, and no longer (bounded by the publish rate in a window).
        seen = self._seen
        if signature in seen:
            return Verdict.REPLAYED
        if len(seen) > 1024:
            for old in [s for s, until in seen.items() if until < now]:
                del seen[old]
        seen[signature] = now + 2 * self.window
        return None

    def __repr__(self) -> str:
        return f"<KeyRing keys={list(self._keys)} signer={self.signer!r}>"  # ids only, never keys


def signed_message(
    entries: Iterable[Entry], ring: KeyRing, channel: str, now: float | None = None
) -> str:
    """An unversioned message for ``PUBLISH``, signed with ``ring``'s signing key."""
    listed = list(entries)
    ts = int(time.time() if now is None else now)
    sig = ring.sign(payload(channel, listed, ts=ts))
    changes = [
        {"key": e.key, "scope": e.scope, "op": "delete"}
        if e.op == "delete"
        else {"key": e.key, "value": e.value, "scope": e.scope}
        for e in listed
    ]
    body = {"ts": ts, "sig": sig, "changes": changes}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
