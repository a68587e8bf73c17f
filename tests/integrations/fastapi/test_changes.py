"""The change feed behind ``/stream``, on a real client and server, without HTTP in between:
which keys and values may leave the process, and what a wiped store does to open streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from hotconfig import ConfigStore, HotConfig
from hotconfig.bridge.serving import Outbox
from hotconfig.testing import EmbeddedServer
from hotconfig_fastapi import ChangeFeed


class DB(BaseModel):
    host: str = "db.internal"
    dsn: SecretStr = SecretStr("postgres://app:pw@db/app")


class Settings(BaseModel):
    db: DB = DB()
    banner: str = "hi"


@pytest.fixture
def store(server: EmbeddedServer) -> Iterator[ConfigStore]:
    with ConfigStore(server.url) as store:
        yield store


@pytest.fixture
def config(server: EmbeddedServer) -> Iterator[HotConfig[Settings]]:
    with HotConfig(server.url, model=Settings) as config:
        yield config


def events(data: bytes) -> list[tuple[str, Any]]:
    """(event, data) of every event in ``data``, the comments and retry lines left out."""
    found = []
    for block in data.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            found.append((fields.get("event", "message"), json.loads(fields["data"])))
    return found


async def next_events(outbox: Outbox, timeout: float = 5.0) -> list[tuple[str, Any]]:
    async with asyncio.timeout(timeout):
        while not (found := events(await outbox.take(timeout))):
            pass
    return found


def test_only_allowed_keys_leave_and_secrets_stay_masked_or_out(
    config: HotConfig[Settings], store: ConfigStore
) -> None:
    store.set("db.password", "hunter2")
    store.set("service.api_token", "t0k3n")
    assert config.wait_for_version(store.version, timeout=5)

    async def scenario() -> list[tuple[str, Any]]:
        # "db.*" matches db.password too, but a wildcard never lets a secret-named key out;
        # the exact name lets service.api_token out, as the app asked for it by name.
        feed = ChangeFeed(config, ["db.*", "service.api_token"])
        feed.start()
        try:
            outbox = feed.open(None)
            return await next_events(outbox)
        finally:
            feed.stop()

    [(event, data)] = asyncio.run(scenario())
    assert event == "reset"
    assert data["values"] == {
        "db.host": "db.internal",
        "db.dsn": "**********",  # a SecretStr field: masked, never the value
        "service.api_token": "t0k3n",
    }


def test_a_wiped_store_sends_open_streams_a_reset_to_the_new_state(
    config: HotConfig[Settings], store: ConfigStore, server: EmbeddedServer
) -> None:
    store.set("banner", "before")
    assert config.wait_for_version(store.version, timeout=5)

    async def scenario() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        feed = ChangeFeed(config, ["banner"])
        feed.start()
        try:
            outbox = feed.open(None)
            first = await next_events(outbox)
            with server.client() as client:
                client.flushall()  # the store's lifetime ends; versions start over
            await asyncio.to_thread(store.set, "banner", "after")
            return first, await next_events(outbox)
        finally:
            feed.stop()

    first, after_wipe = asyncio.run(scenario())
    assert first == [("reset", {"version": 1, "values": {"banner": "before"}})]
    assert after_wipe == [("reset", {"version": 1, "values": {"banner": "after"}})]
