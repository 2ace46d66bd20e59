"""The Aiven adapter's contract: one suite, two targets.

`make test` runs it against the simulator over loopback HTTP; `make test-aiven` runs it against a
real Aiven project (`tests/integration/aiven_target.py` says which variables are needed). Only
operations that are safe on a real project are used: every user created carries a unique prefix
and is deleted at the end, its ACL entry removed, even when a case fails; the last check proves
that nothing with the prefix is left.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aivenator.adapters.aiven_http import AivenHttp, RetryPolicy
from aivenator.adapters.fakes.aiven.core import FakeAiven
from aivenator.adapters.redaction import SecretRegistry
from aivenator.domain.facts import NotFound, OpenSearchRule, ServiceType, ValkeyAccessControl
from cryptography import x509
from returns.result import Success

from tests.integration.aiven_target import (
    TARGET_VARIABLE,
    AivenTarget,
    missing_variables,
    target_from_env,
    unique_prefix,
)

SIMULATOR_TOKEN = "contract-" + unique_prefix()
READ_ONLY = ValkeyAccessControl(("-@all", "+@connection", "+@read"), ("+info",), ("*",), ("*",))
READ_WRITE = ValkeyAccessControl(("-@all", "+@connection", "+@read", "+@write"), ("+info",), ("*",), ("*",))


@pytest.fixture(scope="module")
def target() -> Iterator[AivenTarget]:
    if os.environ.get(TARGET_VARIABLE) == "real":
        missing = missing_variables(os.environ)
        if missing:
            pytest.fail(f"real Aiven target requested but {', '.join(missing)} not set")
        yield target_from_env(os.environ)
        return
    fake = FakeAiven(token=SIMULATOR_TOKEN)
    fake.add_service("contract-project", "contract-kafka", "kafka")
    fake.add_service("contract-project", "contract-opensearch", "opensearch")
    fake.add_service("contract-project", "contract-valkey", "valkey")
    server = fake.serve()
    try:
        yield AivenTarget(
            base_url=server.base_url,
            token=SIMULATOR_TOKEN,
            project="contract-project",
            kafka="contract-kafka",
            opensearch="contract-opensearch",
            valkey="contract-valkey",
            user_prefix=unique_prefix(),
            real=False,
        )
    finally:
        server.stop()


@dataclass
class Session:
    """The adapter, and every user it created (for cleanup)."""

    target: AivenTarget
    aiven: AivenHttp
    created: list[tuple[str, str]] = field(default_factory=list)

    def name(self, suffix: str) -> str:
        return f"{self.target.user_prefix}{suffix}"

    def create(self, service: str, suffix: str, access: ValkeyAccessControl | None = None) -> str:
        username = self.name(suffix)
        self.created.append((service, username))
        assert isinstance(self.aiven.ensure_user(self.target.project, service, username, access), Success)
        return username

    def leftovers(self) -> list[str]:
        t = self.target
        found: list[str] = []
        for service in (t.kafka, t.opensearch, t.valkey):
            self.aiven.invalidate(t.project, service)
            facts = self.aiven.service(t.project, service).unwrap()
            found += [f"{service}/{u}" for u in facts.usernames if u.startswith(t.user_prefix)]
        acl = self.aiven.get_acl_config(t.project, t.opensearch).unwrap()
        found += [f"acl/{a.username}" for a in acl.acls if a.username.startswith(t.user_prefix)]
        return found


@pytest.fixture(scope="module")
def session(target: AivenTarget) -> Iterator[Session]:
    retry = RetryPolicy() if target.real else RetryPolicy(backoff_base=0.02, backoff_max=0.1, lag_delay=0.05)
    with AivenHttp(target.base_url, target.token, retry=retry, secrets=SecretRegistry()) as aiven:
        run = Session(target, aiven)
        try:
            yield run
        finally:
            # Everything this suite created goes, whatever failed above.
            for service, username in run.created:
                if service == target.opensearch:
                    aiven.remove_user_rules(target.project, service, username)
                aiven.delete_user(target.project, service, username)
            for leftover in run.leftovers():
                service, _, username = leftover.partition("/")
                if service == "acl":
                    aiven.remove_user_rules(target.project, target.opensearch, username)
                else:
                    aiven.delete_user(target.project, service, username)


def test_project_ca_is_a_certificate(session: Session) -> None:
    pem = session.aiven.project_ca(session.target.project).unwrap()
    assert x509.load_pem_x509_certificates(pem.encode())


@pytest.mark.parametrize(
    ("attr", "service_type", "purpose"),
    [
        ("kafka", ServiceType.KAFKA, "kafka"),
        ("opensearch", ServiceType.OPENSEARCH, "opensearch"),
        ("valkey", ServiceType.VALKEY, "valkey"),
    ],
)
def test_each_service_is_usable_with_its_endpoint(
    session: Session, attr: str, service_type: ServiceType, purpose: str
) -> None:
    facts = session.aiven.service(session.target.project, getattr(session.target, attr)).unwrap()
    assert facts.service_type is service_type and facts.usable
    endpoint = facts.endpoint(purpose)
    assert endpoint is not None and endpoint.host and endpoint.port > 0


def test_missing_service_and_user_are_not_found(session: Session) -> None:
    t = session.target
    assert isinstance(session.aiven.service(t.project, session.name("no-such-service")).failure(), NotFound)
    missing = session.aiven.get_user(t.project, t.kafka, session.name("ghost"))
    assert isinstance(missing.failure(), NotFound)


def test_kafka_user_lifecycle(session: Session) -> None:
    t = session.target
    username = session.create(t.kafka, "kafka")
    user = session.aiven.get_user(t.project, t.kafka, username).unwrap()
    assert user.username == username and user.password
    assert user.access_cert and "BEGIN CERTIFICATE" in user.access_cert
    assert user.access_key and "PRIVATE KEY" in user.access_key
    again = session.aiven.ensure_user(t.project, t.kafka, username).unwrap()
    assert again.password == user.password, "ensuring an existing user must not rotate it"
    assert isinstance(session.aiven.delete_user(t.project, t.kafka, username), Success)
    assert isinstance(session.aiven.get_user(t.project, t.kafka, username).failure(), NotFound)
    assert isinstance(session.aiven.delete_user(t.project, t.kafka, username), Success), "404 is done"


def test_valkey_user_access_control_is_set_and_corrected(session: Session) -> None:
    t = session.target
    username = session.create(t.valkey, "valkey", READ_ONLY)
    user = session.aiven.get_user(t.project, t.valkey, username).unwrap()
    assert user.password and user.access_control is not None
    assert set(user.access_control.categories) == set(READ_ONLY.categories)
    assert isinstance(session.aiven.set_access_control(t.project, t.valkey, username, READ_WRITE), Success)
    changed = session.aiven.get_user(t.project, t.valkey, username).unwrap()
    assert changed.access_control is not None
    assert set(changed.access_control.categories) == set(READ_WRITE.categories)


def test_opensearch_user_gets_and_loses_its_acl_entry(session: Session) -> None:
    t = session.target
    username = session.create(t.opensearch, "opensearch")
    rules = (OpenSearchRule("_*", "read"), OpenSearchRule("*", "read"))
    assert isinstance(session.aiven.put_user_rules(t.project, t.opensearch, username, rules), Success)
    config = session.aiven.get_acl_config(t.project, t.opensearch).unwrap()
    assert config.enabled
    (entry,) = [a for a in config.acls if a.username == username]
    assert set(entry.rules) == set(rules)
    assert isinstance(session.aiven.remove_user_rules(t.project, t.opensearch, username), Success)
    after = session.aiven.get_acl_config(t.project, t.opensearch).unwrap()
    assert username not in {a.username for a in after.acls}


def test_zz_cleanup_leaves_nothing_with_the_prefix(session: Session) -> None:
    """Runs last (module order): the suite's own users are deleted and nothing else is touched."""
    t = session.target
    for service, username in session.created:
        if service == t.opensearch:
            session.aiven.remove_user_rules(t.project, service, username)
        assert isinstance(session.aiven.delete_user(t.project, service, username), Success)
    assert session.leftovers() == []
