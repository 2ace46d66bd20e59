"""The shared harness (tests/support/harness.py) wires the production container to the fakes."""

from __future__ import annotations

from tests.support.harness import Harness, harness

__all__ = ["harness"]


def test_container_wires_the_operator_to_the_fakes(harness: Harness) -> None:
    assert harness.operator.kube is harness.kube
    harness.operator.drain()
    assert harness.operator.caches_synced()
    assert harness.operator.readiness()[0]
