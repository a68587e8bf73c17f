"""The commands about the instances: ``status``, ``watch``, and the ``--wait`` barrier."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import redis

from .._redis.liveness import backoff, misconfiguration
from ..fleet._observer import ChangeNotice, Convergence, Gone
from ..fleet.registry import Report
from .arguments import SECONDS
from .output import Output
from .session import Session, pass_session, server_error

__all__ = ["convergence_data", "report_convergence", "status", "wait_options", "watch"]

F = TypeVar("F", bound=Callable[..., Any])


def wait_options(command: F) -> F:
    """``--wait [--timeout S] [--service S] [--allow-empty]``: after the write, the barrier.

    The command returns the version it wrote; with ``--wait`` the command exits 1 unless every
    live instance (of ``--service``) applied it within the timeout, and unless at least one
    is registered (``--allow-empty``: none is fine, as when no service runs yet).
    """

    @click.option("--wait", is_flag=True, help="Wait until every live instance applied it.")
    @click.option(
        "--timeout", type=SECONDS, default=5.0, show_default=True, help="Seconds to wait at most."
    )
    @click.option("--service", default=None, help="Wait only for instances of this service.")
    @click.option(
        "--allow-empty",
        is_flag=True,
        help="With --wait: succeed when no instance is registered (none to confirm).",
    )
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        wait: bool,
        timeout: float,
        service: str | None,
        allow_empty: bool,
        **kw: Any,
    ) -> Any:
        version = command(*args, **kw)
        session = click.get_current_context().find_object(Session)
        assert session is not None
        written = session.written or {}
        if not (wait and isinstance(version, int)):
            if session.out.as_json and written:
                session.out.json(written)
            return version
        result = session.fleet.wait(version, timeout, service=service)
        if session.out.as_json:
            session.out.json({**written, "convergence": convergence_data(result)})
        else:
            report_convergence(session.out, result, allow_empty)
        if not (result.ok or (result.empty and allow_empty)):
            raise SystemExit(1)
        return version

    return wrapper  # type: ignore[return-value]


def _who(report: Report | None, instance: str) -> str:
    return f"{instance} (service {report.service})" if report and report.service else instance


def convergence_data(result: Convergence) -> dict[str, Any]:
    """What ``Fleet.wait`` found, as JSON-ready data."""
    reports = result.reports
    return {
        "ok": result.ok,
        "empty": result.empty,
        "version": result.version,
        "elapsed_ms": round(result.elapsed * 1000, 1),
        "applied": list(result.applied),
        "rejected": [
            {"instance": i, "service": reports[i].service, "reason": reason}
            for i, reason in result.rejected
        ],
        "behind": [reports[i].to_dict() for i in result.behind],
        "gone": [reports[i].to_dict() for i in result.gone],
    }


def report_convergence(out: Output, result: Convergence, allow_empty: bool = False) -> bool:
    """Print what ``Fleet.wait`` found, for a person; True when it converged."""
    reports = result.reports
    if result.empty:
        if allow_empty:
            out.note("no live instance is registered: nothing to confirm")
        else:
            out.note(
                "no live instance is registered: nothing confirmed the write (a fleet being "
                "restarted?); --allow-empty accepts that"
            )
        return result.ok
    summary = (
        f"version {result.version}: {len(result.applied)} applied, {len(result.rejected)} "
        f"rejected, {len(result.behind)} behind, {len(result.gone)} gone "
        f"({result.elapsed * 1000:.0f} ms)"
    )
    out.line(summary, "green" if result.ok else "red")
    for instance, reason in result.rejected:
        out.line(f"rejected  {_who(reports[instance], instance)}: {reason}", "red")
    for instance in result.behind:
        report = reports[instance]
        out.line(
            f"behind    {_who(report, instance)}: at version {report.version}, {report.status}",
            "yellow",
        )
    for instance in result.gone:
        who = _who(reports[instance], instance)
        out.line(f"gone      {who}: died or left without applying it", "red")
    return result.ok


@click.command()
@click.option("--service", default=None, help="Only instances of this service.")
@pass_session
def status(session: Session, service: str | None) -> None:
    """The live instances; exit 1 when one is behind or rejected the latest change."""
    out = session.out
    reports = session.fleet.instances(service)
    latest = session.store.version
    troubled = [
        r for r in reports if r.version < latest or r.rejection_of(latest) or r.status != "LIVE"
    ]
    if out.as_json:
        out.json({"store_version": latest, "instances": [r.to_dict() for r in reports]})
    elif not reports:
        out.note("no live instance is registered")
    else:
        rows = [
            [
                r.service or "-",
                r.instance,
                r.framework or "-",
                r.version,
                r.status,
                f"{r.lag:.1f}s",
                r.counts.get("rejected", 0),
                _last_rejection(r),
            ]
            for r in reports
        ]
        columns = ["service", "instance", "framework", "version", "status", "lag", "rejected"]
        out.table([*columns, "last rejection"], rows, f"store version {latest}")
    if troubled:
        raise SystemExit(1)


def _last_rejection(report: Report) -> str:
    if not report.rejections:
        return "-"
    last = report.rejections[-1]
    return f"v{last.version} {last.key or '-'}: {last.reason}"


@click.command()
@click.option("--timeout", type=SECONDS, default=None, help="Stop after this many seconds.")
@click.option("--ticks", is_flag=True, help="Also show the periodic reports.")
@pass_session
def watch(session: Session, timeout: float | None, ticks: bool) -> None:
    """A live feed of changes, rejections and instance events, until Ctrl-C; it reconnects
    after an outage, saying when the connection was lost and when it is back."""
    out = session.out
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for event in _events(session, deadline):
            if isinstance(event, Report) and event.event == "tick" and not ticks:
                continue
            _print_event(out, event)
    except KeyboardInterrupt:
        pass


# Reconnects after an outage: from half a second, doubling up to 10 s, with jitter.
_BACKOFF_BASE, _BACKOFF_CAP = 0.5, 10.0


def _events(session: Session, deadline: float | None) -> Iterator[Report | Gone | ChangeNotice]:
    """The fleet's events until ``deadline``. A connection lost after the first is retried with
    backoff, said once when lost and once when back; the first connection's failure, and a
    server that refuses this client (a password, an ACL), end the command."""
    lost: float | None = None
    connected, attempt = False, 0
    while deadline is None or time.monotonic() < deadline:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            with session.fleet.watch(left, changes=True) as feed:
                if lost is not None:
                    _back(session.out, session.redacted, time.monotonic() - lost)
                lost, connected, attempt = None, True, 0
                yield from feed
            return
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if not connected or misconfiguration(exc) is not None:
                raise
            if lost is None:
                lost = time.monotonic()
                _lost(session.out, session.redacted, server_error(exc, session.redacted))
            pause = backoff(attempt, _BACKOFF_BASE, _BACKOFF_CAP)
            attempt += 1
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)


def _lost(out: Output, where: str, error: str) -> None:
    if out.as_json:
        out.json({"type": "lost", "url": where, "error": error})
    else:
        now = time.strftime("%H:%M:%S")
        out.line(f"{now}  lost    {error}; reconnecting", "red")


def _back(out: Output, where: str, seconds: float) -> None:
    if out.as_json:
        out.json({"type": "back", "url": where, "after_s": round(seconds, 1)})
    else:
        now = time.strftime("%H:%M:%S")
        text = f"{now}  back    connected to Redis at {where} again after {seconds:.1f}s"
        out.line(text + " (what happened meanwhile was not seen)", "green")


def _print_event(out: Output, event: Report | Gone | ChangeNotice) -> None:
    now = time.strftime("%H:%M:%S")
    if isinstance(event, ChangeNotice):
        if out.as_json:
            changes = [out.entry(e) for e in event.entries]
            data = {"type": "change", "version": event.version, "changes": changes}
            out.json(data | ({"reload": True} if event.reload else {}))
            return
        if event.reload:
            out.line(f"{now}  change  v{event.version} a large change, loaded from the store")
        for e in event.entries:
            value = f"={out.shown(e.key, e.value)}" if e.op == "set" else ""
            out.line(f"{now}  change  v{event.version} {e.op} {e.scope} {e.key}{value}")
        return
    if isinstance(event, Gone):
        if out.as_json:
            out.json({"type": "gone", "instance": event.instance, "last": event.last.to_dict()})
        else:
            out.line(f"{now}  gone    {_who(event.last, event.instance)}", "red")
        return
    if out.as_json:
        out.json({"type": "report", **event.to_dict()})
        return
    text = f"{now}  {event.event:<7} {_who(event, event.instance)} v{event.version} {event.status}"
    if event.event == "rejected" and event.rejections:
        last = event.rejections[-1]
        text += f" rejected v{last.version} {last.key or '-'}: {last.reason}"
    out.line(text, "red" if event.event == "rejected" else None)
