"""The fan-out benchmark's rows: what fanout.py measured, as lines of the table.

All are info: no bar is set for these figures. Each ratio is HotConfig over raw redis-py
subscribers, measured at the same count in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .report import Row

Phases = dict[tuple[str, int], dict[str, Any]]
_SIZE_LABEL = {256: "256 B", 4_096: "4 KB"}


def rows(
    phases: Phases,
    restarts: list[dict[str, Any]],
    counts: Sequence[int],
    sizes: Sequence[int],
    burst: int,
) -> list[Row]:
    out: list[Row] = []
    for count in counts:
        for size in sizes:
            out += _size_rows(phases, count, size, burst)
        raw, hot = phases["raw", count], phases["hotconfig", count]
        out.append(
            Row(
                f"fanout_idle_cpu_{count}",
                f"server CPU, {_clients(count, 'HotConfig ')} idle (PINGs, polls)",
                hot["idle_cpu_share"] * 100,
                "% core",
                details={"raw_idle_cpu_percent": raw["idle_cpu_share"] * 100},
            )
        )
    top = max(counts)
    raw, hot = phases["raw", top], phases["hotconfig", top]
    out.append(
        Row(
            f"fanout_memory_{top}",
            f"server memory per subscriber, {top:,} held, idle, HotConfig / raw redis-py",
            hot["server_memory_per_client"] / 1024,
            "KB",
            baseline=raw["server_memory_per_client"] / 1024,
            details={
                kind: {k: v for k, v in phase.items() if not k.startswith(("paced", "burst"))}
                for kind, phase in (("hotconfig", hot), ("raw", raw))
            },
        )
    )
    return out + _restart_rows(top, restarts)


def _size_rows(phases: Phases, count: int, size: int, burst: int) -> list[Row]:
    raw, hot = phases["raw", count][f"paced_{size}"], phases["hotconfig", count][f"paced_{size}"]
    raw_burst = phases["raw", count][f"burst_{size}"]
    hot_burst = phases["hotconfig", count][f"burst_{size}"]
    where = f"{_clients(count)}, {_SIZE_LABEL.get(size, f'{size} B')}, HotConfig / raw redis-py"

    def row(name: str, what: str, key: str, unit: str, **details: Any) -> Row:
        return Row(
            f"fanout_{name}_{count}_{size}",
            f"{what}, {where}",
            hot[key],
            unit,
            baseline=raw[key],
            details=details,
        )

    return [
        row("p50", "publish-to-all p50", "p50_ms", "ms", hotconfig=hot, raw=raw),
        row("p99", "publish-to-all p99", "p99_ms", "ms"),
        row(
            "cpu",
            "server CPU per publish",
            "cpu_us_per_publish",
            "us",
            **_slopes(phases, count, size),
        ),
        row("client_cpu", "subscriber CPU per message", "client_cpu_us_per_message", "us"),
        Row(
            f"fanout_omem_{count}_{size}",
            f"peak output buffer, one subscriber, burst of {burst}, {where}",
            hot_burst["peak_omem"] / 1024,
            "KB",
            baseline=raw_burst["peak_omem"] / 1024,
            details={"hotconfig": hot_burst, "raw": raw_burst},
        ),
    ]


def _slopes(phases: Phases, count: int, size: int) -> dict[str, float]:
    """What one more subscriber costs the server per publish: the slope from 1 subscriber."""
    slopes: dict[str, float] = {}
    for kind in ("hotconfig", "raw"):
        single = phases.get((kind, 1))
        paced = phases[kind, count][f"paced_{size}"]
        slopes[f"{kind}_net_bytes_per_publish"] = paced["net_bytes_per_publish"]
        if single is not None and count > 1:
            base = single[f"paced_{size}"]["cpu_us_per_publish"]
            slopes[f"{kind}_ns_per_subscriber"] = (
                (paced["cpu_us_per_publish"] - base) / (count - 1) * 1000
            )
    return slopes


def _restart_rows(count: int, restarts: list[dict[str, Any]]) -> list[Row]:
    if not restarts:
        return []
    worst = f"worst of {len(restarts)}"
    return [
        Row(
            "fanout_restart_converged",
            f"{_clients(count)} converged after a server restart, {worst}",
            max(trial["converged_s"] for trial in restarts),
            "s",
            details={"trials": restarts},
        ),
        Row(
            "fanout_restart_live_spread",
            f"{_clients(count)}, first to last LIVE again after a restart, {worst}",
            max(trial["live_last_s"] - trial["live_first_s"] for trial in restarts),
            "s",
        ),
    ]


def _clients(count: int, kind: str = "") -> str:
    return f"{count:,} {kind}client{'s' if count != 1 else ''}"
