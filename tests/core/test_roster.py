"""The registry as an observer reads it (hotconfig.fleet._roster): the live instances' reports,
without the departed, each vetted — what is not a report, or not signed while signing is on,
is ignored, counted by reason and logged once."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
import redis

from hotconfig.fleet._roster import Registrations
from hotconfig.security import KeyRing
from hotconfig.testing.server import EmbeddedServer
from tests.reports import send_report
from tests.waiting import eventually

RING = KeyRing({"k1": b"0123456789abcdef0123456789abcdef"})
OTHER = KeyRing({"k1": b"fedcba9876543210fedcba9876543210"})


@pytest.fixture
def admin(server: EmbeddedServer) -> Iterator[redis.Redis]:
    client = server.client()
    yield client
    client.close()


def test_an_instance_whose_connection_closed_is_not_read(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    holder = server.client()
    send_report(admin, "h:1:alive", connection=int(admin.client_id()))
    send_report(admin, "h:2:dead", connection=int(holder.client_id()))
    send_report(admin, "h:3:untold")  # no connection named: its expiry decides
    registrations = Registrations(admin, "hotconfig", None)
    assert set(registrations.read(None).reports) == {"h:1:alive", "h:2:dead", "h:3:untold"}
    holder.close()
    assert eventually(lambda: set(registrations.read(None).reports) == {"h:1:alive", "h:3:untold"})
    roster = registrations.read(None)
    assert registrations.departed(roster, ["h:1:alive", "h:3:untold"]) == set()


def test_what_is_not_a_report_is_ignored_counted_and_told_once(
    admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    send_report(admin, "h:1:a")
    registrations = Registrations(admin, "hotconfig", None)
    with caplog.at_level(logging.DEBUG, "hotconfig.fleet"):
        assert registrations.parse(b'{"no": "instance"}') is None
        assert registrations.parse(b'{"instance": "x", "connection": "12"}') is None
        assert registrations.parse(b"\xff") is None
        assert registrations.received({"type": "message", "data": b"[]"}) is None
    assert registrations.ignored == {"malformed": 3, "not_utf8": 1}
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(" (")[1].split(")")[0] for r in warned] == [
        "malformed",
        "not_utf8",
    ]
    assert [r.instance for r in registrations.read(None).reports.values()] == ["h:1:a"]


def test_with_a_ring_only_reports_signed_by_one_of_its_keys_count(admin: redis.Redis) -> None:
    send_report(admin, "h:1:signed", version=3, ring=RING)  # the server's fields added after
    send_report(admin, "h:2:unsigned", version=3)
    send_report(admin, "h:3:other-key", version=3, ring=OTHER)
    registrations = Registrations(admin, "hotconfig", RING)
    assert list(registrations.read(None).reports) == ["h:1:signed"]
    assert registrations.ignored == {"unsigned": 1, "bad_signature": 1}
    # The signature binds what the reporter wrote: the same report claiming another version
    # does not verify, nor one signed for another namespace's channel.
    stored = admin.get("{hotconfig}:health:instance:h:1:signed")
    assert isinstance(stored, bytes)
    assert registrations.parse(stored.replace(b'"version":3', b'"version":4')) is None
    send_report(admin, "h:4:elsewhere", namespace="billing", ring=RING)
    elsewhere = admin.get("{billing}:health:instance:h:4:elsewhere")
    assert elsewhere is not None
    assert registrations.parse(elsewhere) is None
    assert registrations.ignored == {"unsigned": 1, "bad_signature": 3}


def test_a_signature_that_is_not_a_string_or_not_base64_is_a_bad_signature(
    admin: redis.Redis,
) -> None:
    registrations = Registrations(admin, "hotconfig", RING)
    for sig in ("1", '"k1:***"', '"k9:' + base64.urlsafe_b64encode(b"x" * 32).decode() + '"'):
        assert registrations.parse('{"instance": "x", "sig": ' + sig + "}") is None
    assert registrations.ignored == {"bad_signature": 3}
