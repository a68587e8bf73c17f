"""Django read paths: ``hotconfig_django.config.get(key)`` against the core and ``settings.X``.

One Django set up in this process (the benchmark runs it once) with hotconfig_django following
the embedded server, and django-constance on its Redis backend for the reference row.
django-constance's row in alternatives.py uses the same setup.
"""

from __future__ import annotations

from typing import Any

from hotconfig import HotConfig

from .reads import KEY
from .report import Bar, Row
from .timing import per_call


def configure(url: str) -> None:
    """Set up Django once for this process: hotconfig_django and constance, both on ``url``."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "constance", "hotconfig_django"],
        CONSTANCE_BACKEND="constance.backends.redisd.RedisBackend",
        CONSTANCE_REDIS_CONNECTION=url,
        CONSTANCE_CONFIG={"BENCH_KEY": ("default", "a benchmark value")},
        HOTCONFIG={"URL": url, "START": True, "SERVICE": "bench-django"},
        BENCH_SETTING="value-500",
        USE_TZ=True,
    )
    django.setup()


def measure(core: HotConfig[Any], url: str) -> list[Row]:
    configure(url)
    from constance import config as constance  # type: ignore[import-untyped]
    from django.conf import settings

    from hotconfig_django import config

    if not config.wait_for_version(core.version, timeout=10):
        raise TimeoutError("hotconfig_django's client did not catch up with the store")
    constance.BENCH_KEY = "value-500"  # stored in Redis by constance's backend
    names = {"dj": config, "c": core, "s": settings, "cfg": constance, "k": KEY}
    t = per_call({"django": "dj.get(k)", "core": "c.get(k)", "settings": "s.BENCH_SETTING"}, names)
    constance_t = per_call(
        {"constance": "cfg.BENCH_KEY", "django": "dj.get(k)"}, names, repeats=7, target=0.05
    )
    # Its listener would otherwise go on applying every later section's traffic in this process
    # (the throughput bursts, the barrier's instance count).
    from hotconfig_django import lifecycle

    lifecycle.teardown()
    return [
        Row(
            "django_get_vs_core_get",
            "hotconfig_django.config.get(key) / core config.get(key)",
            t["django"] * 1e9,
            "ns",
            baseline=t["core"] * 1e9,
            bar=Bar("ratio", "<=", 1.5),
        ),
        Row(
            "django_get_vs_settings",
            "hotconfig_django.config.get(key) / Django settings.X",
            t["django"] * 1e9,
            "ns",
            baseline=t["settings"] * 1e9,
            bar=Bar("ratio", "<=", 1.0),
        ),
        Row(
            "constance_vs_django_get",
            "django-constance config.X (Redis) / hotconfig_django.config.get(key)",
            constance_t["constance"] * 1e6,
            "us",
            baseline=constance_t["django"] * 1e6,
        ),
    ]
