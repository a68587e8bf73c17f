"""Secrets never leak: every output channel captured while secret values flow through every path.

Logs at DEBUG (every hotconfig logger), reprs of changes, clients, snapshots and stats, rejection
reasons and signals, health reports on the channel and in the registry, and the CLI's output —
while secret keys are set, changed, rejected by the model, deleted, and read back.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from hotconfig import Change, ConfigStore, Fleet, HotConfig, signals
from hotconfig.testing import EmbeddedServer
from tests.waiting import eventually

pytestmark = pytest.mark.faults

# The CLI is one of the outputs checked: without its extra (the lowest-floors run) this skips.
click_testing = pytest.importorskip("click.testing")

SECRETS = ("hunter2-db", "sk-live-api", "tok-abc-123", "pw-rejected-xyz", "nested-pw-42")
PASSWORD = "url-pass-77"


class Db(BaseModel):
    password: SecretStr = SecretStr("default-not-secret-here")
    port: int = 5432


class Settings(BaseModel):
    db: Db = Db()
    api_key: SecretStr = SecretStr("")


def test_no_secret_reaches_any_output(
    server_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hotconfig")
    server: EmbeddedServer = server_factory(password=PASSWORD)
    outputs: list[str] = []
    signals.config_rejected.connect(lambda sender, **kw: outputs.append(repr(kw)), weak=False)
    signals.config_changed.connect(lambda key, **kw: outputs.append(repr(kw)), weak=False)
    fleet = Fleet(server.url)
    watch = fleet.watch(changes=False)  # read to the end below, then closed
    with (
        ConfigStore(server.url) as store,
        HotConfig(server.url, model=Settings, service="vault") as config,
    ):
        seen: list[Change] = []
        config.on_change("*")(seen.append)
        store.set("db.password", SECRETS[0])
        store.set("api_key", SECRETS[1])
        store.set("auth.token", SECRETS[2])
        store.set("db.password", {"bad": SECRETS[3]})  # rejected by the model: input masked
        store.set("upstream", {"url": "x", "password": SECRETS[4]})
        version = store.delete("auth.token")
        assert config.wait_for_version(version, timeout=10)
        assert config.stats.rejected == 1
        outputs += [repr(c) for c in seen]
        outputs += [
            repr(config),
            repr(config.snapshot()),
            repr(config.stats),
            repr(config.settings),
        ]
        outputs += [config.url, repr(store)]
        assert eventually(lambda: bool(fleet.instances(service="vault")), timeout=5)
        outputs += [repr(report) for report in fleet.instances()]
        with server.client() as admin:
            outputs += [repr(admin.hgetall(k)) for k in admin.keys("{hotconfig}:health:*")
                        if admin.type(k) == b"hash"]  # fmt: skip
            outputs += [repr(admin.get(k)) for k in admin.keys("{hotconfig}:health:*")
                        if admin.type(k) == b"string"]  # fmt: skip
        from hotconfig.cli import group

        runner = click_testing.CliRunner()
        for args in (["list"], ["get", "db.password"], ["get", "upstream"], ["history"],
                     ["status"], ["--json", "list"], ["--json", "history"]):  # fmt: skip
            result = runner.invoke(group, ["--url", server.url, *args])
            outputs.append(result.output)
    # What the feed holds by now arrives at once; a second more, and it is closed.
    threading.Timer(1.0, watch.close).start()
    for report in watch:
        outputs.append(repr(report))
    fleet.close()
    outputs += [record.getMessage() for record in caplog.records]
    outputs += [str(record.exc_info) for record in caplog.records if record.exc_info]
    text = "\n".join(outputs)
    for secret in (*SECRETS, PASSWORD):
        assert secret not in text, f"{secret!r} leaked:\n" + next(
            line for line in text.splitlines() if secret in line
        )
    assert "db.password" in text  # the keys show, their values do not
    assert "***" in text
    assert "'url': 'x'" in text  # values that are not secret still show
