"""``hotconfig acl`` prints rules the server takes; ``hotconfig doctor`` says what a URL can do."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from hotconfig.cli import group
from hotconfig.security import acl
from hotconfig.testing.server import EmbeddedServer
from tests.cli.conftest import Run


def test_acl_prints_the_rules_of_a_role(run: Run, server: EmbeddedServer) -> None:
    result = run("--json", "acl", "--role", "subscriber")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rules"] == acl.rules("subscriber")
    line = run("acl", "--role", "publisher", "--user", "svc").output.strip()
    assert line.startswith("ACL SETUSER svc on >PASSWORD ")
    with server.client() as admin:  # what it prints, the server takes as it is
        tokens = run("acl", "--role", "subscriber").output.split()
        admin.execute_command("ACL", "SETUSER", "sub", "on", ">pw", *tokens)


def test_doctor_tells_a_subscriber_it_cannot_publish(server: EmbeddedServer) -> None:
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "sub", "on", ">pw", *acl.rules("subscriber"))
    url = f"redis://sub:pw@{server.host}:{server.port}/0"
    result = CliRunner().invoke(group, ["--url", url, "doctor"], catch_exceptions=False)
    assert "cannot PUBLISH to config:changes" in result.output, result.output
    assert "pw@" not in result.output


def test_doctor_warns_and_fails_for_an_all_powerful_user(run: Run) -> None:
    result = run("doctor")
    assert result.exit_code == 1
    assert "warning:" in result.output
    assert "can PUBLISH to config:changes" in result.output


def test_doctor_on_a_server_that_is_down_says_so(server: EmbeddedServer) -> None:
    url = f"redis://{server.host}:1/0"
    result = CliRunner().invoke(group, ["--url", url, "doctor"])
    assert result.exit_code != 0
    assert "could not check" in result.output


def test_acl_prints_the_replay_roles_for_the_channels_it_is_given(
    run: Run, server: EmbeddedServer
) -> None:
    refused = run("acl", "--role", "replay-publisher")
    assert refused.exit_code == 2
    assert "needs --replay-channel PATTERN" in refused.output
    publisher = run("--json", "acl", "--role", "replay-publisher", "--replay-channel", "chat:*")
    assert json.loads(publisher.output)["rules"] == acl.rules(
        "replay-publisher", replay_channels=["chat:*"]
    )
    args = ("acl", "--role", "bridge", "--bridge-channel", "chat:*", "--bridge-channel", "ai:*")
    printed = run(*args, "--replay-channel", "chat:*", "--sharded").output.strip()
    expected = acl.rules(
        "bridge", bridge_channels=["chat:*", "ai:*"], replay_channels=["chat:*"], sharded=True
    )
    assert printed == " ".join(expected)
    # The tokens, with the probe's selector (in parentheses) as one: the server takes them.
    bridge = re.findall(r"\([^)]*\)|\S+", printed)
    assert bridge == expected
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "bridge", "on", ">pw", *bridge)


def test_doctor_json_names_every_field_of_every_check(run: Run, server: EmbeddedServer) -> None:
    result = run("--json", "doctor")
    assert result.exit_code == 1  # the default user can do anything: a warning
    report = json.loads(result.stdout)
    assert report["url"] == f"redis://{server.host}:{server.port}/0"
    assert report["checks"], report
    for check in report["checks"]:
        assert set(check) == {"action", "command", "allowed", "detail"}
    publish = [c for c in report["checks"] if c["action"] == "PUBLISH to config:changes"]
    assert publish == [
        {
            "action": "PUBLISH to config:changes",
            "command": ["PUBLISH", "config:changes", "doctor.probe"],
            "allowed": True,
            "detail": publish[0]["detail"],
        }
    ]
    assert any("can PUBLISH to config:changes" in warning for warning in report["warnings"])
