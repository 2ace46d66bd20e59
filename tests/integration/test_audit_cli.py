"""`aivenator audit` end to end: the CLI against a real kube-apiserver with the operator's own
(least-privilege) identity, and the Aiven simulator (`--fake-aiven`)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client as k8s

from tests.integration.real_apiserver import RealApiserver, apply_objects

NAMESPACE = "audit-cli"


def managed_secret(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"type": "aivenator.aiven.nais.io", "app": app, "team": NAMESPACE},
        },
        "type": "Opaque",
        "stringData": {"AIVEN_SECRET_UPDATED": "2026-01-01T00:00:00Z"},
    }


@pytest.fixture(scope="module")
def seeded(real_apiserver: RealApiserver) -> Iterator[RealApiserver]:
    with real_apiserver.admin_client() as admin:
        apply_objects(admin, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
        apply_objects(
            admin,
            [
                {
                    "apiVersion": "aiven.nais.io/v1",
                    "kind": "AivenApplication",
                    "metadata": {"name": "live", "namespace": NAMESPACE},
                    "spec": {"kafka": {"pool": "dev-nais-dev", "secretName": "live-kafka"}},
                },
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "web", "namespace": NAMESPACE},
                    "spec": {
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {
                                "containers": [{"name": "web", "image": "example/web:1"}],
                                "volumes": [
                                    {
                                        "name": "creds",
                                        "projected": {"sources": [{"secret": {"name": "mounted"}}]},
                                    }
                                ],
                            },
                        },
                    },
                },
            ],
        )
    # Managed Secrets are written with the operator's identity (the admission policy, where
    # installed, lets only the operator create them).
    with real_apiserver.operator_client() as operator:
        core = k8s.CoreV1Api(operator)
        for name, app in (("live-kafka", "live"), ("mounted", "web"), ("leftover", "gone")):
            try:
                # The client serializes a plain manifest as it would a V1Secret; only its annotation says V1Secret.
                core.create_namespaced_secret(NAMESPACE, cast(k8s.V1Secret, managed_secret(name, app)))
            except k8s.ApiException as exc:
                if exc.status != 409:
                    raise
    yield real_apiserver
    # Leave nothing that other suites listing managed Secrets cluster-wide could trip over.
    with real_apiserver.admin_client() as admin:
        core = k8s.CoreV1Api(admin)
        for name in ("live-kafka", "mounted", "leftover"):
            with contextlib.suppress(k8s.ApiException):
                core.delete_namespaced_secret(name, NAMESPACE)
        with contextlib.suppress(k8s.ApiException):
            k8s.AppsV1Api(admin).delete_namespaced_deployment("web", NAMESPACE)
        with contextlib.suppress(k8s.ApiException):
            k8s.CustomObjectsApi(admin).delete_namespaced_custom_object(
                "aiven.nais.io", "v1", NAMESPACE, "aivenapplications", "live"
            )


def run_audit(server: RealApiserver, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "aivenator.entrypoints.cli.main",
            "audit",
            "--kubeconfig",
            str(server.kubeconfig_operator),
            "--fake-aiven",
            "--janitor-grace-period",
            "0",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=str(Path(__file__).resolve().parents[2]),
    )


def test_audit_reports_unused_secret_against_a_real_apiserver(seeded: RealApiserver) -> None:
    result = run_audit(seeded, "-o", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    ours = {s["name"]: s for s in report["managedSecrets"] if s["namespace"] == NAMESPACE}
    assert set(ours) == {"live-kafka", "mounted", "leftover"}
    assert ours["live-kafka"]["verdict"] == "keep (in_use_by_application)"
    assert ours["mounted"]["verdict"] == "keep (in_use_by_workload)"
    assert "Deployment/web" in ours["mounted"]["referencedBy"]
    garbage = [(g["namespace"], g["name"]) for g in report["garbageSecrets"]]
    assert (NAMESPACE, "leftover") in garbage
    assert "audit: managed Secrets:" in result.stderr  # progress goes to stderr
    assert "threshold exceeded: garbage_secrets" in result.stderr


def test_audit_table_and_thresholds(seeded: RealApiserver) -> None:
    lenient = [
        f"--max-{c}=1000"
        for c in (
            "garbage-secrets",
            "orphaned-users",
            "services-near-limit",
            "expiring-certificates",
            "failing-apps",
        )
    ]
    result = run_audit(seeded, "--quiet", *lenient)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "== Secrets the janitor would delete" in result.stdout
    assert "leftover" in result.stdout
