"""Flask read path: the extension's proxy reads against what Flask users read today.

One app, LIVE on the embedded server, with the same 1,000 keys as the core read section; all
statements are timed interleaved inside one application context (see timing.per_call). The
baseline Flask users have is ``current_app.config[KEY]``: a werkzeug proxy, then a dict.
"""

from __future__ import annotations

from flask import Flask, current_app

from hotconfig import ConfigStore
from hotconfig_flask import HotConfig

from .reads import KEY, KEYS, Settings
from .report import Bar, Row
from .timing import per_call


def measure(url: str, store: ConfigStore) -> list[Row]:
    store.set_many({f"bench.k{i:04d}": f"value-{i}" for i in range(KEYS)})
    ext: HotConfig[Settings] = HotConfig(model=Settings)
    app = Flask("bench")
    app.config.update(HOTCONFIG_URL=url, HOTCONFIG_START_TIMEOUT=10.0, BENCH_KEY="value")
    ext.init_app(app)
    client = app.extensions["hotconfig"]
    try:
        if client.get(KEY) is None:
            raise TimeoutError("the app's client did not go LIVE")
        with app.app_context():
            t = per_call(
                {
                    "current_app.config[K]": "ca.config[K]",
                    "ext.get": "ext.get(k)",
                    "ext[k]": "ext[k]",
                    "ext.settings.a.b": "ext.settings.a.b",
                    "config.get": "c.get(k)",
                },
                {"ca": current_app, "ext": ext, "c": client, "k": KEY, "K": "BENCH_KEY"},
            )
    finally:
        client.close()
    ns = {label: seconds * 1e9 for label, seconds in t.items()}
    return [
        Row(
            "flask_get_vs_app_config",
            "Flask: ext.get(key) / current_app.config[KEY]",
            ns["ext.get"],
            "ns",
            baseline=ns["current_app.config[K]"],
            bar=Bar("ratio", "<", 1.0),
            details={"ext[key]_ns": ns["ext[k]"], "ext.settings.a.b_ns": ns["ext.settings.a.b"]},
        ),
        Row(
            "flask_get_vs_core_get",
            "  the same read / core config.get(key) (the cost of finding the current app)",
            ns["ext.get"],
            "ns",
            baseline=ns["config.get"],
        ),
    ]
