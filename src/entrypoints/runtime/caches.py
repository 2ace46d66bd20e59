"""The operator's informer caches: AivenApplications, managed Secrets, workload references.

Built once by the composition root and shared: the shells read them through the bound methods
the container hands them (`get_app`, `secrets_in`, `remember_secret`, ...); the `Operator`
subscribes to their changes and runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from aivenator.domain.kubernetes_port import (
    MANAGED_SECRETS,
    KubeObject,
    KubernetesPort,
)
from aivenator.domain.ownership import OwnershipIndex
from aivenator.domain.references import WORKLOAD_KINDS, WorkloadRefs
from aivenator.entrypoints.runtime.packing import CompactRefs, PackedObjects
from aivenator.entrypoints.runtime.watch_loop import Informer, object_key, object_version
from aivenator.entrypoints.shells.certs import CertCache, slim_secret
from aivenator.entrypoints.shells.metrics import Metrics


def _refs_key(ref: WorkloadRefs) -> tuple[str, str]:
    return (ref.namespace, ref.name)


class Caches:
    def __init__(self, kube: KubernetesPort, metrics: Metrics, watch_timeout: float) -> None:
        self._metrics = metrics

        def restarted(name: str, reason: str) -> None:
            metrics.watch_restarts.labels(resource=name, reason=reason).inc()

        self.apps: Informer[KubeObject] = Informer(
            "AivenApplication",
            kube.list_applications,
            kube.watch_applications,
            object_key,
            object_version,
            watch_timeout=watch_timeout,
            on_restart=restarted,
            codec=PackedObjects(),
        )
        #: Certificate expiry of the managed Secrets, parsed before their values are dropped.
        self.certs = CertCache()

        #: Who owns each managed Secret and Aiven user (`aivenator.domain.ownership`), kept from
        #: the Secret cache's own changes (under its lock), so it always equals a function of it:
        #: the shells look ownership up in O(1) instead of scanning every Secret per pass.
        self.ownership = OwnershipIndex()
        # Only metadata, key names and value digests of managed Secrets stay in memory.
        # (the slim is applied by the informer to what it takes: listed, watched, written through;
        # not to the watch echo of our own write, which it skips)
        self.secrets: Informer[KubeObject] = Informer(
            "Secret",
            lambda: kube.list_secrets(MANAGED_SECRETS),
            lambda rv, timeout: kube.watch_secrets(MANAGED_SECRETS, rv, timeout),
            object_key,
            object_version,
            watch_timeout=watch_timeout,
            on_restart=restarted,
            on_store=self.ownership.apply,
            codec=PackedObjects(),
            transform=self._slim,
        )
        self.workloads: dict[str, Informer[WorkloadRefs]] = {
            kind: Informer(
                kind,
                (lambda k: lambda: kube.list_workload_refs(k))(kind),
                (lambda k: lambda rv, t: kube.watch_workload_refs(k, rv, t))(kind),
                _refs_key,
                watch_timeout=watch_timeout,
                on_restart=restarted,
                codec=CompactRefs(),
            )
            for kind in WORKLOAD_KINDS
        }

    def informers(self) -> list[Informer[Any]]:
        return [self.apps, self.secrets, *self.workloads.values()]

    def synced(self) -> bool:
        return all(i.has_synced for i in self.informers())

    # --- reads the shells are given ----------------------------------------------------------------

    def get_app(self, namespace: str, name: str) -> KubeObject | None:
        return self.apps.get((namespace, name))

    def get_secret(self, namespace: str, name: str) -> KubeObject | None:
        return self.secrets.get((namespace, name))

    def apps_in(self, namespace: str | None) -> Iterator[KubeObject]:
        """Every cached application, or those of one namespace (decoded one at a time)."""
        return self.apps.iterate(namespace)

    def secrets_in(self, namespace: str | None) -> Iterator[KubeObject]:
        """Every cached managed Secret, or those of one namespace (decoded one at a time)."""
        return self.secrets.iterate(namespace)

    def workload_refs(self, namespace: str | None) -> Iterable[WorkloadRefs]:
        for informer in self.workloads.values():
            yield from informer.iterate(namespace)

    # --- writes the shells report, so the next pass sees them before the watch does ----------------

    def remember_secret(self, obj: KubeObject) -> None:
        self.secrets.remember(obj)
        namespace, _ = object_key(obj)
        self._metrics.secrets_managed.labels(namespace=namespace).set(self.secrets.count_in(namespace))

    def _slim(self, obj: KubeObject) -> KubeObject:
        return slim_secret(obj, self.certs)

    def remember_app(self, obj: KubeObject) -> None:
        self.apps.remember(obj)
