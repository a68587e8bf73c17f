"""The registry as an observer reads it (hotconfig.fleet._roster): the live instances' reports,
without the departed, each vetted — what is not a report is ignored, counted by reason and
logged once."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from hotconfig.fleet._roster import Registrations
from hotconfig.testing.server import EmbeddedServer
from tests.reports import send_report
from tests.waiting import eventually


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
    registrations = Registrations(admin, "hotconfig")
    assert set(registrations.read(None).reports) == {"h:1:alive", "h:2:dead", "h:3:untold"}
    holder.close()
    assert eventually(lambda: set(registrations.read(None).reports) == {"h:1:alive", "h:3:untold"})
    roster = registrations.read(None)
    assert registrations.departed(roster, ["h:1:alive", "h:3:untold"]) == set()


def test_what_is_not_a_report_is_ignored_counted_and_told_once(
    admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    send_report(admin, "h:1:a")
    registrations = Registrations(admin, "hotconfig")
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
