"""What a bridge costs at rest: CPU of a process whose bridge follows many quiet channels.

Each count runs in its own process (nothing else in it: no web server, no browser): an event
loop subscribes ``count`` exact channels, waits until Redis acknowledged every one, then sleeps
while the bridge's threads run; the process's CPU time over ``IDLE`` seconds, as a share of one
core, is the row. The baseline is the same process following one channel, so the ratio shows
whether the cost at rest grows with the channels followed (DESIGN §8: it must not; under 1 %
of a core at 10,000).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from hotconfig.bridge import Bridge

from .report import Bar, Row

COUNTS = (1, 1_000, 10_000)
IDLE = 10.0
_TIMEOUT = 120.0


def _child(url: str, count: int) -> None:
    async def follow() -> float:
        bridge = Bridge(url)
        subscriptions = [bridge.subscribe(f"idle:{i}") for i in range(count)]
        await asyncio.wait_for(
            asyncio.gather(*(s.subscribed.wait() for s in subscriptions)), _TIMEOUT
        )
        await asyncio.sleep(1.0)  # the acknowledgements' wake-ups are over
        started, cpu = time.monotonic(), time.process_time()
        await asyncio.sleep(IDLE)
        share = (time.process_time() - cpu) / (time.monotonic() - started)
        stats = bridge.stats
        if stats.channels != count or stats.connections != 1:
            raise RuntimeError(f"the bridge does not follow {count} channels on one link: {stats}")
        bridge.close()
        return share

    print(json.dumps({"cpu": asyncio.run(follow())}))


def _measure(url: str, count: int) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bridge_idle", url, str(count)],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT + IDLE + 30,
        check=True,
    )
    return float(json.loads(done.stdout.splitlines()[-1])["cpu"])


def measure(url: str) -> list[Row]:
    shares = {count: _measure(url, count) for count in COUNTS}
    one = shares[1]
    return [
        Row(
            f"bridge_idle_{count}",
            f"bridge at rest, {count:,} channels: CPU / 1 channel",
            shares[count] * 100,
            "% of a core",
            baseline=one * 100,
            bar=Bar("value", "<", 1.0) if count == max(COUNTS) else None,
        )
        for count in COUNTS[1:]
    ]


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
