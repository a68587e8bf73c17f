"""Read path: ``config.get(key)`` and ``config.settings.a.b`` against a dict and a pydantic model.

One client, LIVE on the embedded server, holding 1,000 keys plus a typed model. Every pair is
timed interleaved in the same process (see timing.per_call): min of 15 timeit repeats of
about 20 ms each. The reported times include timeit's loop (about 4 ns); the net ratios,
with the empty loop subtracted, are in the row details.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from hotconfig import ConfigStore, HotConfig

from .report import Bar, Row
from .timing import loop_overhead, per_call

KEYS = 1_000
KEY = "bench.k0500"


class B(BaseModel):
    b: int = 1


class Settings(BaseModel):
    a: B = B()


class Holder:
    """A plain object holding a pydantic model in a slot, as HotConfig holds ``settings``."""

    __slots__ = ("settings",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


def live_client(url: str, store: ConfigStore) -> HotConfig[Settings]:
    store.set_many({f"bench.k{i:04d}": f"value-{i}" for i in range(KEYS)})
    store.set("a.b", 5)
    config = HotConfig(url, model=Settings, service="bench-reads")
    if not config.start(timeout=10):
        raise TimeoutError("the client did not go LIVE")
    return config


def measure(config: HotConfig[Any]) -> list[Row]:
    plain = dict(config.snapshot())
    model = Settings(a=B(b=5))
    names = {
        "c": config,
        "d": plain,
        "m": model,
        "h": Holder(model),
        "k": KEY,
        "missing": "bench.missing",
    }
    t = per_call(
        {
            "dict.get": "d.get(k)",
            "config.get": "c.get(k)",
            "d[k]": "d[k]",
            "dict.get missing": "d.get(missing)",
            "config.get missing": "c.get(missing)",
            "m.a.b": "m.a.b",
            "c.settings.a.b": "c.settings.a.b",
            "h.settings.a.b": "h.settings.a.b",
            "m.a": "m.a",
        },
        names,
    )
    loop = loop_overhead(names)
    ns = {label: seconds * 1e9 for label, seconds in t.items()}
    net = {label: value - loop * 1e9 for label, value in ns.items()}
    return [
        Row(
            "get_vs_dict_get",
            f"config.get(key) / dict.get(key), {len(plain):,} keys",
            ns["config.get"],
            "ns",
            baseline=ns["dict.get"],
            bar=Bar("ratio", "<=", 1.5),
            details={
                "loop_overhead_ns": loop * 1e9,
                "net_ratio": net["config.get"] / net["dict.get"],
                "d[k]_ns": ns["d[k]"],
            },
        ),
        Row(
            "get_vs_dict_get_net",
            "  the same, timeit's empty loop subtracted from both",
            net["config.get"],
            "ns",
            baseline=net["dict.get"],
            details={"loop_overhead_ns": loop * 1e9},
        ),
        Row(
            "get_missing_vs_dict_get",
            "config.get(unset key) / dict.get(unset key)",
            ns["config.get missing"],
            "ns",
            baseline=ns["dict.get missing"],
            bar=Bar("ratio", "<=", 2.0),
            details={"net_ratio": net["config.get missing"] / net["dict.get missing"]},
        ),
        Row(
            "settings_vs_pydantic",
            "config.settings.a.b / pydantic m.a.b",
            ns["c.settings.a.b"],
            "ns",
            baseline=ns["m.a.b"],
            bar=Bar("ratio", "<=", 1.2),
            details={
                "net_ratio": net["c.settings.a.b"] / net["m.a.b"],
                "same_hops_baseline_ns": ns["h.settings.a.b"],
                "same_hops_ratio": ns["c.settings.a.b"] / ns["h.settings.a.b"],
                "one_pydantic_attribute_ns": ns["m.a"],
            },
        ),
    ]
