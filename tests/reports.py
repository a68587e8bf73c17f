"""Health reports written as a reporter writes them, without a client behind them.

:func:`send_report` runs the registry's own script (``REPORT_SCRIPT``) with a report head of
the test's choosing, so that the fleet's readers can be tested with instances in any state: at
any version, rejecting, leaving, closed, of any service, expiring when the test says.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from hotconfig._redis.keyspace import DEFAULT_NAMESPACE, Keyspace
from hotconfig.fleet.registry import REPORT_SCRIPT, Registry, channel_for, sign_report
from hotconfig.security import KeyRing

__all__ = ["send_report"]


def send_report(
    client: redis.Redis,
    instance: str,
    *,
    service: str | None = "app",
    version: int = 0,
    event: str = "version",
    status: str = "LIVE",
    rejections: Sequence[dict[str, Any]] = (),
    ttl: float = 5.0,
    namespace: str = DEFAULT_NAMESPACE,
    pid: int = 4242,
    connection: int | None = None,
    ring: KeyRing | None = None,
) -> dict[str, Any]:
    """Register (or, with ``event="leave"``, unregister) ``instance`` and publish its report;
    returns the report as stored and published. ``connection``: the server's id of the
    instance's connection; ``ring``: sign the report with it, as a reporter does."""
    registry, keyspace = Registry(namespace), Keyspace(namespace)
    fields: dict[str, Any] = {
        "type": "report",
        "event": event,
        "service": service,
        "instance": instance,
        "host": "test-host",
        "pid": pid,
        "framework": None,
        "version": version,
        "epoch": None,
        "digest": None,
        "status": status,
        "scopes": ["global"],
        "counts": {"received": version, "applied": version},
        "rejections": list(rejections),
        "connection": connection,
    }
    if ring is not None:
        fields["sig"] = sign_report(fields, ring, channel_for(namespace))
    head = json.dumps(fields, separators=(",", ":"))[:-1]  # the script closes the object
    keys = [
        registry.instances,
        registry.instance(instance),
        keyspace.version,
        keyspace.history,
    ]
    leave = "1" if event == "leave" else "0"
    args: list[str | int] = [
        channel_for(namespace),
        instance,
        int(ttl * 1000),
        version,
        head,
        leave,
    ]
    raw = client.register_script(REPORT_SCRIPT)(keys=keys, args=args)
    report: dict[str, Any] = json.loads(raw)
    return report
