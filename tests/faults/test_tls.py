"""TLS passes through: ``rediss://`` with a CA the test makes, against Debian's redis-server.

The server listens on TLS only (``--port 0``); the test's own CA signs its certificate for
127.0.0.1. A client and a store given that CA work end to end; a client given another CA fails
loudly and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import pytest
import redis

from hotconfig import ConfigStore, Connection, Fleet, HotConfig, Status
from hotconfig.testing.server import free_port
from tests.waiting import eventually

pytestmark = pytest.mark.faults

HOST = "127.0.0.1"


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if _on_ci():
            pytest.fail(f"CI must test TLS: {binary} is not installed", pytrace=False)
        pytest.skip(f"{binary} is not installed (apt-get install redis-server openssl)")
    return path


class Certificates(NamedTuple):
    ca: Path
    other_ca: Path  # a CA that did not sign the server's certificate
    cert: Path
    key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run([_require("openssl"), *map(str, args)], cwd=cwd, check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             f"/CN=hotconfig test {name}", "-keyout", key, "-out", cert, cwd=directory)  # fmt: skip
    return key, cert


def make_certificates(directory: Path) -> Certificates:
    """A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    ca_key, ca = _make_ca(directory, "ca")
    _, other_ca = _make_ca(directory, "other-ca")
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "san.cnf"
    extensions.write_text(f"subjectAltName=IP:{HOST}\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={HOST}",
             "-keyout", key, "-out", csr, cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-days", "2", "-extfile", extensions, "-out", cert, cwd=directory)  # fmt: skip
    return Certificates(ca, other_ca, cert, key)


class TlsServer(NamedTuple):
    port: int
    certificates: Certificates

    def url(self, ca: Path | None = None) -> str:
        """The rediss:// URL; with ``ca``, the CA rides in the query string (redis-py reads it)."""
        query = f"?ssl_ca_certs={quote(str(ca), safe='/')}" if ca is not None else ""
        return f"rediss://{HOST}:{self.port}/0{query}"


def _answers(port: int, ca: Path) -> bool:
    client = redis.Redis(
        host=HOST, port=port, ssl=True, ssl_ca_certs=str(ca), socket_timeout=0.5,
        socket_connect_timeout=0.5,
    )  # fmt: skip
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(tmp_path: Path, certificates: Certificates) -> Iterator[TlsServer]:
    """redis-server on a TLS port only; EmbeddedServer checks readiness over plain TCP."""
    binary = _require("redis-server")
    port = free_port()
    command = [
        binary, "--bind", HOST, "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(certificates.cert), "--tls-key-file", str(certificates.key),
        "--tls-ca-cert-file", str(certificates.ca), "--tls-auth-clients", "no",
        "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
    ]  # fmt: skip
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port, certificates.ca):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                if "TLS" in tail and "not supported" in tail.lower() and not _on_ci():
                    pytest.skip(f"this redis-server was built without TLS: {tail}")
                pytest.fail(f"the TLS server did not start:\n{tail}", pytrace=False)
            time.sleep(0.02)
        yield TlsServer(port, certificates)
    finally:
        process.kill()
        process.wait()


def test_a_client_and_a_store_work_over_tls(tls_server: TlsServer) -> None:
    ca = tls_server.certificates.ca
    with (
        HotConfig(
            tls_server.url(), connection=Connection(redis_kwargs={"ssl_ca_certs": str(ca)})
        ) as config,
        ConfigStore(tls_server.url(ca)) as store,
    ):
        assert config.status is Status.LIVE, config.stats
        version = store.set("feature.tls", "on")
        assert config.wait_for_version(version, timeout=5)
        assert config.get("feature.tls") == "on"
        assert store.get("feature.tls") == "on"
        assert config.stats.reconnects == 0
        # The fleet reads the registry and waits for reports over the same TLS options.
        with Fleet(tls_server.url(), redis_kwargs={"ssl_ca_certs": str(ca)}) as fleet:
            # Registered by its first report, a moment after it went live: a barrier over
            # no instance yet proves nothing.
            assert eventually(lambda: fleet.instances(), timeout=5)
            landed = fleet.wait(version, timeout=5)
            assert landed.ok, landed
            assert len(landed.applied) == 1, landed
    # And the same store, given a client made with TLS options of its own.
    with ConfigStore(client=redis.Redis.from_url(tls_server.url(), ssl_ca_certs=str(ca))) as store:
        assert store.get("feature.tls") == "on"


def test_a_wrong_ca_fails_loudly(tls_server: TlsServer) -> None:
    wrong = str(tls_server.certificates.other_ca)
    config = HotConfig(
        tls_server.url(), connection=Connection(redis_kwargs={"ssl_ca_certs": wrong})
    )
    try:
        assert config.start(timeout=1) is False
        assert eventually(lambda: config.stats.last_error is not None, timeout=5)
        assert "certificate verify failed" in (config.stats.last_error or ""), config.stats
        assert config.status is not Status.LIVE
    finally:
        config.close()
    with (
        ConfigStore(tls_server.url(Path(wrong))) as store,
        pytest.raises(redis.ConnectionError, match="certificate verify failed"),
    ):
        store.set("feature.tls", "forged")
    # Plain TCP to the TLS port is refused too, never silently downgraded.
    with (
        ConfigStore(f"redis://{HOST}:{tls_server.port}/0") as store,
        pytest.raises(redis.RedisError),
    ):
        store.set("feature.tls", "plain")
