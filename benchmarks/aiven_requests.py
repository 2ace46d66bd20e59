"""Aiven requests per operation, cold and warm, against the simulator over loopback HTTP.

Run: `.venv/bin/python benchmarks/aiven_requests.py` (prints a table; exits non-zero if a
measured count exceeds its ceiling, so it doubles as a regression check).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from aivenator.adapters.aiven_http import AivenHttp, RetryPolicy
from aivenator.adapters.fakes.aiven.core import FakeAiven
from aivenator.adapters.redaction import SecretRegistry
from aivenator.domain.facts import OpenSearchRule, ValkeyAccessControl

TOKEN = "bench-token-0123456789"
PROJECT = "bench"
RULES = (OpenSearchRule("_*", "readwrite"), OpenSearchRule("*", "readwrite"))
VALKEY = ValkeyAccessControl(("-@all", "+@connection", "+@read"), ("+info",), ("*",), ("*",))


def measure(aiven: AivenHttp, action: Callable[[], object]) -> tuple[dict[str, int], float]:
    before = aiven.request_counts()
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    after = aiven.request_counts()
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}, elapsed


def main() -> int:
    fake = FakeAiven(token=TOKEN)
    fake.add_service(PROJECT, "kafka", "kafka")
    fake.add_service(PROJECT, "os", "opensearch")
    fake.add_service(PROJECT, "vk", "valkey")
    server = fake.serve()
    rows: list[tuple[str, dict[str, int], float, int]] = []
    try:
        aiven = AivenHttp(
            server.base_url, TOKEN, secrets=SecretRegistry(), retry=RetryPolicy(acl_settle=0.05)
        )
        cases: list[tuple[str, Callable[[], object], int]] = [
            (
                "kafka: project CA + ensure user, cold",
                lambda: (aiven.project_ca(PROJECT), aiven.ensure_user(PROJECT, "kafka", "app_1")),
                4,
            ),
            (
                "kafka: project CA + ensure same user, warm",
                lambda: (aiven.project_ca(PROJECT), aiven.ensure_user(PROJECT, "kafka", "app_1")),
                1,
            ),
            (
                "kafka: ensure a second new user, warm cache",
                lambda: aiven.ensure_user(PROJECT, "kafka", "app_2"),
                2,
            ),
            (
                "opensearch: ensure user + ACL entry, cold",
                lambda: (
                    aiven.ensure_user(PROJECT, "os", "ns-rw-a"),
                    aiven.put_user_rules(PROJECT, "os", "ns-rw-a", RULES),
                ),
                7,
            ),
            (
                "opensearch: same again, warm",
                lambda: (
                    aiven.ensure_user(PROJECT, "os", "ns-rw-a"),
                    aiven.put_user_rules(PROJECT, "os", "ns-rw-a", RULES),
                ),
                2,
            ),
            (
                "valkey: ensure user with ACL, cold",
                lambda: aiven.ensure_user(PROJECT, "vk", "app-r-x", VALKEY),
                3,
            ),
            ("valkey: same again, warm", lambda: aiven.ensure_user(PROJECT, "vk", "app-r-x", VALKEY), 1),
            ("delete kafka user", lambda: aiven.delete_user(PROJECT, "kafka", "app_2"), 1),
        ]
        for name, action, ceiling in cases:
            counts, elapsed = measure(aiven, action)
            rows.append((name, counts, elapsed, ceiling))
        aiven.close()
    finally:
        server.stop()
    failed = False
    for name, counts, elapsed, ceiling in rows:
        total = sum(counts.values())
        flag = "" if total <= ceiling else f"  <-- above ceiling {ceiling}"
        failed |= total > ceiling
        detail = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        print(f"{name:48s} {total:2d} requests {elapsed * 1000:7.1f} ms  ({detail}){flag}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
