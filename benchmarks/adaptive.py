"""The adaptive Aiven request rate against a hidden server-side limit.

The simulator runs over loopback HTTP with a token bucket of `limit` requests/s (burst one
second's worth) that answers 429 + a whole-second Retry-After; `workers` threads of one shared
`AivenHttp` create new Kafka users as fast as the client lets them, starting at the configured
ceiling, for `duration` seconds. Throughput counts the requests the server answered 2xx after a
warm-up; the 429 share counts every request of the whole run (warm-up included).

    python -m benchmarks.adaptive [--limit 20] [--ceiling 100] [--duration 40] [--workers 4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass

from aivenator.adapters.aiven_budget import RequestBudget
from aivenator.adapters.aiven_http import AivenHttp, RetryPolicy
from aivenator.adapters.fakes.aiven.core import FakeAiven
from aivenator.adapters.redaction import SecretRegistry

TOKEN = "bench-token-0123456789abcdef"
PROJECT = "bench"


@dataclass(frozen=True)
class AdaptiveResult:
    limit_rps: float
    ceiling_rps: float
    throughput_rps: float  # 2xx per second after the warm-up
    fraction_429: float  # over all requests of the run
    requests: int
    throttled: int
    final_rate_rps: float | None


def measure(
    limit: float = 20.0,
    ceiling: float = 100.0,
    duration: float = 40.0,
    warmup: float = 10.0,
    workers: int = 4,
    latency_ms: float = 20.0,
) -> AdaptiveResult:
    fake = FakeAiven(token=TOKEN, server_rate_limit=limit)
    fake.add_service(PROJECT, "kafka", "kafka")
    if latency_ms > 0:
        fake.faults.latency(latency_ms)
    budget = RequestBudget(rate=ceiling, burst=max(1, int(ceiling // 10)))
    names = itertools.count()
    stop = threading.Event()
    with fake.serve() as server:
        aiven = AivenHttp(
            server.base_url,
            TOKEN,
            secrets=SecretRegistry(),
            budget=budget,
            retry=RetryPolicy(attempts=1000, call_budget=duration + 5),
        )
        aiven.service(PROJECT, "kafka").unwrap()

        def work() -> None:
            while not stop.is_set():
                aiven.ensure_user(PROJECT, "kafka", f"adaptive_{next(names)}")

        started = time.monotonic()
        threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        time.sleep(duration)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        aiven.close()
    log = [r for r in fake.request_log if r.at >= started]
    ok_after = [r for r in log if r.status != 429 and r.at >= started + warmup and r.at <= started + duration]
    throttled = sum(1 for r in log if r.status == 429)
    return AdaptiveResult(
        limit_rps=limit,
        ceiling_rps=ceiling,
        throughput_rps=len(ok_after) / max(1e-9, duration - warmup),
        fraction_429=throttled / max(1, len(log)),
        requests=len(log),
        throttled=throttled,
        final_rate_rps=budget.current_rate(),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=20.0)
    parser.add_argument("--ceiling", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    result = measure(args.limit, args.ceiling, args.duration, args.warmup, args.workers)
    print(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
