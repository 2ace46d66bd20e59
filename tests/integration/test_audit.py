"""`aivenator audit` on the fake harness: the operator converges a cluster, then problems of each
kind are seeded and the audit must name each one; on a clean cluster it must report nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aivenator.adapters.aiven_http import AivenHttp
from aivenator.adapters.fakes.aiven import FakeAiven
from aivenator.domain.audit import CATEGORIES, AuditOptions, AuditReport, exceeded, report_dict
from aivenator.domain.kubernetes_port import KubeUnavailable
from aivenator.domain.names import kafka_username, valkey_username
from aivenator.entrypoints.cli import cmd_audit
from returns.result import Failure, Success

from tests.support.harness import (
    NAMESPACE,
    TOKEN,
    Harness,
    application,
    build,
    full_application,
    seed_aiven_objects,
)

OPTIONS = AuditOptions(
    allowed_projects=frozenset({"dev-nais-dev", "nav-prod"}),
    main_project="dev-nais-dev",
    grace_period=timedelta(minutes=5),
)


def converged(cert_days: int = 365) -> Harness:
    """Two applications synchronized by the operator, then an hour later (past any grace period)."""
    aiven = FakeAiven.with_default_seed(token=TOKEN, cert_validity=timedelta(days=cert_days))
    h = build(aiven=aiven)
    seed_aiven_objects(h)
    h.kube.apply(full_application("app"))
    h.kube.apply(application("worker", kafka={"pool": "nav-prod", "secretName": "worker-kafka"}))
    h.operator.drain()
    # Everything converged: Secrets exist and the grace period has passed.
    assert h.secret("app-kafka-1") is not None and h.secret("worker-kafka") is not None
    h.clock.advance(3600)
    return h


@pytest.fixture
def clean() -> Iterator[Harness]:
    h = converged()
    yield h
    h.close()


def audit(h: Harness, options: AuditOptions = OPTIONS) -> AuditReport:
    with AivenHttp("https://api.aiven.io", TOKEN, transport=h.aiven.mock_transport()) as aiven:
        progress: list[str] = []
        result = cmd_audit.collect(h.kube, aiven, options, h.clock.now(), progress.append)
    assert progress, "progress must be reported"
    if isinstance(result, Failure):
        pytest.fail(result.failure())
    return result.unwrap()


def test_a_converged_cluster_has_nothing_to_report(clean: Harness) -> None:
    report = audit(clean)
    assert report.problem_counts() == dict.fromkeys(CATEGORIES, 0)
    assert exceeded(report, {}) == ()
    assert not report.warnings
    secrets = {s.name: s for s in report.managed_secrets}
    assert set(secrets) == {"app-kafka-1", "app-os-1", "app-valkey-1", "worker-kafka"}
    assert secrets["app-kafka-1"].referenced_by == ("AivenApplication/app",)
    assert secrets["app-kafka-1"].verdict == "keep (in_use_by_application)"
    assert secrets["app-kafka-1"].services == ("kafka:dev-nais-dev/kafka",)
    assert secrets["worker-kafka"].services == ("kafka:nav-prod/nav-prod-kafka",)
    usage = {(u.project, u.service): u for u in report.service_usage}
    assert usage[("dev-nais-dev", "kafka")].users == 2  # avnadmin + app's user
    assert usage[("nav-prod", "nav-prod-kafka")].users == 2
    assert not any(u.near_limit for u in usage.values())


def test_every_seeded_problem_is_reported(clean: Harness) -> None:
    h = clean
    # 1. Garbage: an application goes away; its Secret is unused and old enough.
    h.kube.delete("AivenApplication", NAMESPACE, "worker")
    # ...while a Secret still mounted by a Deployment is in use, application or not.
    h.kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "x", "envFrom": [{"secretRef": {"name": "app-os-1"}}]}
                        ]
                    },
                },
            },
        }
    )
    # 2. Orphans: a user in our naming scheme nobody holds, next to a foreign one (not ours).
    ghost = kafka_username(NAMESPACE, "ghost", 3).name
    h.aiven.add_user("dev-nais-dev", "kafka", ghost)
    h.aiven.add_user("dev-nais-dev", "kafka", "alice-from-ops")
    ghost_valkey = valkey_username("ghost", 2, None).name
    h.aiven.add_user("dev-nais-dev", "valkey-team-a-cache", ghost_valkey)
    # 3. Failing applications: one invalid, one whose last sync failed.
    h.kube.apply(application("bad-pool", kafka={"pool": "not-allowed", "secretName": "bad-pool-kafka"}))
    failed = application("flaky", kafka={"pool": "dev-nais-dev", "secretName": "flaky-kafka"})
    failed["status"] = {
        "synchronizationState": "RolloutFailed",
        "conditions": [
            {
                "type": "AivenFailure",
                "status": "True",
                "reason": "AivenFailure",
                "message": "kafka: 503 from Aiven",
                "lastUpdateTime": "2026-01-01T00:00:00Z",
            },
            {
                "type": "Ready",
                "status": "False",
                "reason": "ServicesNotReady",
                "message": "kafka",
                "lastUpdateTime": "2026-01-01T00:00:00Z",
            },
            {
                "type": "KafkaReady",
                "status": "False",
                "reason": "AivenFailure",
                "message": "503",
                "lastUpdateTime": "2026-01-01T00:00:00Z",
            },
        ],
    }
    h.kube.apply(failed)
    # 4. A small user limit puts the Kafka service over its headroom.
    report = audit(h, AuditOptions(**{**_fields(OPTIONS), "user_limit": 4}))

    assert [(g.namespace, g.name, g.reason) for g in report.garbage_secrets] == [
        (NAMESPACE, "worker-kafka", "unused")
    ]
    assert report.garbage_secrets[0].app == "worker"
    kept = {s.name: s for s in report.managed_secrets}
    assert "Deployment/web" in kept["app-os-1"].referenced_by

    orphans = {(o.service, o.username) for o in report.orphaned_users}
    assert orphans == {("kafka", ghost), ("valkey-team-a-cache", ghost_valkey)}

    near = [(u.project, u.service, u.users) for u in report.service_usage if u.near_limit]
    assert near == [("dev-nais-dev", "kafka", 4)]  # avnadmin, app, ghost, alice > 4 * 0.8

    failing = {f.name: f.reasons for f in report.failing_apps}
    assert set(failing) == {"bad-pool", "flaky"}
    assert failing["bad-pool"][0] == "invalid spec" and any("not-allowed" in r for r in failing["bad-pool"])
    assert "synchronizationState=RolloutFailed" in failing["flaky"]
    assert any(r.startswith("AivenFailure: kafka: 503") for r in failing["flaky"])
    assert any("KafkaReady=AivenFailure" in r for r in failing["flaky"])

    over = exceeded(report, {})
    assert {line.split(":")[0] for line in over} == {
        "garbage_secrets",
        "orphaned_users",
        "services_near_limit",
        "failing_apps",
    }
    assert (
        exceeded(
            report, {"garbage_secrets": 1, "orphaned_users": 2, "services_near_limit": 1, "failing_apps": 2}
        )
        == ()
    )

    # JSON carries the same facts, and no Secret value anywhere.
    text = json.dumps(report_dict(report))
    assert json.loads(text)["problems"]["orphaned_users"] == 2
    secret = h.secret("app-kafka-1") or {}
    for value in (secret.get("data") or {}).values():
        assert value not in text


def test_young_garbage_is_not_reported_until_the_grace_period_passes(clean: Harness) -> None:
    clean.kube.delete("AivenApplication", NAMESPACE, "worker")
    options = AuditOptions(**{**_fields(OPTIONS), "grace_period": timedelta(days=30)})
    report = audit(clean, options)
    assert report.garbage_secrets == ()
    verdict = {s.name: s.verdict for s in report.managed_secrets}["worker-kafka"]
    assert verdict == "keep (too_young)"


def test_expiring_kafka_certificates_name_their_application() -> None:
    h = converged(cert_days=10)
    try:
        report = audit(h)
        rows = {(c.namespace, c.secret_name, c.app) for c in report.expiring_certificates}
        assert rows == {(NAMESPACE, "app-kafka-1", "app"), (NAMESPACE, "worker-kafka", "worker")}
        assert all(9 <= c.days_left <= 10 for c in report.expiring_certificates)
        assert report.problem_counts()["expiring_certificates"] == 2
        narrow = audit(h, AuditOptions(**{**_fields(OPTIONS), "cert_window": timedelta(days=5)}))
        assert narrow.expiring_certificates == ()
    finally:
        h.close()


def test_an_unreadable_cluster_is_an_error_not_an_empty_report(clean: Harness) -> None:
    clean.kube.inject_fault("list", KubeUnavailable("apiserver down"), kind="Pod")
    with AivenHttp("https://api.aiven.io", TOKEN, transport=clean.aiven.mock_transport()) as aiven:
        result = cmd_audit.collect(clean.kube, aiven, OPTIONS, clean.clock.now())
    assert isinstance(result, Failure)
    assert "Pod" in result.failure() and "KubeUnavailable" in result.failure()


def test_an_unreadable_aiven_service_is_a_warning(clean: Harness) -> None:
    clean.aiven.forbid_project("nav-prod")
    report = audit(clean)
    assert any("nav-prod/nav-prod-kafka" in w for w in report.warnings)
    assert all(u.project != "nav-prod" for u in report.service_usage)


def test_table_output_lists_every_section(clean: Harness) -> None:
    clean.kube.delete("AivenApplication", NAMESPACE, "worker")
    report = audit(clean)
    text = cmd_audit.render_table(report, OPTIONS)
    for title in (
        "Managed Secrets (4)",
        "Secrets the janitor would delete (1)",
        "Aiven users with no managed Secret (0)",
        "Service users per service",
        "Kafka certificates expiring within 14 days (0)",
        "AivenApplications failing to synchronize (0)",
    ):
        assert title in text, title
    assert "worker-kafka" in text and "garbage_secrets=1" in text


def test_cli_arguments_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cmd_audit.add_arguments(parser)
    args = parser.parse_args(["--max-orphaned-users", "3", "-o", "json", "--user-limit", "50", "--quiet"])
    assert args.max_orphaned_users == 3 and args.output == "json"
    options = cmd_audit.options_from(args, {"AIVENATOR_PROJECTS": "a,b", "AIVENATOR_MAIN_PROJECT": "a"})
    assert isinstance(options, Success)
    assert options.unwrap().allowed_projects == frozenset({"a", "b"}) and options.unwrap().user_limit == 50
    # No token and no simulator: a usage error, and the message names no secret.
    assert cmd_audit.run(parser.parse_args(["--quiet"]), env={}) == cmd_audit.EXIT_USAGE
    assert "token is required" in capsys.readouterr().err
    bad = parser.parse_args(["--quiet", "--janitor-grace-period", "soon"])
    assert cmd_audit.run(bad, env={}) == cmd_audit.EXIT_USAGE


def _fields(options: AuditOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}


def test_cli_without_a_usable_kubeconfig_is_a_usage_error(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import structlog

    parser = argparse.ArgumentParser()
    cmd_audit.add_arguments(parser)
    args = parser.parse_args(["--quiet", "--fake-aiven", "--kubeconfig", str(tmp_path / "missing.yaml")])
    try:
        assert cmd_audit.run(args, env={}) == cmd_audit.EXIT_USAGE
    finally:
        structlog.reset_defaults()
    assert "cannot load kubeconfig" in capsys.readouterr().err


def test_orphans_in_services_nothing_names_any_more_are_found(clean: Harness) -> None:
    # No application or Secret names valkey-team-a-sessions: only listing the project finds it.
    leftover = valkey_username("gone-app", 7, None).name
    clean.aiven.add_user("dev-nais-dev", "valkey-team-a-sessions", leftover)
    # A Valkey service in a project the operator does not serve is none of its business.
    clean.aiven.add_service("elsewhere", "valkey-x-y", "valkey")
    clean.aiven.add_user("elsewhere", "valkey-x-y", valkey_username("other", 1, None).name)
    report = audit(clean)
    assert [(o.service, o.username) for o in report.orphaned_users] == [("valkey-team-a-sessions", leftover)]
    assert all(u.project != "elsewhere" for u in report.service_usage)
