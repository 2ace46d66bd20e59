"""The Helm chart in deploy/chart/aivenator: lint, render, and apply to a real kube-apiserver.

`helm` is built from the Go module proxy by hack/helm.sh (cached); if it cannot be built the
tests fail. Rendered objects are server-side applied for real, except the cluster-wide objects
another test in the session could feel (the AivenApplication CRD, which the session fixture
already installed, and the ValidatingAdmissionPolicy + binding, which would start denying other
tests' Secret writes): those are applied with server-side dry-run (full validation and admission,
nothing persisted). ServiceMonitor and PrometheusRule are applied for real against minimal
stand-in CRDs defined below (the Prometheus Operator is not part of the test tier).
"""

from __future__ import annotations

import contextlib
import copy
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client as k8s

from tests.integration.real_apiserver import (
    RealApiserver,
    apply_objects,
    dynamic_client,
    load_yaml_documents,
    server_side_apply,
    wait_crds_established,
)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "chart" / "aivenator"
KUBE_VERSION = "1.37.2"
RELEASE = "chart-test"
NAMESPACE = "aivenator-chart-test"
SENTINEL = "tok-SENTINEL-3f9c1b7e-never-rendered"

MONITORING = [
    "--set",
    "monitoring.serviceMonitor.enabled=true",
    "--set",
    "monitoring.prometheusRule.enabled=true",
]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def helm() -> str:
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "helm.sh")], capture_output=True, text=True, timeout=1800, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        pytest.fail(
            f"hack/helm.sh could not provide helm (exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    return lines[-1]


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)


def template(helm: str, *extra: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    result = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def template_fails(helm: str, *extra: str) -> str:
    result = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        *extra,
    )
    assert result.returncode != 0, f"expected helm template to fail for {extra}"
    assert SENTINEL not in result.stdout
    return result.stderr


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


# --------------------------------------------------------------------------- lint and render


def test_helm_lint_passes_strict_with_default_and_monitoring_values(helm: str) -> None:
    for extra in ([], MONITORING):
        result = run_helm(helm, "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 chart(s) failed" in result.stdout


def test_default_render_has_every_operator_object_and_no_monitoring(helm: str) -> None:
    kinds = sorted(d["kind"] for d in template(helm))
    assert kinds == sorted(
        [
            "Certificate",
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "Issuer",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
    )
    for doc in template(helm):
        if doc["kind"] not in {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"} and not doc[
            "kind"
        ].startswith("ValidatingAdmission"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def test_deployment_runs_two_leader_elected_replicas_with_the_token_as_a_file(helm: str) -> None:
    docs = template(helm)
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    c = container(docs)
    assert c["args"][0] == "run"
    assert "--leader-elect" in c["args"]
    assert f"--leader-election-namespace={NAMESPACE}" in c["args"]
    assert "--aiven-token-file=/var/run/secrets/aiven/token" in c["args"]
    assert not any(a.startswith("--aiven-token=") for a in c["args"])
    assert not any("TOKEN" in e["name"] and "value" in e for e in c.get("env", []))
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    token = volumes["aiven-token"]["secret"]
    assert token["secretName"] == "aivenator-aiven-token"
    assert token["items"] == [{"key": "token", "path": "token"}]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["aiven-token"] == {
        "name": "aiven-token",
        "mountPath": "/var/run/secrets/aiven",
        "readOnly": True,
    }

    custom = template(helm, "--set", "aiven.tokenSecret.name=my-token", "--set", "aiven.tokenSecret.key=api")
    token = only(custom, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["secret"]
    assert token["secretName"] == "my-token" and token["items"] == [{"key": "api", "path": "token"}]


def test_pod_is_locked_down(helm: str) -> None:
    docs = template(helm)
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_rendered_flags_are_accepted_by_the_operator_configuration(helm: str) -> None:
    import argparse

    from aivenator.entrypoints import config as operator_config
    from returns.result import Success

    for extra in (
        [],
        [
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "replicaCount=1",
            "--set",
            "orphanSweep.dryRun=true",
            "--set",
            "aiven.projects={a-pool,b-pool}",
        ],
    ):
        args = container(template(helm, *extra))["args"]
        parser = argparse.ArgumentParser()
        operator_config.add_arguments(parser)
        parsed = parser.parse_args(args[1:])
        files = {"/var/run/secrets/aiven/token": "dummy-token\n"}
        loaded = operator_config.load_config(parsed, env={}, read_file=files.__getitem__)
        assert isinstance(loaded, Success), loaded
        cfg = loaded.unwrap()
        assert cfg.metrics_address.port == 8080 and cfg.metrics_address.host == "0.0.0.0"
        assert cfg.health_probe_address is not None and cfg.health_probe_address.port == 8081
        if extra:
            assert cfg.leader_elect is False
            assert cfg.orphan_sweep_dry_run is True
            assert cfg.projects == ("a-pool", "b-pool")
        else:
            assert cfg.leader_elect is True
            assert cfg.leader_election_namespace == NAMESPACE
            assert cfg.orphan_sweep_dry_run is False
            assert cfg.orphan_sweep_interval == 600.0


def test_chart_crd_is_the_deploy_crd(helm: str, tmp_path: Path) -> None:
    # One source of truth: the chart's file is a symlink to deploy/crds, resolved by `helm package`.
    link = CHART / "files" / "aivenapplications.crd.yaml"
    assert (
        link.is_symlink()
        and link.resolve() == (REPO / "deploy" / "crds" / "aivenapplications.yaml").resolve()
    )
    packaged = run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    assert packaged.returncode == 0, packaged.stderr
    import tarfile

    with tarfile.open(next(tmp_path.glob("aivenator-*.tgz"))) as archive:
        member = archive.extractfile("aivenator/files/aivenapplications.crd.yaml")
        assert member is not None
        assert member.read() == (REPO / "deploy" / "crds" / "aivenapplications.yaml").read_bytes()
    rendered = only(template(helm), "CustomResourceDefinition")
    source = load_yaml_documents(REPO / "deploy" / "crds" / "aivenapplications.yaml")[0]
    # Only the conversion webhook's Service differs: this release's, in its namespace.
    service = rendered["spec"]["conversion"]["webhook"]["clientConfig"]["service"]
    assert service == {
        "name": f"{RELEASE}-aivenator-webhook",
        "namespace": NAMESPACE,
        "path": "/convert",
        "port": 443,
    }
    source["spec"]["conversion"]["webhook"]["clientConfig"]["service"] = service
    assert rendered["spec"] == source["spec"]
    assert rendered["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{NAMESPACE}/{RELEASE}-aivenator-webhook"
    )
    assert rendered["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert rendered["metadata"]["labels"]["app.kubernetes.io/component"] == "crd"
    no_keep = only(template(helm, "--set", "crds.keep=false"), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in (no_keep["metadata"].get("annotations") or {})
    assert not [
        d for d in template(helm, "--set", "crds.install=false") if d["kind"] == "CustomResourceDefinition"
    ]


def test_conversion_webhook_is_served_mounted_and_certified(helm: str) -> None:
    docs = template(helm)
    c = container(docs)
    assert "--webhook-address=0.0.0.0:9443" in c["args"]
    assert "--webhook-cert-file=/var/run/secrets/webhook/tls.crt" in c["args"]
    assert "--webhook-key-file=/var/run/secrets/webhook/tls.key" in c["args"]
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in c["ports"]
    volumes = {v["name"]: v for v in only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-tls"]["secret"]["secretName"] == f"{RELEASE}-aivenator-webhook-tls"
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-webhook"))
    assert service["spec"]["ports"] == [
        {"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}
    ]
    certificate = only(docs, "Certificate")
    assert certificate["spec"]["secretName"] == f"{RELEASE}-aivenator-webhook-tls"
    assert f"{RELEASE}-aivenator-webhook.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"] == {
        "name": only(docs, "Issuer")["metadata"]["name"],
        "kind": "Issuer",
    }

    own_issuer = template(
        helm,
        "--set",
        "webhook.certManager.issuerRef.name=corp-ca",
        "--set",
        "webhook.certManager.issuerRef.kind=ClusterIssuer",
    )
    assert not [d for d in own_issuer if d["kind"] == "Issuer"]
    assert only(own_issuer, "Certificate")["spec"]["issuerRef"] == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
    }

    manual = template(
        helm,
        "--set",
        "webhook.certManager.enabled=false",
        "--set",
        "webhook.caBundle=Q0E=",
        "--set",
        "webhook.tlsSecretName=my-tls",
    )
    assert not [d for d in manual if d["kind"] in {"Certificate", "Issuer"}]
    crd = only(manual, "CustomResourceDefinition")
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"] == "Q0E="
    assert "cert-manager.io/inject-ca-from" not in crd["metadata"]["annotations"]
    volumes = {v["name"]: v for v in only(manual, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-tls"]["secret"]["secretName"] == "my-tls"


def test_chart_rbac_grants_exactly_what_deploy_rbac_grants(helm: str) -> None:
    deploy = load_yaml_documents(REPO / "deploy" / "rbac.yaml")
    docs = template(helm)
    for kind in ("ClusterRole", "Role"):
        want = next(d for d in deploy if d["kind"] == kind)["rules"]
        assert only(docs, kind)["rules"] == want, kind
    sa = only(docs, "ServiceAccount")["metadata"]["name"]
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        binding = only(docs, kind)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]


def test_admission_policy_exempts_this_releases_service_account(helm: str) -> None:
    docs = template(helm)
    policy = only(docs, "ValidatingAdmissionPolicy")
    conditions = {c["name"]: c["expression"] for c in policy["spec"]["matchConditions"]}
    assert f"'system:serviceaccount:{NAMESPACE}:{RELEASE}-aivenator'" in conditions["not-the-operator"]
    deploy_policy = load_yaml_documents(REPO / "deploy" / "admission-policy.yaml")[0]
    assert [v["expression"].split() for v in policy["spec"]["validations"]] == [
        v["expression"].split() for v in deploy_policy["spec"]["validations"]
    ]
    binding = only(docs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    off = template(helm, "--set", "admissionPolicy.enabled=false")
    assert not [d for d in off if d["kind"].startswith("ValidatingAdmission")]


def test_network_policy_allows_metrics_in_and_only_dns_api_and_https_out(helm: str) -> None:
    policy = only(template(helm), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    ingress_ports = sorted(p["port"] for rule in policy["ingress"] for p in rule["ports"])
    assert ingress_ports == ["health", "metrics", "webhook"]
    egress_ports = sorted(p["port"] for rule in policy["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 443, 6443]
    open_egress = only(template(helm, "--set", "networkPolicy.egress.enabled=false"), "NetworkPolicy")["spec"]
    assert open_egress["policyTypes"] == ["Ingress"] and "egress" not in open_egress


def test_monitoring_renders_service_monitor_and_the_four_alert_families(helm: str) -> None:
    docs = template(helm, *MONITORING)
    monitor = only(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics"))
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"

    rule = only(docs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert (
        "aivenator_aiven_application_processing_time_seconds_bucket" in alerts["AivenatorSlowSyncs"]["expr"]
    )
    failing = alerts["AivenatorFailingSyncs"]["expr"]
    assert "aivenator_aiven_applications_processed(_total)?" in failing
    assert 'synchronization_state="RolloutFailed"' in failing
    headroom = alerts["AivenatorServiceUserHeadroom"]["expr"]
    assert "aivenator_service_users_count" in headroom and "> 1000 * 0.8" in headroom
    assert "aivenator_cert_days_left" in alerts["AivenatorKafkaCertificateExpiring"]["expr"]
    assert alerts["AivenatorKafkaCertificateExpiringCritical"]["labels"]["severity"] == "critical"
    for alert in alerts.values():
        assert alert["expr"].count("(") == alert["expr"].count(")"), alert["alert"]
        assert "{{ ." not in alert["expr"]  # no Helm template leaked into PromQL

    tuned = only(
        template(
            helm,
            *MONITORING,
            "--set",
            "monitoring.prometheusRule.serviceUserHeadroom.limit=250",
            "--set-json",
            "monitoring.prometheusRule.serviceUserHeadroom.ratio=0.9",
            "--set",
            "monitoring.prometheusRule.alertLabels.team=platform",
        ),
        "PrometheusRule",
    )
    tuned_alerts = {r["alert"]: r for g in tuned["spec"]["groups"] for r in g["rules"]}
    assert "> 250 * 0.9" in tuned_alerts["AivenatorServiceUserHeadroom"]["expr"]
    assert all(a["labels"]["team"] == "platform" for a in tuned_alerts.values())


def test_the_token_can_never_be_a_chart_value(helm: str) -> None:
    # The schema rejects a token value outright, and the escape hatches refuse token flags/env.
    assert "token" in template_fails(helm, "--set", f"aiven.token={SENTINEL}")
    assert "--aiven-token" in template_fails(helm, "--set", f"extraArgs[0]=--aiven-token={SENTINEL}")
    assert "--aiven-token" in template_fails(helm, "--set", "extraArgs[0]=--aiven-token-file=/elsewhere")
    assert "AIVENATOR_AIVEN_TOKEN" in template_fails(
        helm, "--set", "extraEnv[0].name=AIVENATOR_AIVEN_TOKEN", "--set", f"extraEnv[0].value={SENTINEL}"
    )
    # Rendering with every option on never carries a token-looking literal.
    result = run_helm(
        helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", KUBE_VERSION, *MONITORING
    )
    assert result.returncode == 0, result.stderr
    assert SENTINEL not in result.stdout
    assert "--aiven-token=" not in result.stdout
    assert "AIVENATOR_AIVEN_TOKEN" not in result.stdout


def test_invalid_values_are_refused(helm: str) -> None:
    assert "leaderElection" in template_fails(
        helm, "--set", "leaderElection.enabled=false", "--set", "replicaCount=2"
    )
    template_fails(helm, "--set", "notAValue=1")
    template_fails(helm, "--set", "syncPeriod=an-hour")
    template_fails(helm, "--set", "aiven.tokenSecret.name=")


def test_image_digest_wins_over_tag(helm: str) -> None:
    digest = "sha256:" + "a" * 64
    c = container(template(helm, "--set", f"image.digest={digest}", "--set", "image.tag=9.9.9"))
    assert c["image"] == f"ghcr.io/aivenator/aivenator@{digest}"
    assert container(template(helm))["image"] == "ghcr.io/aivenator/aivenator:0.1.0"


# --------------------------------------------------------------------------- real kube-apiserver

# Minimal stand-ins for the Prometheus Operator CRDs: only the fields the chart sets are
# typed, so a misspelt or mistyped field is pruned/rejected like in a real cluster.
_STRING = {"type": "string"}
MONITORING_CRDS: list[dict[str, Any]] = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com", "labels": {"test-fixture": "true"}},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {
                "kind": "ServiceMonitor",
                "plural": "servicemonitors",
                "singular": "servicemonitor",
                "listKind": "ServiceMonitorList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["selector", "endpoints"],
                                    "properties": {
                                        "selector": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        },
                                        "namespaceSelector": {
                                            "type": "object",
                                            "properties": {"matchNames": {"type": "array", "items": _STRING}},
                                        },
                                        "endpoints": {
                                            "type": "array",
                                            "minItems": 1,
                                            "items": {
                                                "type": "object",
                                                "properties": {
                                                    "port": _STRING,
                                                    "path": _STRING,
                                                    "interval": _STRING,
                                                    "scrapeTimeout": _STRING,
                                                    "honorLabels": {"type": "boolean"},
                                                },
                                            },
                                        },
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    },
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "prometheusrules.monitoring.coreos.com", "labels": {"test-fixture": "true"}},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {
                "kind": "PrometheusRule",
                "plural": "prometheusrules",
                "singular": "prometheusrule",
                "listKind": "PrometheusRuleList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "groups": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "required": ["name", "rules"],
                                                "properties": {
                                                    "name": _STRING,
                                                    "rules": {
                                                        "type": "array",
                                                        "items": {
                                                            "type": "object",
                                                            "required": ["expr"],
                                                            "properties": {
                                                                "alert": _STRING,
                                                                "record": _STRING,
                                                                "for": _STRING,
                                                                "expr": {"type": "string", "minLength": 1},
                                                                "labels": {
                                                                    "type": "object",
                                                                    "additionalProperties": _STRING,
                                                                },
                                                                "annotations": {
                                                                    "type": "object",
                                                                    "additionalProperties": _STRING,
                                                                },
                                                            },
                                                        },
                                                    },
                                                },
                                            },
                                        }
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    },
]

# Applied with server-side dry-run only: see the module docstring.
DRY_RUN_KINDS = {"CustomResourceDefinition", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


@pytest.fixture(scope="module")
def admin(real_apiserver: RealApiserver) -> Iterator[k8s.ApiClient]:
    with real_apiserver.admin_client() as api:
        yield api


def _dry_run_apply(api: k8s.ApiClient, obj: dict[str, Any]) -> Any:
    dyn = dynamic_client(api)
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return server_side_apply(dyn, resource, obj, dry_run="All")


@pytest.fixture(scope="module")
def installed(helm: str, admin: k8s.ApiClient) -> Iterator[list[dict[str, Any]]]:
    """The chart with monitoring on, applied (see DRY_RUN_KINDS); returns the rendered objects."""
    apply_objects(admin, MONITORING_CRDS)
    wait_crds_established(admin, [c["metadata"]["name"] for c in MONITORING_CRDS])
    apply_objects(
        admin,
        [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                },
            }
        ],
    )
    docs = template(helm, *MONITORING)
    real = [d for d in docs if d["kind"] not in DRY_RUN_KINDS]
    dry = [d for d in docs if d["kind"] in DRY_RUN_KINDS]
    assert {d["kind"] for d in dry} == DRY_RUN_KINDS
    applied = apply_objects(admin, real)
    assert len(applied) == len(real)
    for obj in dry:
        result = _dry_run_apply(admin, obj)
        assert result.metadata.name == obj["metadata"]["name"]
    yield docs
    # Remove what was really applied, so other suites see the cluster as the fixture made it.
    dyn = dynamic_client(admin)
    for obj in reversed(real):
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        ns = obj["metadata"].get("namespace") if resource.namespaced else None
        with contextlib.suppress(Exception):
            resource.delete(name=obj["metadata"]["name"], namespace=ns)


def test_rendered_chart_applies_cleanly_to_a_real_apiserver(
    installed: list[dict[str, Any]], admin: k8s.ApiClient
) -> None:
    dyn = dynamic_client(admin)
    for obj in installed:
        if obj["kind"] in DRY_RUN_KINDS:
            continue
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        ns = obj["metadata"].get("namespace") if resource.namespaced else None
        stored = resource.get(name=obj["metadata"]["name"], namespace=ns).to_dict()
        assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        if obj["kind"] in {"ServiceMonitor", "PrometheusRule"}:
            # Nothing pruned by the stand-in schemas: every field the chart sets is typed there.
            assert stored["spec"] == obj["spec"], obj["kind"]
    deployment = k8s.AppsV1Api(admin).read_namespaced_deployment(f"{RELEASE}-aivenator", NAMESPACE)
    assert deployment.spec.replicas == 2
    rules = k8s.RbacAuthorizationV1Api(admin).read_cluster_role(f"{RELEASE}-aivenator").rules
    assert any("secrets" in (r.resources or []) for r in rules or [])


def test_operator_pod_passes_the_restricted_pod_security_profile(helm: str, admin: k8s.ApiClient) -> None:
    apply_objects(
        admin,
        [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                },
            }
        ],
    )
    template_spec = only(template(helm), "Deployment")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "psa-probe",
            "namespace": NAMESPACE,
            "labels": template_spec["metadata"]["labels"],
        },
        "spec": template_spec["spec"],
    }
    core = k8s.CoreV1Api(admin)
    created = core.create_namespaced_pod(NAMESPACE, _as_pod(pod), dry_run="All")
    assert created.metadata is not None and created.metadata.name == "psa-probe"
    # The same pod with a privilege escalation must be refused, proving the profile is enforced.
    bad = copy.deepcopy(pod)
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(k8s.ApiException) as refused:
        core.create_namespaced_pod(NAMESPACE, _as_pod(bad), dry_run="All")
    assert refused.value.status == 403 and "restricted" in str(refused.value.body)


def _as_pod(manifest: dict[str, Any]) -> k8s.V1Pod:
    # The client serializes a plain manifest exactly as it would a V1Pod; only its annotation says V1Pod.
    return cast(k8s.V1Pod, manifest)


def _can(
    api: k8s.ApiClient,
    user: str,
    verb: str,
    resource: str,
    *,
    group: str = "",
    namespace: str | None = None,
    subresource: str | None = None,
) -> bool:
    review = k8s.V1SubjectAccessReview(
        spec=k8s.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated"],
            resource_attributes=k8s.V1ResourceAttributes(
                verb=verb, resource=resource, group=group, namespace=namespace, subresource=subresource
            ),
        )
    )
    answer = k8s.AuthorizationV1Api(api).create_subject_access_review(review)
    return answer.status is not None and bool(answer.status.allowed)


def test_chart_service_account_gets_the_operators_rights_and_no_more(
    installed: list[dict[str, Any]], admin: k8s.ApiClient
) -> None:
    user = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-aivenator"
    allowed = [
        ("list", "secrets", "", "team-a", None),
        ("patch", "secrets", "", "team-a", None),
        ("delete", "secrets", "", "team-a", None),
        ("watch", "aivenapplications", "aiven.nais.io", None, None),
        ("patch", "aivenapplications", "aiven.nais.io", "team-a", "status"),
        ("list", "cronjobs", "batch", "team-a", None),
        ("create", "leases", "coordination.k8s.io", NAMESPACE, None),
        ("update", "leases", "coordination.k8s.io", NAMESPACE, None),
    ]
    denied = [
        ("update", "secrets", "", "team-a", None),
        ("create", "aivenapplications", "aiven.nais.io", "team-a", None),
        ("get", "configmaps", "", "team-a", None),
        ("create", "leases", "coordination.k8s.io", "kube-system", None),
        ("delete", "pods", "", "team-a", None),
        ("patch", "opensearches", "aiven.io", "team-a", None),
    ]
    for verb, resource, group, ns, sub in allowed:
        assert _can(admin, user, verb, resource, group=group, namespace=ns, subresource=sub), (
            verb,
            resource,
            ns,
        )
    for verb, resource, group, ns, sub in denied:
        assert not _can(admin, user, verb, resource, group=group, namespace=ns, subresource=sub), (
            verb,
            resource,
            ns,
        )


# --------------------------------------------------------------------------- documentation


def _leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if (
            isinstance(value, dict)
            and value
            and key not in {"resources", "podSecurityContext", "securityContext"}
        ):
            keys += _leaf_keys(value, path + ".")
        else:
            keys.append(path)
    return keys


def test_every_value_is_documented_in_the_chart_readme() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [k for k in _leaf_keys(values) if f"| `{k}` |" not in readme]
    assert not missing, f"values missing from deploy/chart/aivenator/README.md: {missing}"


def test_every_operator_flag_is_documented_in_the_install_guide() -> None:
    from aivenator.entrypoints import config as operator_config

    guide = (REPO / "docs" / "install.md").read_text()
    flags = [flag for flag, *_ in operator_config._FLAGS]
    missing = [f for f in flags if f"| `--{f}` | `{operator_config.env_name(f)}` |" not in guide]
    assert not missing, f"flags missing from docs/install.md: {missing}"


def test_alerts_use_only_metrics_and_labels_the_operator_exports(helm: str) -> None:
    import re

    from aivenator.entrypoints.shells.metrics import CompactGauge, LegacyCounter, Metrics
    from prometheus_client.metrics import MetricWrapperBase

    metrics = Metrics()
    exposed: set[str] = set()
    labels_of: dict[str, set[str]] = {}
    for collector in list(metrics.registry._collector_to_names):  # every registered metric
        assert isinstance(collector, MetricWrapperBase | LegacyCounter | CompactGauge), collector
        for family in collector.describe():
            suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",)}.get(
                family.type, ("",)
            )
            if isinstance(collector, LegacyCounter):  # Go-compatible: the bare name, no _total
                suffixes = ("",)
            exposed.update(family.name + suffix for suffix in suffixes)
            labels_of[family.name] = set(getattr(collector, "_labelnames", ()))
    rule = only(template(helm, *MONITORING), "PrometheusRule")
    for alert in (r for g in rule["spec"]["groups"] for r in g["rules"]):
        expr = alert["expr"]
        for regex in re.findall(r'__name__=~"([^"]+)"', expr):
            assert any(re.fullmatch(regex, name) for name in exposed), (alert["alert"], regex)
        plain = re.sub(r'__name__=~"[^"]+"', "", expr)
        for name in re.findall(r"\baivenator_[a-z_]+", plain):
            assert name in exposed, (alert["alert"], name)
    assert "synchronization_state" in labels_of["aivenator_aiven_applications_processed"]
    assert {"pool", "service", "username_convention"} <= labels_of["aivenator_service_users_count"]
    assert {"namespace", "aiven_application"} <= labels_of["aivenator_cert_days_left"]


def test_alert_expressions_parse_with_the_prometheus_parser(helm: str) -> None:
    import json

    build = subprocess.run(
        ["bash", str(REPO / "hack" / "promql-check.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert build.returncode == 0 and build.stdout.strip(), build.stderr[-3000:]
    checker = build.stdout.strip().splitlines()[-1]
    tuned = [
        "--set",
        "monitoring.prometheusRule.serviceUserHeadroom.groupBy={pool}",
        "--set",
        "monitoring.prometheusRule.failingSyncs.window=1h",
    ]
    for extra in ([], tuned):
        rule = only(template(helm, *MONITORING, *extra), "PrometheusRule")
        exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
        assert len(exprs) == 5
        result = subprocess.run(
            [checker], input=json.dumps(exprs), capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.count(": ok (vector)") == 5, result.stdout
    # The checker itself rejects a broken expression (so a pass above means something).
    broken = subprocess.run(
        [checker],
        input=json.dumps({"x": "sum(rate(a[5m])"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 1 and "x:" in broken.stderr
