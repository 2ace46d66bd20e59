"""The manifests in deploy/ against a real kube-apiserver: they apply, and the CRD behaves."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.integration.real_apiserver import (
    DEPLOY_DIR,
    OPERATOR_NAMESPACE,
    REPO_ROOT,
    AdmissionregistrationV1Api,
    ApiextensionsV1Api,
    AppsV1Api,
    CoreV1Api,
    CustomObjectsApi,
    RealApiserver,
    apply_objects,
    find_assets,
    load_yaml_documents,
    wait_crds_established,
)

pytestmark = pytest.mark.real_apiserver

GROUP, VERSION, PLURAL = "aiven.nais.io", "v1", "aivenapplications"
OWNED_ELSEWHERE = ("chart", "examples")


def own_manifest_files() -> list[Path]:
    return sorted(
        path
        for path in DEPLOY_DIR.rglob("*.yaml")
        if path.relative_to(DEPLOY_DIR).parts[0] not in OWNED_ELSEWHERE
    )


def example_files() -> list[Path]:
    return sorted((DEPLOY_DIR / "examples").glob("*.yaml"))


def kubernetes_objects(path: Path) -> list[dict[str, Any]]:
    """The Kubernetes objects in a file (examples/ also holds non-Kubernetes input such as facts)."""
    return [d for d in load_yaml_documents(path) if {"apiVersion", "kind", "metadata"} <= d.keys()]


@pytest.fixture
def admin(real_apiserver: RealApiserver) -> Iterator[k8s.ApiClient]:
    with real_apiserver.admin_client() as api:
        yield api


@pytest.fixture
def namespace(admin: k8s.ApiClient) -> Iterator[str]:
    name = f"manifests-{uuid.uuid4().hex[:8]}"
    CoreV1Api(admin).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    yield name
    # No namespace controller runs, so the namespace stays Terminating. Its AivenApplications go
    # first: an operator of a later module (the e2e tier, which fails on any 403) would otherwise
    # try to write their Secrets into a terminating namespace and be refused.
    CustomObjectsApi(admin).delete_collection_namespaced_custom_object(GROUP, VERSION, name, PLURAL)
    CoreV1Api(admin).delete_namespace(name)


def remove_admission_policy(admin: k8s.ApiClient) -> None:
    """Other tests write managed Secrets as admin; the policy is only installed where tested."""
    reg = AdmissionregistrationV1Api(admin)
    for doc in load_yaml_documents(DEPLOY_DIR / "admission-policy.yaml"):
        name = doc["metadata"]["name"]
        try:
            if doc["kind"] == "ValidatingAdmissionPolicyBinding":
                reg.delete_validating_admission_policy_binding(name)
            elif doc["kind"] == "ValidatingAdmissionPolicy":
                reg.delete_validating_admission_policy(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def aiven_application(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AivenApplication",
        "metadata": {"name": name},
        "spec": spec,
    }


VALID_SPEC: dict[str, Any] = {
    "secretName": "legacy-secret",
    "protected": True,
    "expiresAt": "2031-01-02T03:04:05Z",
    "kafka": {"pool": "dev-nais-dev", "secretName": "app-kafka"},
    "openSearch": {"instance": "logs", "access": "readwrite", "secretName": "app-opensearch"},
    "valkey": [
        {"instance": "cache", "access": "admin", "secretName": "app-valkey-cache"},
        {"instance": "sessions", "secretName": "app-valkey-sessions"},
    ],
}


def test_every_deploy_manifest_applies_to_a_real_apiserver(admin: k8s.ApiClient) -> None:
    files = own_manifest_files()
    names = {str(p.relative_to(DEPLOY_DIR)) for p in files}
    assert {"crds/aivenapplications.yaml", "rbac.yaml", "operator.yaml", "admission-policy.yaml"} <= names
    try:
        for path in files:
            docs = load_yaml_documents(path)
            assert docs, f"{path} holds no objects"
            applied = apply_objects(admin, docs)
            assert [a.metadata.name for a in applied] == [d["metadata"]["name"] for d in docs], path
    finally:
        remove_admission_policy(admin)

    apps = AppsV1Api(admin)
    deployment = apps.read_namespaced_deployment("aivenator", OPERATOR_NAMESPACE)
    assert deployment.spec.replicas == 2
    assert CoreV1Api(admin).read_namespaced_service("aivenator-metrics", OPERATOR_NAMESPACE).spec.ports
    webhook = CoreV1Api(admin).read_namespaced_service("aivenator-webhook", OPERATOR_NAMESPACE)
    assert [(p.port, p.target_port) for p in webhook.spec.ports] == [(443, "webhook")]


def test_example_manifests_apply_after_creating_their_namespaces(admin: k8s.ApiClient) -> None:
    core = CoreV1Api(admin)
    applied = 0
    for path in example_files():
        docs = kubernetes_objects(path)
        for ns in {d["metadata"].get("namespace") for d in docs} - {None}:
            try:
                core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
            except ApiException as exc:
                if exc.status != 409:
                    raise
        for doc in docs:
            doc["metadata"].setdefault("namespace", "default")
        result = apply_objects(admin, docs)
        assert len(result) == len(docs), path
        applied += len(result)
    assert applied == sum(len(kubernetes_objects(p)) for p in example_files())


def test_operator_pod_template_passes_restricted_pod_security(admin: k8s.ApiClient) -> None:
    """The Deployment's pod, dry-run created in the `restricted`-enforced operator namespace."""
    docs = load_yaml_documents(DEPLOY_DIR / "operator.yaml")
    apply_objects(admin, load_yaml_documents(DEPLOY_DIR / "namespace.yaml"))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    ns = CoreV1Api(admin).read_namespace(OPERATOR_NAMESPACE)
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    template = deployment["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "aivenator-dry-run", "namespace": OPERATOR_NAMESPACE, **template["metadata"]},
        "spec": template["spec"],
    }
    created = CoreV1Api(admin).create_namespaced_pod(OPERATOR_NAMESPACE, pod, dry_run="All")
    container = created.spec.containers[0]
    assert container.security_context.read_only_root_filesystem is True
    assert "--leader-elect" in container.args
    assert any(a.startswith("--aiven-token-file=") for a in container.args)
    assert not any(a.startswith("--aiven-token=") for a in container.args)

    # A pod breaking the restricted profile is refused in that namespace: the check above is real.
    bad = json.loads(json.dumps(pod))
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(ApiException) as refused:
        CoreV1Api(admin).create_namespaced_pod(OPERATOR_NAMESPACE, bad, dry_run="All")
    assert refused.value.status == 403
    assert "allowPrivilegeEscalation" in str(refused.value.body)


def test_aivenapplication_crd_is_established_with_its_names(admin: k8s.ApiClient) -> None:
    wait_crds_established(admin, ["aivenapplications.aiven.nais.io"], timeout=10)
    crd = ApiextensionsV1Api(admin).read_custom_resource_definition("aivenapplications.aiven.nais.io")
    assert crd.spec.names.short_names == ["aivenapp"]
    assert crd.spec.scope == "Namespaced"
    v1, v2 = crd.spec.versions
    assert (v1.name, v1.served, v1.storage, v1.deprecated) == ("v1", True, True, True)
    assert v1.deprecation_warning == "deprecated, use v2"
    assert (v2.name, v2.served, v2.storage, v2.deprecated) == ("v2", True, False, None)
    webhook = crd.spec.conversion.webhook
    assert crd.spec.conversion.strategy == "Webhook"
    assert webhook.conversion_review_versions == ["v1"]
    assert (webhook.client_config.service.name, webhook.client_config.service.path) == (
        "aivenator-webhook",
        "/convert",
    )
    resources = CustomObjectsApi(admin).get_api_resources(GROUP, VERSION).resources
    by_name = {r.name: r for r in resources}
    assert by_name[PLURAL].short_names == ["aivenapp"]
    assert "aivenapplications/status" in by_name


def test_a_valid_aivenapplication_is_accepted_and_stored_as_written(
    admin: k8s.ApiClient, namespace: str
) -> None:
    api = CustomObjectsApi(admin)
    api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, aiven_application("app", VALID_SPEC)
    )
    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "app")
    # No schema defaults: the spec (and so its sync hash) stays exactly as written.
    assert stored["spec"] == VALID_SPEC
    minimal = aiven_application("minimal", {"kafka": {"pool": "dev-nais-dev"}})
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, minimal)


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        (
            {"openSearch": {"instance": "x", "access": "superuser", "secretName": "s"}},
            "spec.openSearch.access",
        ),
        ({"valkey": [{"instance": "x", "access": "READ", "secretName": "s"}]}, "spec.valkey[0].access"),
        ({"kafka": {"secretName": "s"}}, "spec.kafka.pool"),
        ({"expiresAt": "next tuesday"}, "spec.expiresAt"),
        ({"protected": "yes"}, "spec.protected"),
        ({"valkey": {"instance": "x"}}, "spec.valkey"),
    ],
)
def test_an_invalid_aivenapplication_is_rejected(
    admin: k8s.ApiClient, namespace: str, spec: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, aiven_application("bad", spec)
        )
    assert rejected.value.status == 422
    assert complaint in str(rejected.value.body)


def test_unknown_spec_fields_are_pruned(admin: k8s.ApiClient, namespace: str) -> None:
    api = CustomObjectsApi(admin)
    body = aiven_application("pruned", {"kafka": {"pool": "p", "bogus": 1}, "bogus": True})
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "pruned")
    assert stored["spec"] == {"kafka": {"pool": "p"}}


def test_status_is_a_subresource(admin: k8s.ApiClient, namespace: str) -> None:
    api = CustomObjectsApi(admin)
    created = api.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {**aiven_application("st", {"kafka": {"pool": "p"}}), "status": {"synchronizationState": "ignored"}},
    )
    assert "status" not in created  # status is ignored on the main resource
    status = {
        "synchronizationHash": "abc123",
        "synchronizationState": "RolloutComplete",
        "synchronizationTime": "2030-01-01T00:00:00Z",
        "synchronizedGeneration": 1,
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "lastUpdateTime": "2030-01-01T00:00:00Z",
                "reason": "Synchronized",
                "message": "ok",
            }
        ],
    }
    patched = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "st", {"status": status}
    )
    assert patched["status"] == status
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]

    # A spec patch bumps the generation and leaves the status alone.
    after = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "st",
        {"spec": {"protected": True}, "status": {"synchronizationHash": ""}},
    )
    assert after["metadata"]["generation"] == created["metadata"]["generation"] + 1
    assert after["status"]["synchronizationHash"] == "abc123"

    with pytest.raises(ApiException) as rejected:
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, "st", {"status": {"observedGeneration": "one"}}
        )
    assert rejected.value.status == 422


def test_printer_columns_show_secrets_protection_expiry_and_state(
    real_apiserver: RealApiserver, admin: k8s.ApiClient, namespace: str
) -> None:
    api = CustomObjectsApi(admin)
    api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, aiven_application("cols", VALID_SPEC)
    )
    api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "cols",
        {
            "status": {
                "synchronizationState": "RolloutComplete",
                "synchronizationTime": "2030-01-01T00:00:00Z",
            }
        },
    )
    table = real_apiserver.get_json(
        real_apiserver.admin_token,
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/cols",
        accept="application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == [
        "Name",
        "Kafka Secret",
        "OpenSearch Secret",
        "Valkey Secret",
        "Protected",
        "Expires",
        "State",
        "Synced",
        "Age",
    ]
    [row] = table["rows"]
    cells = dict(zip(columns, row["cells"], strict=True))
    assert cells["Kafka Secret"] == "app-kafka"
    assert cells["OpenSearch Secret"] == "app-opensearch"
    # A column prints only the first match of its JSONPath.
    assert cells["Valkey Secret"] == "app-valkey-cache"
    assert cells["Protected"] is True
    assert cells["State"] == "RolloutComplete"


@pytest.mark.parametrize(("kind", "plural"), [("OpenSearch", "opensearches"), ("Valkey", "valkeys")])
def test_aiven_io_fixture_crds_hold_a_running_instance(
    admin: k8s.ApiClient, namespace: str, kind: str, plural: str
) -> None:
    api = CustomObjectsApi(admin)
    body: dict[str, Any] = {
        "apiVersion": "aiven.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": f"{plural}-{namespace}-main"},
        "spec": {"plan": "hobbyist", "project": "dev-nais-dev", "anything": {"nested": [1, 2]}},
    }
    api.create_namespaced_custom_object("aiven.io", "v1alpha1", namespace, plural, body)
    api.patch_namespaced_custom_object_status(
        "aiven.io", "v1alpha1", namespace, plural, body["metadata"]["name"], {"status": {"state": "RUNNING"}}
    )
    got = api.get_namespaced_custom_object(
        "aiven.io", "v1alpha1", namespace, plural, body["metadata"]["name"]
    )
    assert got["status"]["state"] == "RUNNING"
    assert got["spec"]["anything"] == {"nested": [1, 2]}


# --------------------------------------------------------------------------- fixture hygiene

_SERVER_SCRIPT = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.integration.real_apiserver import running_apiserver
with running_apiserver(Path(sys.argv[2])) as server:
    print(server.ca_file.parent, flush=True)
    sys.stdin.readline()  # "exit": the test says when; "hang": the test kills us first
"""


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("ending", ["exit", "hang"])
def test_the_server_leaves_no_process_behind(real_apiserver: RealApiserver, ending: str) -> None:
    """Both on a normal exit and when the test process is SIGKILLed, etcd and apiserver die."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER_SCRIPT, str(REPO_ROOT), str(find_assets()), ending],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    workdir = Path(proc.stdout.readline().strip())
    try:
        assert workdir.name.startswith("aivenator-apiserver-"), workdir
        servers = _children(proc.pid)
        assert len(servers) == 2, servers  # etcd and kube-apiserver
        assert all(_running(p) for p in servers)
        if ending == "hang":
            proc.send_signal(signal.SIGKILL)
        else:
            proc.stdin.write("\n")
            proc.stdin.flush()
        proc.wait(timeout=60)
        deadline = time.monotonic() + 15
        while any(_running(p) for p in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in servers if _running(p)]
        if ending == "exit":
            assert not workdir.exists()
    finally:
        proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_server_is_the_pinned_kubernetes_version(real_apiserver: RealApiserver) -> None:
    """hack/kube-tools pins k8s.io/kubernetes and every staging module at the matching v0.Y.Z."""
    gomod = (REPO_ROOT / "hack" / "kube-tools" / "apiserver" / "go.mod").read_text()
    [pinned] = re.findall(r"^require k8s\.io/kubernetes (v1\.\d+\.\d+)$", gomod, re.MULTILINE)
    staging = re.findall(r"^\s+(k8s\.io/\S+) => (k8s\.io/\S+) (v\S+)$", gomod, re.MULTILINE)
    assert len(staging) >= 30
    assert all(left == right and version == "v0" + pinned[2:] for left, right, version in staging)
    assert real_apiserver.version == pinned  # stamped by the build, not v0.0.0-master
    assert 0 < real_apiserver.startup_seconds < 120.0


# --------------------------------------------------------------------------- bounded status


def _largest_admitted_spec() -> dict[str, Any]:
    """Every list at its maxItems and every string at its maxLength (names valid where they can be)."""
    from aivenator.domain import limits

    def name(prefix: str, length: int) -> str:
        return (prefix + "-" + "a" * length)[:length]

    return {
        "secretName": name("legacy", limits.MAX_SECRET_NAME),
        "protected": True,
        "expiresAt": "2031-01-02T03:04:05.123456789+01:00",
        "kafka": {"pool": name("pool", limits.MAX_NAME), "secretName": name("kafka", limits.MAX_SECRET_NAME)},
        "openSearch": {
            "instance": name("os", limits.MAX_NAME),
            "access": "readwrite",
            "secretName": name("opensearch", limits.MAX_SECRET_NAME),
        },
        "valkey": [
            {
                "instance": name(f"v{i}", limits.MAX_NAME),
                "access": "admin",
                "secretName": name(f"valkey{i}", limits.MAX_SECRET_NAME),
            }
            for i in range(limits.MAX_VALKEY)
        ],
    }


def test_the_crd_refuses_one_valkey_entry_more_and_one_character_more(
    admin: k8s.ApiClient, namespace: str
) -> None:
    from aivenator.domain import limits

    api = CustomObjectsApi(admin)
    spec = _largest_admitted_spec()
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, aiven_application("largest", spec))
    too_many = {**spec, "valkey": [*spec["valkey"], spec["valkey"][0]]}
    too_long = {**spec, "kafka": {**spec["kafka"], "pool": "p" * (limits.MAX_NAME + 1)}}
    for body, complaint in ((too_many, "spec.valkey"), (too_long, "spec.kafka.pool")):
        with pytest.raises(ApiException) as rejected:
            api.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, aiven_application("x", body)
            )
        assert rejected.value.status == 422
        assert complaint in str(rejected.value.body)


def test_the_status_of_the_largest_admitted_spec_is_written(
    real_apiserver: RealApiserver, admin: k8s.ApiClient, namespace: str
) -> None:
    """The operator's own status write (production adapter, shipped RBAC) for the worst cases."""
    from datetime import UTC, datetime

    from aivenator.adapters.kubernetes_api import KubernetesApi
    from aivenator.domain.facts import ServiceType
    from aivenator.domain.parse import parse_application
    from aivenator.domain.sync import (
        ServiceResult,
        ServiceState,
        compute_invalid_status,
        compute_status,
        status_events,
        status_patch_body,
    )
    from returns.result import Failure, Success

    now = datetime(2031, 1, 1, tzinfo=UTC)
    api = CustomObjectsApi(admin)
    operator = KubernetesApi.from_kubeconfig(str(real_apiserver.kubeconfig_operator))
    error = "Aiven said no: " + "e" * 4000

    # 1. The largest admitted spec: too long for Aiven names, so every entry is a problem.
    largest = _largest_admitted_spec()
    raw = api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, aiven_application("big", largest)
    )
    parsed = parse_application(raw, frozenset({"dev-nais-dev"}))
    assert isinstance(parsed, Failure)
    problems = [str(p) for p in parsed.failure().problems]
    invalid = compute_invalid_status(1, problems, now, None)

    # 2. The largest valid spec, every section failing with a long Aiven error and a name note.
    valid = {
        **largest,
        "kafka": {"pool": "dev-nais-dev", "secretName": largest["kafka"]["secretName"]},
        "openSearch": {**largest["openSearch"], "instance": "o" * 63},
        "valkey": [
            {**v, "instance": f"v{i}-" + "i" * (60 - len(str(i)))} for i, v in enumerate(largest["valkey"])
        ],
    }
    raw = api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, aiven_application("valid", valid)
    )
    ok = parse_application(raw, frozenset({"dev-nais-dev"}))
    assert isinstance(ok, Success), ok
    app = ok.unwrap().app
    results = [
        ServiceResult(ServiceType.KAFKA, ServiceState.AIVEN_FAILURE, "", error, name_note=error),
        ServiceResult(ServiceType.OPENSEARCH, ServiceState.AIVEN_FAILURE, "o" * 63, error, name_note=error),
        *(
            ServiceResult(ServiceType.VALKEY, ServiceState.AIVEN_FAILURE, v.instance, error, name_note=error)
            for v in app.valkey
        ),
    ]
    failing = compute_status(app, results, now, None)

    for name, status in (("big", invalid), ("valid", failing)):
        body = status_patch_body(status)["status"]
        size = len(json.dumps({"status": body}).encode())
        written = operator.patch_application_status(namespace, name, body)
        assert isinstance(written, Success), written
        stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        assert stored["status"]["conditions"] == body["conditions"]
        print(
            f"\nstatus of the largest admitted spec ({name}): {size} bytes, "
            f"{len(status.conditions)} conditions, {len(status_events(None, status))} events"
        )
