"""The shared harness (tests/support/harness.py) wires the production container to the fakes."""

from __future__ import annotations

from aivenator.adapters.kubernetes_timing import TimedKubernetes

from tests.support.harness import Harness, harness

__all__ = ["harness"]


def test_container_wires_the_operator_to_the_fakes(harness: Harness) -> None:
    kube = harness.operator.kube
    assert isinstance(kube, TimedKubernetes) and kube.inner is harness.kube
    harness.operator.drain()
    assert harness.operator.caches_synced()
    assert harness.operator.readiness()[0]
