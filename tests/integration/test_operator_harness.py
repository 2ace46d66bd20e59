"""The shared harness (tests/support/harness.py) wires the production container to the fakes."""

from __future__ import annotations

from aivenator.adapters.kubernetes_timing import TimedKubernetes
from aivenator.domain.outcomes import Done
from aivenator.entrypoints.shells.reconcile import ReconcileResult

from tests.support.harness import NAMESPACE, Harness, application, build, harness

__all__ = ["harness"]


def test_container_wires_the_operator_to_the_fakes(harness: Harness) -> None:
    kube = harness.operator.kube
    assert isinstance(kube, TimedKubernetes) and kube.inner is harness.kube
    harness.operator.drain()
    assert harness.operator.caches_synced()
    assert harness.operator.readiness()[0]


class RecordingReconciler:
    """Stands in for the reconcile shell: records what it was asked and changes nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def reconcile(self, namespace: str, name: str, attempt: int = 0) -> ReconcileResult:
        self.calls.append((namespace, name))
        return ReconcileResult(Done())


def test_a_shell_can_be_overridden_in_the_composition_root() -> None:
    fake = RecordingReconciler()
    h = build(overrides={"reconciler": fake})
    try:
        h.kube.apply(application("app", kafka={"pool": "dev-nais-dev", "secretName": "app-kafka"}))
        h.operator.drain()
        assert fake.calls == [(NAMESPACE, "app")]
        # The real shell never ran: no Secret was written, no Aiven user created.
        assert h.secret("app-kafka") is None
        assert h.aiven_requests() == 0
    finally:
        h.close()


def test_the_shells_share_the_caches_and_queue_the_container_built(harness: Harness) -> None:
    container = harness.container
    assert harness.operator.caches is container.caches()
    assert harness.operator.queue is container.queue()
    assert harness.operator.reconciler is container.reconciler()
    assert harness.operator.janitor is container.janitor()
    assert harness.operator.orphans is container.orphans()
    assert harness.operator.finalizer is container.finalizer()
