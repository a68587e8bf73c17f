"""``hotconfig acl`` and ``hotconfig doctor``: least-privilege rules; what a URL can do."""

from __future__ import annotations

from typing import Any

import click
import redis

from ..security.acl import ROLES, Report, doctor, rules
from .session import Failure, Session, pass_session, server_error

__all__ = ["acl", "doctor_command", "report_data"]


@click.command()
@click.option("--role", type=click.Choice(ROLES), required=True, help="Who the user is for.")
@click.option("--user", "name", default=None, help="Print a whole ACL SETUSER for this user.")
@click.option(
    "--sharded", is_flag=True, help="Also grant sharded Pub/Sub (redis+cluster://...?sharded=1)."
)
@click.option(
    "--bridge-channel",
    "bridge_channels",
    multiple=True,
    metavar="PATTERN",
    help="bridge: a channel pattern it forwards (repeatable; default: any).",
)
@click.option(
    "--replay-channel",
    "replay_channels",
    multiple=True,
    metavar="PATTERN",
    help="bridge, replay-publisher: a replayable channel pattern (repeatable; required for a "
    "replay-publisher; a bridge's default: its --bridge-channel patterns).",
)
@pass_session
def acl(
    session: Session,
    role: str,
    name: str | None,
    sharded: bool,
    bridge_channels: tuple[str, ...],
    replay_channels: tuple[str, ...],
) -> None:
    """Print the Redis 7 ACL rules a ROLE needs, and nothing more."""
    if role == "replay-publisher" and not replay_channels:
        raise click.UsageError("--role replay-publisher needs --replay-channel PATTERN")
    tokens = rules(
        role,  # type: ignore[arg-type]
        namespace=session.namespace,
        channel=session.channel,
        bridge_channels=bridge_channels or ("*",),
        replay_channels=replay_channels or None,
        sharded=sharded,
    )
    if session.out.as_json:
        session.out.json({"role": role, "rules": tokens})
    elif name is not None:
        session.out.line(f"ACL SETUSER {name} on >PASSWORD " + " ".join(tokens))
    else:
        session.out.line(" ".join(tokens))


@click.command("doctor")
@pass_session
def doctor_command(session: Session) -> None:
    """Check what the URL's user can and cannot do, and the server's risky settings.

    Exits 1 when a warning was found (for example a subscriber that can PUBLISH).
    """
    try:
        report = doctor(session.url, namespace=session.namespace, channel=session.channel)
    except redis.RedisError as exc:
        raise Failure("could not check: " + server_error(exc, session.redacted)) from None
    if session.out.as_json:
        session.out.json(report_data(report))
    else:
        for line in report.lines():
            session.out.line(line, "yellow" if line.startswith("warning") else None)
    if report.warnings:
        raise SystemExit(1)


def report_data(report: Report) -> dict[str, Any]:
    """What ``doctor --json`` prints: every field named, each check an object."""
    return {
        "url": report.url,
        "user": report.user,
        "method": str(report.method),
        "checks": [
            {
                "action": check.action,
                "command": list(check.command),
                "allowed": check.allowed,
                "detail": check.detail,
            }
            for check in report.checks
        ],
        "eviction_policy": report.eviction_policy,
        "pubsub_buffer_limit": report.pubsub_buffer_limit,
        "warnings": list(report.warnings),
    }
