"""aiven.nais.io v1 and v2 on a real kube-apiserver, converted by our webhook over HTTPS.

The CRD from deploy/ is pointed at a webhook on 127.0.0.1 (clientConfig.url, caBundle = a test
CA made here): first the in-process `WebhookServer`, then the one `aivenator run
--webhook-address` serves. The apiserver calls it whenever a client uses the version that is
not stored (v1 is the storage version).
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aivenator.adapters.fakes.aiven import FakeAiven, FakeAivenServer
from aivenator.entrypoints.runtime.webhook import CertificateFiles, WebhookServer
from kubernetes import client as k8s
from kubernetes.client import ApiextensionsV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from tests.integration import test_e2e_real_apiserver as e2e
from tests.integration.real_apiserver import OPERATOR_NAMESPACE, load_yaml_documents
from tests.integration.test_e2e_real_apiserver import (
    PROJECT,
    Operators,
    converged,
    new_namespace,
    read_secret,
    user_of,
    wait_for,
)
from tests.webhook_tls import WebhookTLS, make_webhook_tls

pytestmark = pytest.mark.real_apiserver

# The end-to-end tier's fixtures: the admin client, the Aiven simulator, `aivenator run` processes.
admin = e2e.admin
aiven = e2e.aiven
operators = e2e.operators

GROUP, PLURAL, CRD = "aiven.nais.io", "aivenapplications", "aivenapplications.aiven.nais.io"
REPO = Path(__file__).resolve().parents[2]


def get(api: CustomObjectsApi, version: str, namespace: str, name: str) -> dict[str, Any]:
    got: Any = api.get_namespaced_custom_object(GROUP, version, namespace, PLURAL, name)
    return dict(got)


def listed(api: CustomObjectsApi, version: str, namespace: str) -> list[dict[str, Any]]:
    got: Any = api.list_namespaced_custom_object(GROUP, version, namespace, PLURAL)
    return list(got["items"])


def point_crd_at(admin: k8s.ApiClient, url: str, ca_pem: bytes) -> None:
    patch = {
        "spec": {
            "conversion": {
                "strategy": "Webhook",
                "webhook": {
                    "conversionReviewVersions": ["v1"],
                    "clientConfig": {
                        "url": url,
                        "caBundle": base64.b64encode(ca_pem).decode(),
                        "service": None,
                    },
                },
            }
        }
    }
    ApiextensionsV1Api(admin).patch_custom_resource_definition(CRD, patch)


def restore_crd(admin: k8s.ApiClient) -> None:
    source = load_yaml_documents(REPO / "deploy" / "crds" / "aivenapplications.yaml")[0]
    conversion = source["spec"]["conversion"]
    conversion["webhook"]["clientConfig"].update({"url": None, "caBundle": None})
    ApiextensionsV1Api(admin).patch_custom_resource_definition(CRD, {"spec": {"conversion": conversion}})


def wait_converting(admin: k8s.ApiClient, namespace: str) -> None:
    """The apiserver picks up a changed CRD asynchronously: wait until a v2 read converts."""
    api = CustomObjectsApi(admin)
    body = app_body("v1", namespace, "probe", {"secretName": "p", "kafka": {"pool": PROJECT}})
    api.create_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, body)
    wait_for(
        "the apiserver to call the new webhook",
        lambda: _converts(api, namespace),
        [],
        timeout=30,
    )
    api.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "probe")


def _converts(api: CustomObjectsApi, namespace: str) -> bool:
    try:
        got = get(api, "v2", namespace, "probe")
    except ApiException:
        return False
    return bool(got["spec"].get("kafka", {}).get("secretName") == "p")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> WebhookTLS:
    return make_webhook_tls(tmp_path_factory.mktemp("webhook-tls"))


@pytest.fixture(scope="module")
def in_process_webhook(admin: k8s.ApiClient, tls: WebhookTLS) -> Iterator[WebhookServer]:
    webhook = WebhookServer("127.0.0.1", 0, CertificateFiles(str(tls.cert_file), str(tls.key_file)))
    webhook.start()
    point_crd_at(admin, webhook.url, tls.ca_pem)
    try:
        yield webhook
    finally:
        restore_crd(admin)
        webhook.stop()


@pytest.fixture
def namespace(admin: k8s.ApiClient) -> str:
    return new_namespace(admin, "conv")


def app_body(version: str, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "AivenApplication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


V2_SPEC: dict[str, Any] = {
    "protected": True,
    "kafka": {"pool": PROJECT, "secretName": "app-kafka"},
    "openSearch": {"instance": "logs", "access": "read", "secretName": "app-os"},
    "valkey": [{"instance": "cache", "secretName": "app-valkey"}],
}


def test_created_as_v2_reads_as_v1_and_back_and_lists_in_both(
    in_process_webhook: WebhookServer, admin: k8s.ApiClient, namespace: str
) -> None:
    wait_converting(admin, namespace)
    api = CustomObjectsApi(admin)
    api.create_namespaced_custom_object(
        GROUP, "v2", namespace, PLURAL, app_body("v2", namespace, "a", V2_SPEC)
    )
    as_v1 = get(api, "v1", namespace, "a")
    assert as_v1["apiVersion"] == f"{GROUP}/v1"
    assert as_v1["spec"] == V2_SPEC  # v2 -> v1 changes only apiVersion
    as_v2 = get(api, "v2", namespace, "a")
    assert as_v2["apiVersion"] == f"{GROUP}/v2" and as_v2["spec"] == V2_SPEC

    legacy = {"secretName": "legacy", "kafka": {"pool": PROJECT}, "valkey": [{"instance": "c"}]}
    api.create_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, app_body("v1", namespace, "b", legacy)
    )
    b2 = get(api, "v2", namespace, "b")
    assert b2["spec"] == {"kafka": {"pool": PROJECT, "secretName": "legacy"}, "valkey": [{"instance": "c"}]}

    for version in ("v1", "v2"):
        items = listed(api, version, namespace)
        assert sorted(i["metadata"]["name"] for i in items) == ["a", "b"], version
        assert {i["apiVersion"] for i in items} == {f"{GROUP}/{version}"}
    # An update through v2 is stored (as v1) and visible in both versions.
    as_v2["spec"]["kafka"]["secretName"] = "app-kafka-2"
    api.replace_namespaced_custom_object(GROUP, "v2", namespace, PLURAL, "a", as_v2)
    again = get(api, "v1", namespace, "a")
    assert again["spec"]["kafka"]["secretName"] == "app-kafka-2"
    assert in_process_webhook.certificates.reloads == 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kafka": {"pool": PROJECT}}, "spec.kafka.secretName"),
        ({"openSearch": {"instance": "logs"}}, "spec.openSearch.secretName"),
        ({"valkey": [{"instance": "cache"}]}, "spec.valkey[0].secretName"),
    ],
)
def test_a_v2_section_without_its_secret_name_is_refused_by_the_schema(
    in_process_webhook: WebhookServer, admin: k8s.ApiClient, namespace: str, spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiException) as refused:
        CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP, "v2", namespace, PLURAL, app_body("v2", namespace, "bad", spec)
        )
    assert refused.value.status == 422
    assert field in str(refused.value.body) and "Required value" in str(refused.value.body)


def test_v2_has_no_top_level_secret_name(
    in_process_webhook: WebhookServer, admin: k8s.ApiClient, namespace: str
) -> None:
    api = CustomObjectsApi(admin)
    spec = {"secretName": "top", "kafka": {"pool": PROJECT, "secretName": "k"}}
    api.create_namespaced_custom_object(GROUP, "v2", namespace, PLURAL, app_body("v2", namespace, "p", spec))
    stored = get(api, "v1", namespace, "p")
    assert stored["spec"] == {"kafka": {"pool": PROJECT, "secretName": "k"}}  # pruned by the v2 schema


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shape(secret: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A Secret with what legitimately differs between twins (names, user, times, values) removed."""
    meta = secret["metadata"]

    def rename(value: str) -> str:
        for old, new in names.items():
            value = value.replace(old, new)
        return value

    user = user_of(secret)
    annotations = {
        k: ("<user>" if v == user else rename(v))
        for k, v in (meta.get("annotations") or {}).items()
        if not k.endswith(("/timestamp", "Timestamp", "deploymentCorrelationID"))
    }
    return {
        "type": secret["type"],
        "keys": sorted(secret["data"]),
        "labels": {k: rename(v) for k, v in (meta.get("labels") or {}).items()},
        "annotations": annotations,
        "finalizers": meta.get("finalizers"),
        "owners": [(o["kind"], rename(o["name"])) for o in meta.get("ownerReferences") or []],
    }


def test_the_operator_serves_the_webhook_and_reconciles_a_v2_app_like_its_v1_twin(
    operators: Operators,
    admin: k8s.ApiClient,
    aiven: tuple[FakeAiven, FakeAivenServer],
    tls: WebhookTLS,
    namespace: str,
) -> None:
    port = _free_port()
    op = operators.start(
        "webhook",
        "--webhook-address",
        f"127.0.0.1:{port}",
        "--webhook-cert-file",
        str(tls.cert_file),
        "--webhook-key-file",
        str(tls.key_file),
        "--janitor-grace-period",
        "1h",
    )
    wait_for("the webhook", lambda: op.saw("conversion_webhook_serving"), [op])
    point_crd_at(admin, f"https://127.0.0.1:{port}/convert", tls.ca_pem)
    try:
        wait_converting(admin, namespace)
        api = CustomObjectsApi(admin)
        for version, name in (("v1", "twin1"), ("v2", "twin2")):
            spec = {"kafka": {"pool": PROJECT, "secretName": f"{name}-kafka"}}
            api.create_namespaced_custom_object(
                GROUP, version, namespace, PLURAL, app_body(version, namespace, name, spec)
            )
        apps: dict[str, dict[str, Any]] = {}
        for name in ("twin1", "twin2"):

            def synced(name: str = name) -> dict[str, Any] | None:
                return converged(admin, namespace, name, 1)

            apps[name] = wait_for(f"{name} converged", synced, [op])
        s1 = read_secret(admin, namespace, "twin1-kafka")
        s2 = read_secret(admin, namespace, "twin2-kafka")
        assert s1 is not None and s2 is not None
        assert user_of(s1) != user_of(s2)
        assert _shape(s2, {"twin2": "twin1"}) == _shape(s1, {})
        states = {n: a["status"]["synchronizationState"] for n, a in apps.items()}
        assert states == {"twin1": "RolloutComplete", "twin2": "RolloutComplete"}
        # Every replica serves conversion whether or not it leads: this one never stopped.
        assert op.alive()
    finally:
        restore_crd(admin)


def test_a_standby_replica_serves_conversion_too(
    operators: Operators, admin: k8s.ApiClient, tls: WebhookTLS, namespace: str
) -> None:
    """Two `aivenator run` replicas with leader election; the CRD points at the one not leading."""
    lease = f"conv-leader-{namespace}"
    ports = {"a": _free_port(), "b": _free_port()}
    replicas = {}
    for name in ("a", "b"):
        replicas[name] = operators.start(
            f"replica-{name}",
            "--leader-elect",
            "--leader-election-name",
            lease,
            "--leader-election-namespace",
            OPERATOR_NAMESPACE,
            "--leader-election-identity",
            f"replica-{name}",
            "--webhook-address",
            f"127.0.0.1:{ports[name]}",
            "--webhook-cert-file",
            str(tls.cert_file),
            "--webhook-key-file",
            str(tls.key_file),
        )
        if name == "a":
            wait_for(
                "replica-a leads", lambda: e2e.lease_holder(admin, lease) == "replica-a", [replicas["a"]]
            )
    standby = replicas["b"]
    wait_for("the standby's webhook", lambda: standby.saw("conversion_webhook_serving"), [standby])
    point_crd_at(admin, f"https://127.0.0.1:{ports['b']}/convert", tls.ca_pem)
    try:
        wait_converting(admin, namespace)
        assert e2e.lease_holder(admin, lease) == "replica-a"
        assert not standby.saw("leader_elected"), standby.tail()
    finally:
        restore_crd(admin)
