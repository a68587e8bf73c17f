"""Reads of the tools users move from: dynaconf and django-constance (Redis backend).

Informational rows: how many ``config.get(key)`` calls one of their reads costs. Each is timed
interleaved with ``config.get`` in the same process, min of repeats.
"""

from __future__ import annotations

from typing import Any

from hotconfig import HotConfig

from .reads import KEY, KEYS
from .report import Row
from .timing import per_call


def dynaconf_row(config: HotConfig[Any]) -> Row:
    from dynaconf import Dynaconf  # type: ignore[import-untyped]

    settings = Dynaconf(environments=False, settings_files=[], load_dotenv=False)
    for i in range(KEYS):
        settings.set(f"BENCH_K{i:04d}", f"value-{i}")
    names = {"s": settings, "c": config, "k": KEY}
    t = per_call({"dynaconf": "s.BENCH_K0500", "config.get": "c.get(k)"}, names)
    return Row(
        "dynaconf_vs_get",
        f"dynaconf settings.X / config.get(key), {KEYS:,} keys",
        t["dynaconf"] * 1e9,
        "ns",
        baseline=t["config.get"] * 1e9,
    )


def constance_row(config: HotConfig[Any], url: str) -> Row:
    constance = _constance(url)
    constance.BENCH_KEY = "value-500"  # stored in Redis by the backend
    names = {"cfg": constance, "c": config, "k": KEY}
    t = per_call(
        {"constance": "cfg.BENCH_KEY", "config.get": "c.get(k)"}, names, repeats=7, target=0.05
    )
    return Row(
        "constance_vs_get",
        "django-constance config.X (Redis) / config.get(key)",
        t["constance"] * 1e6,
        "us",
        baseline=t["config.get"] * 1e6,
    )


def _constance(url: str) -> Any:
    from .django_reads import configure

    configure(url)
    from constance import config  # type: ignore[import-untyped]

    return config
