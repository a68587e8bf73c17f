"""``hotconfig_fastapi.router``'s ``/health`` as a readiness probe, on a real server.

Ready while the process serves a configuration it loaded from the store, through an outage
too (a Redis blip must not take every pod out of the load balancer), for at most
``max_staleness`` seconds of outage if given; not ready before the first load, when the
server refuses the client, or once closed.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import hotconfig_fastapi
from hotconfig import ConfigStore, Status
from hotconfig.testing import EmbeddedServer, free_port
from tests.waiting import eventually

FAST = {"ping_interval": 0.2, "liveness_timeout": 0.5}


@contextmanager
def probed(url: str, **router: Any) -> Iterator[TestClient]:
    hot = hotconfig_fastapi.lifespan(url, start_timeout=5.0, timings=FAST, health=False)
    app = FastAPI(lifespan=hot)
    app.include_router(hotconfig_fastapi.router(**router))
    with TestClient(app) as client:
        yield client


def test_ready_while_live_and_through_an_outage_with_the_outage_in_the_body(
    server: EmbeddedServer,
) -> None:
    with ConfigStore(server.url) as store:
        store.set("greeting", "hi")
    with probed(server.url) as client:
        live = client.get("/health")
        assert (live.status_code, live.json()["ready"], live.json()["status"]) == (
            200,
            True,
            "LIVE",
        )
        server.pause()  # frozen: the process keeps serving what it loaded
        try:
            assert eventually(lambda: client.get("/health").json()["status"] == "INTERRUPTED")
            during = client.get("/health")
            assert during.status_code == 200
            assert during.json()["ready"] is True
            assert during.json()["outage_s"] >= 0
        finally:
            server.resume()
        assert eventually(lambda: client.get("/health").json()["status"] == "LIVE", timeout=15)
        assert "outage_s" not in client.get("/health").json()


def test_an_outage_longer_than_max_staleness_is_not_ready(server: EmbeddedServer) -> None:
    with probed(server.url, max_staleness=0.5) as client:
        assert client.get("/health").status_code == 200
        server.pause()
        try:
            assert eventually(lambda: client.get("/health").json()["status"] == "INTERRUPTED")
            assert eventually(lambda: client.get("/health").status_code == 503, timeout=5)
            assert client.get("/health").json()["outage_s"] > 0.5
        finally:
            server.resume()


def test_not_ready_before_the_first_load() -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    hot = hotconfig_fastapi.lifespan(down, start_timeout=0.2, health=False)
    app = FastAPI(lifespan=hot)
    app.include_router(hotconfig_fastapi.router())
    with TestClient(app) as client:
        response = client.get("/health")
        assert response.status_code == 503
        assert (response.json()["ready"], response.json()["status"]) == (False, "STARTING")
    assert hot.config.status is Status.CLOSED


@pytest.mark.parametrize("max_staleness", [0, -1.0])
def test_max_staleness_must_be_positive(max_staleness: float) -> None:
    with pytest.raises(ValueError, match="max_staleness"):
        hotconfig_fastapi.router(max_staleness=max_staleness)
