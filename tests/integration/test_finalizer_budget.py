"""The finalizer's Aiven budget under a permanent 500: DELETEs per stuck cycle, client retries
included, then FinalizerStuck and a backoff that grows to an hour.

The operator runs on the fakes with the real Aiven client (its own retries) over the simulator,
whose fault injector answers every DELETE with 500; the simulator's request log counts what was
actually sent.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from aivenator.domain.finalizer import REQUEST_BUDGET_PER_CYCLE, STUCK_RETRY_SECONDS

from tests.support.harness import NAMESPACE, application, build, make_config

KAFKA = {"pool": "dev-nais-dev", "secretName": "app-kafka-1"}


def _events(h: Any, reason: str) -> list[dict[str, Any]]:
    return [e for e in h.kube.events() if e.get("reason") == reason]


def test_a_permanent_500_costs_at_most_the_budget_then_backs_off_to_an_hour() -> None:
    h = build(make_config())
    try:
        h.kube.apply(application(kafka=KAFKA))
        h.operator.drain()
        h.aiven.faults.error(500, method="DELETE")
        h.kube.delete_secret(NAMESPACE, "app-kafka-1")
        h.kube.delete("AivenApplication", NAMESPACE, "app")

        def deletes() -> int:
            return len(h.aiven.requests_matching(method="DELETE"))

        waited = 0.0
        while not _events(h, "FinalizerStuck") and waited < 24 * 3600:
            h.operator.drain()
            h.clock.advance(60)
            waited += 60
        cycle = deletes()
        print(f"\nDELETE requests before FinalizerStuck: {cycle} (budget {REQUEST_BUDGET_PER_CYCLE})")
        assert _events(h, "FinalizerStuck"), "never reported stuck"
        assert 1 <= cycle <= REQUEST_BUDGET_PER_CYCLE
        assert h.secret("app-kafka-1") is not None  # the finalizer stays while Aiven fails

        # Stuck: retried with a growing pause, never more often than the first one and never
        # less often than hourly; each retry spends at most the client's attempts.
        sent_at: list[float] = []
        last = deletes()
        for minute in range(1, 6 * 60 + 1):
            h.clock.advance(60)
            h.operator.drain()
            if deletes() > last:
                sent_at.append(minute * 60.0)
                last = deletes()
        gaps = [b - a for a, b in pairwise(sent_at)]
        print(f"stuck retries at {sent_at} s (gaps {gaps})")
        assert len(sent_at) >= 3
        assert gaps == sorted(gaps), "the pause between stuck retries never shrinks"
        assert max(gaps) <= STUCK_RETRY_SECONDS + 120
        assert gaps[-1] == max(gaps) and gaps[0] < gaps[-1]
        assert len(_events(h, "FinalizerStuck")) == 1  # one Warning per stuck cycle, not per retry

        h.aiven.faults.clear()
        h.clock.advance(STUCK_RETRY_SECONDS)
        h.operator.drain()
        assert h.secret("app-kafka-1") is None
    finally:
        h.close()
