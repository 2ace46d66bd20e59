"""deploy/rbac.yaml and deploy/admission-policy.yaml, enforced by a real kube-apiserver.

The operator token authenticates as system:serviceaccount:aivenator:aivenator, so only the
bindings in deploy/rbac.yaml grant it anything: a missing verb fails here for real, and so
does an unneeded one that was granted.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from tests.integration.real_apiserver import (
    DEPLOY_DIR,
    OPERATOR_NAMESPACE,
    AdmissionregistrationV1Api,
    AppsV1Api,
    AuthenticationV1Api,
    AuthorizationV1Api,
    BatchV1Api,
    CoordinationV1Api,
    CoreV1Api,
    CustomObjectsApi,
    EventsV1Api,
    RealApiserver,
    apply_file,
    load_yaml_documents,
)

pytestmark = pytest.mark.real_apiserver

MANAGED_LABEL = {"type": "aivenator.aiven.nais.io"}
FINALIZER = "aivenator.aiven.nais.io/finalizer"


@pytest.fixture(scope="module")
def admin(real_apiserver: RealApiserver) -> Iterator[k8s.ApiClient]:
    with real_apiserver.admin_client() as api:
        yield api


@pytest.fixture(scope="module")
def operator(real_apiserver: RealApiserver) -> Iterator[k8s.ApiClient]:
    with real_apiserver.operator_client() as api:
        yield api


@pytest.fixture(scope="module")
def tenant_ns(admin: k8s.ApiClient) -> str:
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    CoreV1Api(admin).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


def status_of(call: Callable[[], Any]) -> int:
    """HTTP status of a call: 200 when it succeeds, the error status otherwise."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


# --------------------------------------------------------------------------- access reviews

# (verb, group, resource, subresource, namespace) -> allowed?
NEEDED = [
    ("list", "aiven.nais.io", "aivenapplications", "", ""),
    ("watch", "aiven.nais.io", "aivenapplications", "", ""),
    ("delete", "aiven.nais.io", "aivenapplications", "", "team-a"),
    ("patch", "aiven.nais.io", "aivenapplications", "status", "team-a"),
    ("list", "", "secrets", "", ""),
    ("watch", "", "secrets", "", ""),
    ("get", "", "secrets", "", "team-a"),
    ("create", "", "secrets", "", "team-a"),
    ("patch", "", "secrets", "", "team-a"),
    ("delete", "", "secrets", "", "team-a"),
    ("create", "", "events", "", "team-a"),
    ("get", "coordination.k8s.io", "leases", "", OPERATOR_NAMESPACE),
    ("create", "coordination.k8s.io", "leases", "", OPERATOR_NAMESPACE),
    ("update", "coordination.k8s.io", "leases", "", OPERATOR_NAMESPACE),
    ("get", "aiven.io", "opensearches", "", "team-a"),
    ("get", "aiven.io", "valkeys", "", "team-a"),
    ("list", "", "pods", "", ""),
    ("watch", "", "pods", "", ""),
    *[("list", "apps", r, "", "") for r in ("replicasets", "deployments", "statefulsets", "daemonsets")],
    *[("watch", "apps", r, "", "") for r in ("replicasets", "deployments", "statefulsets", "daemonsets")],
    *[("list", "batch", r, "", "") for r in ("jobs", "cronjobs")],
    *[("watch", "batch", r, "", "") for r in ("jobs", "cronjobs")],
]

NOT_NEEDED = [
    # Trimmed to the calls the code makes: reads go through list+watch caches, writes are
    # merge patches, events are created through the core API only.
    ("get", "aiven.nais.io", "aivenapplications", "", "team-a"),
    ("patch", "aiven.nais.io", "aivenapplications", "", "team-a"),
    ("update", "aiven.nais.io", "aivenapplications", "status", "team-a"),
    ("patch", "", "events", "", "team-a"),
    ("create", "events.k8s.io", "events", "", "team-a"),
    ("list", "aiven.io", "opensearches", "", ""),
    ("watch", "aiven.io", "valkeys", "", ""),
    ("get", "", "pods", "", "team-a"),
    *[("get", "apps", r, "", "team-a") for r in ("replicasets", "deployments", "statefulsets", "daemonsets")],
    *[("get", "batch", r, "", "team-a") for r in ("jobs", "cronjobs")],
    ("create", "aiven.nais.io", "aivenapplications", "", "team-a"),
    ("update", "aiven.nais.io", "aivenapplications", "", "team-a"),
    ("deletecollection", "aiven.nais.io", "aivenapplications", "", "team-a"),
    ("update", "", "secrets", "", "team-a"),
    ("deletecollection", "", "secrets", "", "team-a"),
    ("list", "", "events", "", ""),
    ("delete", "", "events", "", "team-a"),
    ("create", "coordination.k8s.io", "leases", "", "team-a"),
    ("update", "coordination.k8s.io", "leases", "", "kube-system"),
    ("delete", "coordination.k8s.io", "leases", "", OPERATOR_NAMESPACE),
    ("list", "coordination.k8s.io", "leases", "", ""),
    ("create", "aiven.io", "opensearches", "", "team-a"),
    ("patch", "aiven.io", "valkeys", "", "team-a"),
    ("update", "aiven.io", "valkeys", "status", "team-a"),
    ("delete", "", "pods", "", "team-a"),
    ("create", "", "pods", "", "team-a"),
    ("create", "", "pods", "exec", "team-a"),
    ("create", "apps", "deployments", "", "team-a"),
    ("patch", "apps", "deployments", "", "team-a"),
    ("delete", "batch", "jobs", "", "team-a"),
    ("list", "", "configmaps", "", ""),
    ("get", "", "configmaps", "", "team-a"),
    ("update", "", "nodes", "", ""),
    ("list", "", "nodes", "", ""),
    ("list", "", "namespaces", "", ""),
    ("create", "", "serviceaccounts", "token", OPERATOR_NAMESPACE),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", "", ""),
    ("impersonate", "", "users", "", ""),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions", "", ""),
    ("delete", "admissionregistration.k8s.io", "validatingadmissionpolicybindings", "", ""),
    ("*", "*", "*", "", ""),
]


def review(api: k8s.ApiClient, verb: str, group: str, resource: str, sub: str, ns: str) -> bool:
    body = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=k8s.V1ResourceAttributes(
                verb=verb, group=group, resource=resource, subresource=sub or None, namespace=ns or None
            )
        )
    )
    result = AuthorizationV1Api(api).create_self_subject_access_review(body)
    return bool(result.status.allowed)


def test_the_operator_token_is_the_service_account(operator: k8s.ApiClient) -> None:
    review_ = AuthenticationV1Api(operator).create_self_subject_review(k8s.V1SelfSubjectReview())
    user = review_.status.user_info
    assert user.username == "system:serviceaccount:aivenator:aivenator"
    assert "system:serviceaccounts:aivenator" in user.groups


@pytest.mark.parametrize(("verb", "group", "resource", "sub", "ns"), NEEDED)
def test_operator_may_do_what_it_needs(
    operator: k8s.ApiClient, verb: str, group: str, resource: str, sub: str, ns: str
) -> None:
    assert review(operator, verb, group, resource, sub, ns)


@pytest.mark.parametrize(("verb", "group", "resource", "sub", "ns"), NOT_NEEDED)
def test_operator_may_not_do_what_it_does_not_need(
    operator: k8s.ApiClient, verb: str, group: str, resource: str, sub: str, ns: str
) -> None:
    assert not review(operator, verb, group, resource, sub, ns)


def test_the_cluster_role_grants_nothing_beyond_the_reviewed_table() -> None:
    """Every (group, resource, verb) the manifest grants is in NEEDED, so the table is complete."""
    granted = set()
    for doc in load_yaml_documents(DEPLOY_DIR / "rbac.yaml"):
        if doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            assert "*" not in (group, resource, verb), rule
                            granted.add((group, resource, verb))
    reviewed = {(g, f"{r}/{s}" if s else r, v) for v, g, r, s, _ in NEEDED}
    assert granted == reviewed


# --------------------------------------------------------------------------- real calls


def test_operator_lists_watches_patches_status_and_deletes_aivenapplications(
    admin: k8s.ApiClient, operator: k8s.ApiClient, tenant_ns: str
) -> None:
    as_admin, as_op = CustomObjectsApi(admin), CustomObjectsApi(operator)
    body = {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {"name": "app"},
        "spec": {"kafka": {"pool": "dev-nais-dev", "secretName": "app-kafka"}},
    }
    as_admin.create_namespaced_custom_object("aiven.nais.io", "v1", tenant_ns, "aivenapplications", body)

    listed = as_op.list_cluster_custom_object("aiven.nais.io", "v1", "aivenapplications")
    assert any(i["metadata"]["name"] == "app" for i in listed["items"])
    events = list(
        watch.Watch().stream(  # type: ignore[no-untyped-call]  # kubernetes.watch is unannotated
            as_op.list_cluster_custom_object,
            "aiven.nais.io",
            "v1",
            "aivenapplications",
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=1,
        )
    )
    assert all(e["type"] != "ERROR" for e in events)

    status = as_op.patch_namespaced_custom_object_status(
        "aiven.nais.io",
        "v1",
        tenant_ns,
        "aivenapplications",
        "app",
        {"status": {"synchronizationState": "RolloutComplete", "synchronizationHash": "h"}},
    )
    assert status["status"]["synchronizationState"] == "RolloutComplete"
    assert (
        status_of(
            lambda: as_op.patch_namespaced_custom_object(
                "aiven.nais.io",
                "v1",
                tenant_ns,
                "aivenapplications",
                "app",
                {"metadata": {"annotations": {"touched": "yes"}}},
            )
        )
        == 403
    )
    assert (
        status_of(
            lambda: as_op.create_namespaced_custom_object(
                "aiven.nais.io", "v1", tenant_ns, "aivenapplications", {**body, "metadata": {"name": "other"}}
            )
        )
        == 403
    )
    assert (
        status_of(
            lambda: as_op.get_namespaced_custom_object(
                "aiven.nais.io", "v1", tenant_ns, "aivenapplications", "app"
            )
        )
        == 403
    )
    as_op.delete_namespaced_custom_object("aiven.nais.io", "v1", tenant_ns, "aivenapplications", "app")
    assert (
        status_of(
            lambda: as_admin.get_namespaced_custom_object(
                "aiven.nais.io", "v1", tenant_ns, "aivenapplications", "app"
            )
        )
        == 404
    )


def test_operator_manages_secrets_by_create_patch_and_delete(operator: k8s.ApiClient, tenant_ns: str) -> None:
    core = CoreV1Api(operator)
    secret = k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="app-kafka", labels=dict(MANAGED_LABEL), finalizers=[FINALIZER]),
        type="Opaque",
        string_data={"KAFKA_BROKERS": "broker:1234"},
    )
    core.create_namespaced_secret(tenant_ns, secret)
    assert core.read_namespaced_secret("app-kafka", tenant_ns).metadata.finalizers == [FINALIZER]
    listed = core.list_secret_for_all_namespaces(label_selector="type=aivenator.aiven.nais.io")
    assert any(s.metadata.name == "app-kafka" for s in listed.items)
    core.patch_namespaced_secret("app-kafka", tenant_ns, {"metadata": {"annotations": {"x": "y"}}})
    current = core.read_namespaced_secret("app-kafka", tenant_ns)
    assert status_of(lambda: core.replace_namespaced_secret("app-kafka", tenant_ns, current)) == 403
    core.delete_namespaced_secret("app-kafka", tenant_ns)
    assert core.read_namespaced_secret("app-kafka", tenant_ns).metadata.deletion_timestamp is not None
    core.patch_namespaced_secret("app-kafka", tenant_ns, {"metadata": {"finalizers": None}})
    assert status_of(lambda: core.read_namespaced_secret("app-kafka", tenant_ns)) == 404


def test_operator_creates_core_events_only(operator: k8s.ApiClient, tenant_ns: str) -> None:
    ref = k8s.V1ObjectReference(
        api_version="aiven.nais.io/v1", kind="AivenApplication", name="app", namespace=tenant_ns
    )
    core_event = k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(name=f"app.{uuid.uuid4().hex[:10]}"),
        involved_object=ref,
        reason="Synchronized",
        message="credentials written",
        type="Normal",
        source=k8s.V1EventSource(component="aivenator"),
    )
    created = CoreV1Api(operator).create_namespaced_event(tenant_ns, core_event)
    name = created.metadata.name
    assert status_of(lambda: CoreV1Api(operator).patch_namespaced_event(name, tenant_ns, {"count": 2})) == 403
    new_event = k8s.EventsV1Event(
        metadata=k8s.V1ObjectMeta(name=f"app.{uuid.uuid4().hex[:10]}"),
        event_time=datetime.datetime.now(datetime.UTC),
        reporting_controller="aiven.nais.io/aivenator",
        reporting_instance="aivenator-0",
        action="Synchronize",
        reason="Synchronized",
        regarding=ref,
        type="Normal",
        note="credentials written",
    )
    assert status_of(lambda: EventsV1Api(operator).create_namespaced_event(tenant_ns, new_event)) == 403
    assert status_of(lambda: CoreV1Api(operator).list_namespaced_event(tenant_ns)) == 403


def test_operator_holds_its_lease_only_in_its_own_namespace(operator: k8s.ApiClient, tenant_ns: str) -> None:
    coord = CoordinationV1Api(operator)
    name = f"aivenator-{uuid.uuid4().hex[:6]}"
    lease = k8s.V1Lease(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1LeaseSpec(holder_identity="pod-a", lease_duration_seconds=15),
    )
    coord.create_namespaced_lease(OPERATOR_NAMESPACE, lease)
    current = coord.read_namespaced_lease(name, OPERATOR_NAMESPACE)
    current.spec.holder_identity = "pod-b"
    updated = coord.replace_namespaced_lease(name, OPERATOR_NAMESPACE, current)
    assert updated.spec.holder_identity == "pod-b"
    assert status_of(lambda: coord.create_namespaced_lease(tenant_ns, lease)) == 403
    assert status_of(lambda: coord.delete_namespaced_lease(name, OPERATOR_NAMESPACE)) == 403


def test_operator_reads_workloads_for_the_janitor(operator: k8s.ApiClient, tenant_ns: str) -> None:
    core, apps, batch = CoreV1Api(operator), AppsV1Api(operator), BatchV1Api(operator)
    for call in (
        core.list_pod_for_all_namespaces,
        apps.list_replica_set_for_all_namespaces,
        apps.list_deployment_for_all_namespaces,
        apps.list_stateful_set_for_all_namespaces,
        apps.list_daemon_set_for_all_namespaces,
        batch.list_job_for_all_namespaces,
        batch.list_cron_job_for_all_namespaces,
    ):
        assert status_of(call) == 200, call
    assert status_of(lambda: core.list_namespaced_pod(tenant_ns)) == 200


def test_operator_reads_aiven_io_instances(
    admin: k8s.ApiClient, operator: k8s.ApiClient, tenant_ns: str
) -> None:
    for kind, plural in (("OpenSearch", "opensearches"), ("Valkey", "valkeys")):
        body = {"apiVersion": "aiven.io/v1alpha1", "kind": kind, "metadata": {"name": "main"}, "spec": {}}
        CustomObjectsApi(admin).create_namespaced_custom_object(
            "aiven.io", "v1alpha1", tenant_ns, plural, body
        )
        got = CustomObjectsApi(operator).get_namespaced_custom_object(
            "aiven.io", "v1alpha1", tenant_ns, plural, "main"
        )
        assert got["kind"] == kind
        as_op = CustomObjectsApi(operator)
        assert status_of(partial(as_op.list_cluster_custom_object, "aiven.io", "v1alpha1", plural)) == 403
        assert (
            status_of(
                partial(
                    as_op.delete_namespaced_custom_object, "aiven.io", "v1alpha1", tenant_ns, plural, "main"
                )
            )
            == 403
        )


def test_operator_is_denied_what_it_does_not_need(operator: k8s.ApiClient, tenant_ns: str) -> None:
    core, apps = CoreV1Api(operator), AppsV1Api(operator)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "evil"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    assert status_of(lambda: core.delete_namespaced_pod("any", tenant_ns)) == 403
    assert status_of(lambda: apps.create_namespaced_deployment(tenant_ns, deployment)) == 403
    assert status_of(lambda: core.list_config_map_for_all_namespaces()) == 403
    assert status_of(lambda: core.patch_node("node-1", {"metadata": {"labels": {"x": "y"}}})) == 403
    assert status_of(lambda: core.list_namespace()) == 403
    assert status_of(lambda: core.delete_collection_namespaced_secret(tenant_ns)) == 403


# --------------------------------------------------------------------------- admission policy


def _managed_secret(name: str, **extra_annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": {**MANAGED_LABEL, "app": "app", "team": "t"},
            "annotations": {
                "kafka.aiven.nais.io/serviceUser": "t_app_0123abcd_abc",
                "kafka.aiven.nais.io/pool": "dev-nais-dev",
                "aivenator.aiven.nais.io/protected": "false",
                "cache.valkey.aiven.nais.io/serviceUser": "app-r-abc",
                **extra_annotations,
            },
            "finalizers": [FINALIZER],
        },
        "type": "Opaque",
        "stringData": {"KAFKA_BROKERS": "broker:1234"},
    }


def _policy_enforced(admin: k8s.ApiClient, ns: str) -> bool:
    probe = _managed_secret(f"probe-{uuid.uuid4().hex[:6]}")
    return status_of(lambda: CoreV1Api(admin).create_namespaced_secret(ns, probe, dry_run="All")) == 403


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def admission_policy(admin: k8s.ApiClient, tenant_ns: str) -> Iterator[None]:
    """Installed only for these tests: other tests write managed Secrets as admin."""
    apply_file(admin, DEPLOY_DIR / "admission-policy.yaml")
    _wait_for(lambda: _policy_enforced(admin, tenant_ns), "the admission policy to take effect")
    yield
    reg = AdmissionregistrationV1Api(admin)
    for doc in load_yaml_documents(DEPLOY_DIR / "admission-policy.yaml"):
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            reg.delete_validating_admission_policy_binding(doc["metadata"]["name"])
        else:
            reg.delete_validating_admission_policy(doc["metadata"]["name"])
    _wait_for(lambda: not _policy_enforced(admin, tenant_ns), "the admission policy to be removed")


@pytest.fixture
def managed(admission_policy: None, operator: k8s.ApiClient, tenant_ns: str) -> Iterator[str]:
    """A managed Secret created by the operator (allowed), removed by the operator afterwards."""
    name = f"managed-{uuid.uuid4().hex[:6]}"
    CoreV1Api(operator).create_namespaced_secret(tenant_ns, _managed_secret(name))
    yield name
    core = CoreV1Api(operator)
    try:
        core.patch_namespaced_secret(name, tenant_ns, {"metadata": {"finalizers": None}})
        core.delete_namespaced_secret(name, tenant_ns)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _admin_patch(admin: k8s.ApiClient, ns: str, name: str, patch: dict[str, Any]) -> int:
    return status_of(lambda: CoreV1Api(admin).patch_namespaced_secret(name, ns, patch))


@pytest.mark.parametrize(
    ("change", "patch"),
    [
        ("remove the managed label", {"metadata": {"labels": {"type": None}}}),
        ("change the managed label", {"metadata": {"labels": {"type": "something-else"}}}),
        ("remove the finalizer", {"metadata": {"finalizers": None}}),
        (
            "change the kafka user",
            {"metadata": {"annotations": {"kafka.aiven.nais.io/serviceUser": "victim"}}},
        ),
        ("remove the kafka user", {"metadata": {"annotations": {"kafka.aiven.nais.io/serviceUser": None}}}),
        (
            "add an opensearch user",
            {"metadata": {"annotations": {"opensearch.aiven.nais.io/serviceUser": "v"}}},
        ),
        (
            "change a valkey user",
            {"metadata": {"annotations": {"cache.valkey.aiven.nais.io/serviceUser": "v"}}},
        ),
        ("add a valkey user", {"metadata": {"annotations": {"other.valkey.aiven.nais.io/serviceUser": "v"}}}),
        ("add the valkey project", {"metadata": {"annotations": {"valkey.aiven.nais.io/project": "p"}}}),
        ("unprotect", {"metadata": {"annotations": {"aivenator.aiven.nais.io/protected": "true"}}}),
    ],
)
def test_admin_may_not_change_managed_metadata(
    admin: k8s.ApiClient, tenant_ns: str, managed: str, change: str, patch: dict[str, Any]
) -> None:
    assert _admin_patch(admin, tenant_ns, managed, patch) == 403, change
    after = CoreV1Api(admin).read_namespaced_secret(managed, tenant_ns)
    assert after.metadata.labels["type"] == "aivenator.aiven.nais.io"
    assert after.metadata.finalizers == [FINALIZER]
    assert after.metadata.annotations["kafka.aiven.nais.io/serviceUser"] == "t_app_0123abcd_abc"


def test_denial_names_the_rule(admin: k8s.ApiClient, tenant_ns: str, managed: str) -> None:
    with pytest.raises(ApiException) as denied:
        CoreV1Api(admin).patch_namespaced_secret(managed, tenant_ns, {"metadata": {"labels": {"type": None}}})
    assert "only aivenator may" in str(denied.value.body)


def test_admin_may_change_unmanaged_metadata_and_data_of_a_managed_secret(
    admin: k8s.ApiClient, tenant_ns: str, managed: str
) -> None:
    patch = {
        "metadata": {"labels": {"extra": "1"}, "annotations": {"example.com/note": "hi"}},
        "stringData": {"OTHER": "value"},
    }
    assert _admin_patch(admin, tenant_ns, managed, patch) == 200


def test_admin_may_not_create_a_managed_secret(
    admission_policy: None, admin: k8s.ApiClient, tenant_ns: str
) -> None:
    core = CoreV1Api(admin)
    assert status_of(lambda: core.create_namespaced_secret(tenant_ns, _managed_secret("forged"))) == 403
    only_finalizer = _managed_secret("forged-finalizer")
    del only_finalizer["metadata"]["labels"]
    assert status_of(lambda: core.create_namespaced_secret(tenant_ns, only_finalizer)) == 403


def test_admin_may_not_mark_an_unmanaged_secret_as_managed(
    admission_policy: None, admin: k8s.ApiClient, tenant_ns: str
) -> None:
    core = CoreV1Api(admin)
    name = f"plain-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_secret(tenant_ns, {"metadata": {"name": name}, "stringData": {"a": "b"}})
    assert _admin_patch(admin, tenant_ns, name, {"metadata": {"labels": dict(MANAGED_LABEL)}}) == 403
    assert _admin_patch(admin, tenant_ns, name, {"metadata": {"finalizers": [FINALIZER]}}) == 403


def test_a_secret_without_the_label_is_unaffected(
    admission_policy: None, admin: k8s.ApiClient, tenant_ns: str
) -> None:
    core = CoreV1Api(admin)
    name = f"unlabelled-{uuid.uuid4().hex[:6]}"
    body = _managed_secret(name)
    del body["metadata"]["labels"]["type"]
    body["metadata"]["finalizers"] = []
    core.create_namespaced_secret(tenant_ns, body)
    assert (
        _admin_patch(
            admin,
            tenant_ns,
            name,
            {"metadata": {"annotations": {"kafka.aiven.nais.io/serviceUser": "changed"}}},
        )
        == 200
    )
    assert _admin_patch(admin, tenant_ns, name, {"metadata": {"labels": {"type": "other"}}}) == 200
    core.delete_namespaced_secret(name, tenant_ns)


def test_operator_may_change_and_release_its_secret(
    operator: k8s.ApiClient, tenant_ns: str, managed: str
) -> None:
    core = CoreV1Api(operator)
    core.patch_namespaced_secret(
        managed,
        tenant_ns,
        {"metadata": {"annotations": {"kafka.aiven.nais.io/serviceUser": "t_app_0123abcd_xyz"}}},
    )
    core.patch_namespaced_secret(
        managed, tenant_ns, {"metadata": {"labels": {"type": None}, "finalizers": None}}
    )
    after = core.read_namespaced_secret(managed, tenant_ns)
    assert "type" not in (after.metadata.labels or {})
    assert not after.metadata.finalizers


def test_deleting_a_managed_secret_stays_allowed_and_waits_for_the_operator(
    admin: k8s.ApiClient, operator: k8s.ApiClient, tenant_ns: str, managed: str
) -> None:
    CoreV1Api(admin).delete_namespaced_secret(managed, tenant_ns)
    terminating = CoreV1Api(admin).read_namespaced_secret(managed, tenant_ns)
    assert terminating.metadata.deletion_timestamp is not None
    # Only the operator may release it, after cleaning up the Aiven users.
    assert _admin_patch(admin, tenant_ns, managed, {"metadata": {"finalizers": None}}) == 403
    CoreV1Api(operator).patch_namespaced_secret(managed, tenant_ns, {"metadata": {"finalizers": None}})
    assert status_of(lambda: CoreV1Api(admin).read_namespaced_secret(managed, tenant_ns)) == 404
