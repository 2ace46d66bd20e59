"""Takeover from the Go operator on a real kube-apiserver: nothing changes.

The cluster and the Aiven simulator are first put in the state the Go operator leaves behind:
service users named by its formulas (with Valkey access control and OpenSearch ACL entries),
Secrets in its shape (its keys, labels, annotations and finalizer, no
`kafka.aiven.nais.io/serviceName`, key and trust stores under its constant password `changeme`)
and statuses as it writes them (`synchronizationHash` = its 16-hex-digit hashstructure value).
Then `aivenator run` starts as in production (a subprocess with the operator's RBAC) and the test
counts what it changes: Secret data, Secret writes, Aiven users created or deleted, and Aiven
requests per application. The figures are printed.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from aivenator.adapters.aiven_wire import access_control_body, parse_service, parse_user, rules_body
from aivenator.adapters.fakes.aiven import FakeAiven, FakeAivenServer
from aivenator.domain import labels
from aivenator.domain.parse import parse_application
from aivenator.domain.secrets import SectionInput, render_secret, to_manifest
from aivenator.domain.services import all_sections
from aivenator.domain.services.base import ServiceConfig
from aivenator.domain.sync_hash import synchronization_hash
from aivenator.domain.times import format_time
from kubernetes import client as k8s
from kubernetes.client import CoreV1Api, CustomObjectsApi

from tests.integration.real_apiserver import RealApiserver
from tests.integration.test_e2e_real_apiserver import (
    Operators,
    converged,
    create_aiven_instance,
    get_app,
    new_namespace,
    read_secret,
    wait_for,
)

pytestmark = pytest.mark.real_apiserver

PROJECT = "dev-nais-dev"
TOKEN = "takeover-" + uuid.uuid4().hex
GO_STORE_PASSWORD = "changeme"
#: The operator is judged once it has been idle (no new log line, no Aiven request) this long.
QUIET_S = 6.0


@pytest.fixture(scope="module")
def aiven() -> Iterator[tuple[FakeAiven, FakeAivenServer]]:
    fake = FakeAiven.with_default_seed(token=TOKEN)
    server = fake.serve()
    yield fake, server
    server.stop()


@pytest.fixture
def operators(
    real_apiserver: RealApiserver, aiven: tuple[FakeAiven, FakeAivenServer], tmp_path: Path
) -> Iterator[Operators]:
    token_file = tmp_path / "aiven-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    ops = Operators(real_apiserver, aiven[1].base_url, token_file, tmp_path)
    try:
        yield ops
    finally:
        ops.stop_all()
    for op in ops.started:
        assert TOKEN not in op.text(), f"the Aiven token appears in the log of operator {op.name}"


@pytest.fixture(scope="module")
def admin(real_apiserver: RealApiserver) -> Iterator[k8s.ApiClient]:
    with real_apiserver.admin_client() as api:
        yield api


class GoOperator:
    """Leaves the cluster and Aiven as the Go operator does after synchronizing an app."""

    def __init__(
        self, admin: k8s.ApiClient, server: FakeAivenServer, hash_override: str | None = None
    ) -> None:
        self.admin = admin
        self.hash_override = hash_override
        #: (service, username) of every user created, as the Go operator named them.
        self.users: list[tuple[str, str]] = []
        self.http = httpx.Client(base_url=server.base_url, headers={"Authorization": f"aivenv1 {TOKEN}"})
        self.now = datetime.now(UTC).replace(microsecond=0)

    def _get(self, path: str) -> Any:
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def synchronize(self, body: dict[str, Any]) -> dict[str, Any]:
        api = CustomObjectsApi(self.admin)
        ns = body["metadata"]["namespace"]
        stored: Any = api.create_namespaced_custom_object(
            "aiven.nais.io", "v1", ns, "aivenapplications", body
        )
        app = parse_application(stored, frozenset({PROJECT})).unwrap().app
        main_ca = self._get(f"/v1/project/{PROJECT}/kms/ca")["certificate"]
        for handler, section in all_sections(app):
            target = handler.target(app, section, ServiceConfig(PROJECT))
            service_name = target.candidates[0].service
            base = f"/v1/project/{target.project}/service/{service_name}"
            facts = parse_service(target.project, self._get(base))
            username = handler.username(app, section).name
            self.users.append((service_name, username))
            create: dict[str, Any] = {"username": username}
            access = handler.access_control(section)
            if access is not None:
                create["access_control"] = access_control_body(access)
            user = parse_user(self._post(f"{base}/user", create))
            rules = handler.acl_rules(section)
            if rules:
                config = self._get(f"{base}/opensearch/acl")["opensearch_acl_config"]
                acls = [*config.get("acls", []), {"username": username, "rules": rules_body(rules)}]
                self._post(
                    f"{base}/opensearch/acl", {"opensearch_acl_config": {"acls": acls, "enabled": True}}
                )
            ca = self._get(f"/v1/project/{target.project}/kms/ca")["certificate"]
            inp = SectionInput(section, facts, user, ca)
            desired = render_secret(app, inp, None, self.now, GO_STORE_PASSWORD, main_ca).unwrap()
            manifest = to_manifest(desired)
            # The Go operator does not record the Kafka service name.
            manifest["metadata"]["annotations"].pop(labels.KAFKA_SERVICE_NAME, None)
            # the client serializes a plain dict as is
            CoreV1Api(self.admin).create_namespaced_secret(ns, cast(k8s.V1Secret, manifest))
        stamp = format_time(self.now)
        status = {
            "synchronizationHash": self.hash_override or synchronization_hash(stored["spec"]),
            "synchronizationState": "RolloutComplete",
            "synchronizationTime": stamp,
            "synchronizedGeneration": stored["metadata"]["generation"],
            "observedGeneration": stored["metadata"]["generation"],
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "True",
                    "lastUpdateTime": stamp,
                    "reason": "RolloutComplete",
                    "message": "",
                }
            ],
        }
        name = body["metadata"]["name"]
        api.patch_namespaced_custom_object_status(
            "aiven.nais.io", "v1", ns, "aivenapplications", name, {"status": status}
        )
        return dict(stored)


def _application(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"aiven.nais.io/secret-generation": "1"},
            "annotations": {"nais.io/deploymentCorrelationID": str(uuid.uuid4())},
        },
        "spec": spec,
    }


def _records_our_hash(admin: k8s.ApiClient, ns: str, name: str) -> bool:
    app = get_app(admin, ns, name)
    return bool((app.get("status") or {}).get("synchronizationHash") == synchronization_hash(app["spec"]))


def _secret_names(spec: dict[str, Any]) -> list[str]:
    names = [spec[k]["secretName"] for k in ("kafka", "openSearch") if k in spec]
    return names + [v["secretName"] for v in spec.get("valkey", [])]


#: A well-formed hash that matches no spec: what a Go operator version whose hash we cannot
#: reproduce would have written.
FOREIGN_HASH = "0123456789abcdef"


@pytest.mark.parametrize("foreign_hash", [False, True], ids=["go-hash", "unreproducible-hash"])
def test_taking_over_from_the_go_operator_changes_nothing(
    foreign_hash: bool,
    operators: Operators,
    admin: k8s.ApiClient,
    aiven: tuple[FakeAiven, FakeAivenServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, server = aiven
    ns = new_namespace(admin, "takeover")
    opensearch, valkey = f"opensearch-{ns}-logs", f"valkey-{ns}-cache"
    fake.add_service(PROJECT, opensearch, "opensearch")
    fake.add_service(PROJECT, valkey, "valkey", replica=True)
    create_aiven_instance(admin, ns, "opensearches", "OpenSearch", opensearch)
    create_aiven_instance(admin, ns, "valkeys", "Valkey", valkey)
    specs: dict[str, dict[str, Any]] = {
        "orders": {
            "kafka": {"pool": PROJECT, "secretName": "orders-kafka"},
            "openSearch": {"instance": "logs", "access": "readwrite", "secretName": "orders-opensearch"},
            "valkey": [{"instance": "cache", "access": "read", "secretName": "orders-valkey"}],
        },
        "payments": {"kafka": {"pool": PROJECT, "secretName": "payments-kafka"}},
        "personal": {
            "protected": True,
            "expiresAt": "2099-01-01T00:00:00Z",
            "valkey": [{"instance": "cache", "access": "readwrite", "secretName": "personal-valkey"}],
        },
    }
    go = GoOperator(admin, server, FOREIGN_HASH if foreign_hash else None)
    for name, spec in specs.items():
        go.synchronize(_application(ns, name, spec))
    secret_names = [s for spec in specs.values() for s in _secret_names(spec)]
    services = ("kafka", opensearch, valkey)

    def snapshot() -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, set[str]]]:
        data: dict[str, dict[str, str]] = {}
        versions: dict[str, str] = {}
        for secret_name in secret_names:
            secret = read_secret(admin, ns, secret_name)
            assert secret is not None, secret_name
            data[secret_name] = dict(secret.get("data") or {})
            versions[secret_name] = secret["metadata"]["resourceVersion"]
        users = {s: set(fake.users(PROJECT, s)) for s in services}
        return data, versions, users

    before_data, before_versions, before_users = snapshot()
    password = base64.b64decode(before_data["orders-kafka"]["KAFKA_CREDSTORE_PASSWORD"]).decode()
    assert password == GO_STORE_PASSWORD
    hashes = {name: str(get_app(admin, ns, name)["status"]["synchronizationHash"]) for name in specs}
    # `%x` of a uint64: up to 16 hex digits (no leading zeros), never a 64-digit sha256
    assert all(re.fullmatch(r"[0-9a-f]{1,16}", h) for h in hashes.values()), hashes
    requests_before = len(fake.request_log)

    op = operators.start("takeover")
    wait_for("caches_synced", lambda: op.saw("caches_synced"), [op])
    if foreign_hash:
        # Every app resyncs (its hash matches nothing); wait until each records ours.
        wait_for(
            "every app resynced",
            lambda: all(_records_our_hash(admin, ns, name) for name in specs),
            [op],
            timeout=120.0,
        )
    quiet_since, seen = time.monotonic(), (len(op.text()), len(fake.request_log))
    while time.monotonic() - quiet_since < QUIET_S:
        time.sleep(0.5)
        now_seen = (len(op.text()), len(fake.request_log))
        if now_seen != seen:
            quiet_since, seen = time.monotonic(), now_seen
        assert op.alive(), op.tail()

    after_data, after_versions, after_users = snapshot()
    # The apiserver is shared with other test modules, whose applications this operator also
    # reconciles: count only what concerns this namespace's applications. Their Kafka users of any
    # generation share the name up to the generation suffix.
    kafka_prefixes = tuple(u.rsplit("_", 1)[0] + "_" for s, u in go.users if s == "kafka")

    def ours(service: str, username: str) -> bool:
        return service != "kafka" or username.startswith(kafka_prefixes)

    def our_path(path: str) -> bool:
        return any(f"/service/{s}" in path for s in (opensearch, valkey)) or any(
            f"/user/{p}" in path for p in kafka_prefixes
        )

    everything = fake.request_log[requests_before:]
    requests = [r for r in everything if our_path(r.path)]
    data_changes = sum(
        1
        for s in secret_names
        for k in set(before_data[s]) | set(after_data[s])
        if before_data[s].get(k) != after_data[s].get(k)
    )
    secret_writes = sum(1 for s in secret_names if before_versions[s] != after_versions[s])
    created = sum(1 for s in services for u in after_users[s] - before_users[s] if ours(s, u))
    deleted = sum(1 for s, u in go.users if u not in after_users[s])
    by_method = Counter(r.method for r in requests)
    shared = len(everything) - len(requests)
    syncs = [
        e
        for e in op.events()
        if e.get("event") == "aiven_application_sync_started" and e.get("namespace") == ns
    ]
    with capsys.disabled():
        print(
            f"\ntakeover ({'unreproducible' if foreign_hash else 'Go'} hash): {len(specs)} apps, {len(secret_names)} Secrets: "
            f"{data_changes} Secret data changes, {secret_writes} Secret writes, "
            f"{created} Aiven users created, {deleted} deleted, {len(requests)} Aiven requests for "
            f"these apps {dict(by_method)} (+{shared} project-CA/Kafka-service or other namespaces'), "
            f"{len(syncs)} resyncs; hashes {sorted(hashes.values())}"
        )
    assert data_changes == 0
    assert created == 0 and deleted == 0
    for secret_name in ("orders-kafka", "payments-kafka"):
        kept = base64.b64decode(after_data[secret_name]["KAFKA_CREDSTORE_PASSWORD"]).decode()
        assert kept == GO_STORE_PASSWORD
    if foreign_hash:
        assert len(syncs) == len(specs), "every app resynced, and the resync changed no credential"
        assert {r.method for r in requests} == {"GET"}, "a resync of correct state only reads Aiven"
        return
    assert len(requests) <= len(specs), [(r.method, r.path) for r in requests]
    assert not syncs, syncs
    synced = [e for e in op.events() if e.get("event") == "caches_synced"]
    assert synced and synced[0].get("applications", 0) >= len(specs), synced

    # The operator is live: a new generation brings new credentials, and only then a new password.
    api = CustomObjectsApi(admin)
    api.patch_namespaced_custom_object(
        "aiven.nais.io", "v1", ns, "aivenapplications", "payments", {"spec": {"protected": True}}
    )
    app = wait_for("payments converged at generation 2", lambda: converged(admin, ns, "payments", 2), [op])
    assert app["status"]["synchronizationHash"] == synchronization_hash(app["spec"])
    rotated = read_secret(admin, ns, "payments-kafka")
    assert rotated is not None
    new_password = base64.b64decode(rotated["data"]["KAFKA_CREDSTORE_PASSWORD"]).decode()
    assert new_password != GO_STORE_PASSWORD and len(new_password) >= 24
    untouched = read_secret(admin, ns, "orders-kafka")
    assert untouched is not None and untouched["data"] == before_data["orders-kafka"]
